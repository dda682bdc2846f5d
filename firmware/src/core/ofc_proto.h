/* ofc_proto.h - the native v1 device protocol: bodies in, bodies out.
 *
 * Why it exists: this is the one place that knows the JSON shapes of
 *   POST /api/v1/device/checkin   {mac, chip, project, version, sha256?, ...}
 *     -> {device_id, token?, update: null | {id, version, url, size, sha256, md5},
 *         checkin_interval_s, commands_pending?, config_version?, logs?}
 *   POST /api/v1/device/progress  {update_id, state, progress, error?}
 * and of the small record the client keeps in NVS across the reboot into a
 * new image. Everything read from the network is validated here.
 */
#ifndef OFC_PROTO_H
#define OFC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ofc_json.h"
#include "ofc_url.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OFC_TOKEN_MAX 160   /* device token, with NUL */
#define OFC_ID_MAX 72       /* device/update id text, with NUL */
#define OFC_VERSION_MAX 64
#define OFC_NAME_MAX 64
#define OFC_ERROR_MAX 128
#define OFC_CONFIG_VERSION_MAX 9007199254740991u /* 2^53 - 1: exact in every JSON reader */

#define OFC_PROTO_EINVAL (-1)   /* malformed or missing required field */
#define OFC_PROTO_ETOOBIG (-2)  /* does not fit a buffer */

/* What the running device and image are; filled by the platform adapter. */
typedef struct ofc_device_info {
    char mac[18];                  /* "AA:BB:CC:DD:EE:FF", required */
    char chip[24];                 /* IDF target name, e.g. "esp32s3", required */
    char project[33];              /* esp_app_desc_t.project_name, required */
    char version[OFC_VERSION_MAX]; /* esp_app_desc_t.version or configured, required */
    char sha256[65];               /* esp_partition_get_sha256 of the running app, or "" */
    char ip[46];                   /* or "" */
    uint32_t free_space;           /* bytes in the next OTA slot, 0: unknown */
    int32_t rssi;                  /* dBm; only sent when has_rssi */
    int has_rssi;
    uint32_t uptime_s;
} ofc_device_info;

/* An id as the server sent it: a JSON string or a JSON number, echoed back
 * with the same type. */
typedef struct ofc_id {
    char text[OFC_ID_MAX];
    int is_number;
} ofc_id;

typedef struct ofc_offer {
    ofc_id id;
    char version[OFC_VERSION_MAX];
    char url[OFC_URL_MAX];
    uint32_t size;
    char sha256[65]; /* lower-case hex */
    char md5[33];    /* lower-case hex, "" when the server sent none */
} ofc_offer;

typedef struct ofc_checkin_reply {
    ofc_id device_id;            /* text "" when absent */
    char token[OFC_TOKEN_MAX];   /* "" when absent or null */
    int has_update;
    ofc_offer update;
    uint32_t checkin_interval_s; /* 0 when absent */
    uint32_t commands_pending;   /* unfinished commands waiting; 0 when absent */
    int has_config_version;      /* 0: absent or null (the project has no variables) */
    uint64_t config_version;
    int logs;                    /* 1 forward logs, 0 stop, -1 absent (no change) */
} ofc_checkin_reply;

/* Kept in NVS from "about to reboot into a new image" until the new image
 * has checked in: which update it was and what ran before it. */
typedef struct ofc_pending {
    ofc_id update_id;
    char sha256[65];         /* of the downloaded file */
    char version[OFC_VERSION_MAX];
    char prev_sha256[65];    /* running image's sha256 before the update */
    char prev_version[OFC_VERSION_MAX];
} ofc_pending;

/* Request bodies. Return the body length or OFC_PROTO_ETOOBIG. */
int ofc_build_checkin(char *buf, size_t cap, const ofc_device_info *info, const char *name);
int ofc_build_progress(char *buf, size_t cap, const ofc_id *update_id, const char *state,
                       unsigned progress, const char *error);

/* Parse a check-in response body. `toks` is scratch space (64+ entries is
 * plenty for the documented shape). Returns 0 or OFC_PROTO_EINVAL. */
int ofc_parse_checkin(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks,
                      ofc_checkin_reply *out);

int ofc_pending_encode(char *buf, size_t cap, const ofc_pending *p);
int ofc_pending_decode(const char *text, ofc_json_tok *toks, size_t ntoks, ofc_pending *out);

/* 1 if `s` is exactly `n` hex digits; copies them lower-cased into out. */
int ofc_hex_normalize(const char *s, size_t n, char *out);

#ifdef __cplusplus
}
#endif

#endif /* OFC_PROTO_H */
