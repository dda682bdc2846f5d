/* ofc_client.h - the device side of otafleet's native v1 protocol.
 *
 * Why it exists: this is the update state machine every port shares. Call
 * ofc_client_poll() from the main loop; it does at most one piece of network
 * work per call and returns how long until it wants to be called again:
 *
 *   START -> DISCOVER (mDNS, else the configured URL) -> CHECKIN
 *   CHECKIN ok, no update      -> wait the server's interval (+/-10% jitter)
 *   CHECKIN ok, update offered -> UPDATE: stream the image into the OTA slot,
 *       hashing it; report downloading every 5%, then verifying, flashing,
 *       rebooting; save a "pending" record; reboot
 *   CHECKIN failed (transport, 5xx, 401, bad reply) -> back off with jitter;
 *       after `rediscover_after` failures in a row, DISCOVER again
 *   on the new image (trial, i.e. pending verification): the first good
 *       check-in marks it valid and reports "done"; `confirm_attempts` failed
 *       check-ins in a row roll back to the previous image instead.
 *
 * A 401 never makes the client drop its token or re-enrol: another device
 * may be claiming this MAC, and the server's operator decides. The client
 * reports it (OFC_EV_UNAUTHORIZED) and keeps backing off.
 */
#ifndef OFC_CLIENT_H
#define OFC_CLIENT_H

#include <stdint.h>

#include "ofc_backoff.h"
#include "ofc_hash.h"
#include "ofc_platform.h"
#include "ofc_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ofc_event_type {
    OFC_EV_SERVER = 1,    /* text: base URL in use; status 1 = found by mDNS, 0 = configured */
    OFC_EV_CHECKIN,       /* status: HTTP status or < 0 (transport) */
    OFC_EV_ENROLLED,      /* a (new) device token was received and stored */
    OFC_EV_UNAUTHORIZED,  /* 401: token refused; delay_ms until the next try */
    OFC_EV_CHECKIN_FAILED,/* status, text: why; delay_ms until the next try */
    OFC_EV_OFFER,         /* text: offered version */
    OFC_EV_PROGRESS,      /* state, progress; status: the server's reply status */
    OFC_EV_UPDATE_FAILED, /* text: error */
    OFC_EV_REBOOT,        /* about to restart into the new image */
    OFC_EV_CONFIRMED,     /* the trial image was marked valid */
    OFC_EV_ROLLBACK,      /* too many failed check-ins on a trial image */
    OFC_EV_UPDATE_DONE,   /* the new image checked in; "done" reported */
    OFC_EV_ROLLED_BACK    /* the previous image is running again; "failed" reported */
} ofc_event_type;

typedef struct ofc_event {
    ofc_event_type type;
    int status;
    const char *state;  /* for OFC_EV_PROGRESS */
    unsigned progress;
    const char *text;
    uint32_t delay_ms;
} ofc_event;

typedef struct ofc_config {
    const char *server_url;      /* fallback base URL, e.g. "http://192.168.1.10:8080"; may be NULL */
    const char *api_prefix;      /* default "/api/v1" */
    const char *name;            /* optional device name sent at check-in */
    uint32_t default_interval_s; /* until the server says otherwise; default 60 */
    uint32_t min_interval_s;     /* floor for the server's interval; default 5 */
    uint32_t backoff_base_ms;    /* default 2000 */
    uint32_t backoff_max_ms;     /* default 300000 */
    uint32_t confirm_attempts;   /* failed check-ins on a trial image before rollback; default 5 */
    uint32_t rediscover_after;   /* failed check-ins in a row before mDNS again; default 3 */
    uint32_t max_offer_failures; /* attempts at one offered update before skipping it; default 3 */
    int refuse_downgrade;        /* 1: fail offers older than the running version; default 0 */
    void (*on_event)(void *user, const ofc_event *ev); /* may be NULL */
    void *user;
} ofc_config;

typedef enum ofc_phase {
    OFC_PHASE_START = 0,
    OFC_PHASE_DISCOVER,
    OFC_PHASE_CHECKIN,
    OFC_PHASE_UPDATE,
    OFC_PHASE_HALTED /* rebooting (or the reboot returned, on the host) */
} ofc_phase;

/* All state lives here (about 6.5 KB): allocate it statically. Fields are
 * private to the core. */
typedef struct ofc_client {
    ofc_config cfg;
    const ofc_platform *p;
    void *pctx;
    ofc_phase phase;
    uint32_t next_at;
    ofc_backoff backoff;
    uint32_t fail_streak;
    uint32_t interval_s;
    int trial;
    int have_pending;
    ofc_pending pending;
    ofc_offer offer;
    ofc_id failed_offer;
    uint32_t failed_offer_count;
    ofc_device_info info;
    char base_url[OFC_URL_MAX];
    char token[OFC_TOKEN_MAX];
    struct {
        uint32_t received;
        unsigned last_step;
        char error[OFC_ERROR_MAX];
        ofc_sha256 sha;
        ofc_md5 md5;
    } dl;
    char api_url[OFC_URL_MAX];
    char fw_url[OFC_URL_MAX];
    char body[768];
    char resp[2048];
    ofc_json_tok toks[96];
} ofc_client;

void ofc_config_defaults(ofc_config *cfg);

/* `cfg` is copied (its strings are not: keep them alive). */
void ofc_client_init(ofc_client *c, const ofc_config *cfg, const ofc_platform *p, void *pctx);

/* Do what is due; returns milliseconds until the next call is useful
 * (0: call again now; 0xFFFFFFFF: halted). */
uint32_t ofc_client_poll(ofc_client *c);

/* Make the next poll check in at once (e.g. on a button press). */
void ofc_client_checkin_now(ofc_client *c);

ofc_phase ofc_client_phase(const ofc_client *c);

const char *ofc_event_name(ofc_event_type t);

#ifdef __cplusplus
}
#endif

#endif /* OFC_CLIENT_H */
