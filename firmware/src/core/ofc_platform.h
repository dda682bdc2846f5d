/* ofc_platform.h - what the portable client needs from a device.
 *
 * Why it exists: the update logic (ofc_client.c) is plain C with no Arduino,
 * IDF or POSIX header; everything that touches hardware or the network goes
 * through this table of functions. The Arduino glue (OtaFleet.cpp) fills it
 * with WiFi/HTTPClient/Preferences/Update/esp_ota calls; the host test device
 * (test/hostdevice.c) fills it with sockets and files. Every function gets
 * the adapter's own `ctx` pointer back.
 */
#ifndef OFC_PLATFORM_H
#define OFC_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "ofc_proto.h"
#include "ofc_url.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Transport failure (no HTTP status); adapters may return any value < 0. */
#define OFC_HTTP_ETRANSPORT (-1)
/* The body sink asked to stop (the client knows why). */
#define OFC_HTTP_EABORTED (-1000)
/* The core refused the request: it would have sent the device token over
 * plain http:// although the server's CA is known. Nothing was sent. */
#define OFC_HTTP_EINSECURE (-1001)

/* What mDNS found for _otafleet._tcp. */
typedef struct ofc_discovered {
    char base_url[OFC_URL_MAX]; /* "http://ip:port" */
    char host[OFC_HOST_MAX];    /* the advertising host's name; "" if unknown */
    int tls;                    /* TXT tls=1: the server also speaks HTTPS on that port */
    char ca_sha256[72];         /* TXT ca=: SHA-256 of its CA certificate (hex); "" if absent */
} ofc_discovered;

/* Receives a response body as it streams in. */
typedef struct ofc_body_sink {
    /* Once, after the headers: the status and Content-Length (-1 if absent).
     * Return 0 to receive the body, non-zero to abort. */
    int (*begin)(void *sink_ctx, int status, long content_length);
    /* For each piece of body. Return 0 to continue, non-zero to abort. */
    int (*data)(void *sink_ctx, const uint8_t *buf, size_t len);
    void *sink_ctx;
} ofc_body_sink;

typedef struct ofc_platform {
    /* Monotonic milliseconds (may wrap). */
    uint32_t (*now_ms)(void *ctx);
    /* 32 random bits, for jitter (quality: esp_random() or better). */
    uint32_t (*random_u32)(void *ctx);
    /* A human-readable line; level 0 error, 1 warning, 2 info, 3 debug. May be NULL. */
    void (*log)(void *ctx, int level, const char *msg);

    /* POST a JSON body to an http:// or https:// URL. `bearer` is NULL or
     * the device token for an "Authorization: Bearer" header. For https://
     * the server must be verified against the CA given to set_ca (chain and
     * host name), and the request refused (< 0) when there is none. Fills resp (NUL-terminated) up to
     * resp_cap-1 bytes and *resp_len; a longer body is an error.
     * Returns the HTTP status, or < 0 on transport failure. */
    int (*http_post_json)(void *ctx, const char *url, const char *bearer, const char *body,
                          size_t body_len, char *resp, size_t resp_cap, size_t *resp_len);
    /* GET `url`, streaming the body into `sink`. Returns the HTTP status when
     * the whole body was delivered, OFC_HTTP_EABORTED when the sink stopped,
     * or another value < 0 on transport failure (incl. a short body). */
    int (*http_get)(void *ctx, const char *url, const char *bearer, const ofc_body_sink *sink);

    /* Find the server by mDNS (_otafleet._tcp): fill `out` (zeroed by the
     * caller; base_url "http://ip:port", the TXT keys tls and ca) and return
     * 0, or return < 0. May be NULL (no discovery). */
    int (*discover)(void *ctx, ofc_discovered *out);

    /* Small persistent strings (NVS / Preferences). kv_get returns 0 and a
     * NUL-terminated value, or < 0 when absent or too long. */
    int (*kv_get)(void *ctx, const char *key, char *out, size_t cap);
    int (*kv_set)(void *ctx, const char *key, const char *value);
    int (*kv_erase)(void *ctx, const char *key);

    /* Identity of the device and the running image; 0 on success. */
    int (*device_info)(void *ctx, ofc_device_info *info);
    /* 1 when the running image awaits confirmation (ESP_OTA_IMG_PENDING_VERIFY). */
    int (*image_is_trial)(void *ctx);
    /* esp_ota_mark_app_valid_cancel_rollback(); 0 on success. */
    int (*image_mark_valid)(void *ctx);
    /* esp_ota_mark_app_invalid_rollback_and_reboot(); returns only on failure. */
    void (*image_rollback)(void *ctx);

    /* Writing the next OTA slot (Update.begin / write / end(true) / abort).
     * ota_finish validates the written image and makes it the boot image. */
    int (*ota_begin)(void *ctx, uint32_t size);
    int (*ota_write)(void *ctx, const uint8_t *buf, size_t len);
    int (*ota_finish)(void *ctx);
    void (*ota_abort)(void *ctx);
    /* Restart into the boot image. Returns on the host (the host device
     * simulates the restart); never returns on a device. */
    void (*reboot)(void *ctx);

    /* The otafleet CA (PEM, NUL-terminated) that https:// servers must
     * chain to; the only trust anchor for the client's requests (public
     * CAs are not wanted: the server's certificate comes from its own local
     * CA). Called once the core knows it (configured, stored or fetched on
     * first use), before the first https:// request; the string stays valid
     * while the client lives. Returns 0, or < 0 if the adapter cannot use
     * it. May be NULL on a platform without TLS: the core then never sends
     * the token once a CA is known (its https:// requests fail). */
    int (*set_ca)(void *ctx, const char *ca_pem);
} ofc_platform;

#ifdef __cplusplus
}
#endif

#endif /* OFC_PLATFORM_H */
