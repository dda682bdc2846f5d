/* ofc_mgmt.h - the remote-management bodies of the native v1 protocol.
 *
 * Why it exists: the one place that knows the JSON shapes of
 *   GET  /api/v1/device/commands?wait=N -> {"commands":[{id, kind, key, payload, expires_at}]}
 *   POST /api/v1/device/commands/{id}      {state, result?}
 *   GET  /api/v1/device/config           -> {version, values:{key: value}}
 *   POST /api/v1/device/config             {version}
 *   POST /api/v1/device/report             {mac, type, subject, body?}
 *   POST /api/v1/device/logs               {lines:[{level, scope?, text}]} -> {logs, accepted}
 * and of reading one value out of the stored config. As in ofc_proto.c,
 * everything read from the network is validated here: a hostile commands
 * list yields rejected entries or an error, never an overrun.
 */
#ifndef OFC_MGMT_H
#define OFC_MGMT_H

#include <stddef.h>
#include <stdint.h>

#include "ofc_json.h"
#include "ofc_logring.h"
#include "ofc_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OFC_CMD_KEY_MAX 65      /* custom command key (the server allows 64 characters), with NUL */
#define OFC_CMD_PAYLOAD_MAX 256 /* payload as JSON text, with NUL */
#define OFC_CMD_RESULT_MAX 160  /* result text sent with the ack, with NUL */
#define OFC_CONFIG_MAX 1024     /* the config values object as JSON text, with NUL */

typedef enum ofc_command_kind {
    OFC_CMDK_UNKNOWN = 0,
    OFC_CMDK_RESTART,
    OFC_CMDK_CONFIG,
    OFC_CMDK_LOG,
    OFC_CMDK_CUSTOM,
    OFC_CMDK_UPDATE_ABORT
} ofc_command_kind;

/* How a command ended; the ack's "state". */
typedef enum ofc_command_state { OFC_CMD_DONE = 0, OFC_CMD_FAILED, OFC_CMD_REJECTED } ofc_command_state;

typedef struct ofc_command {
    ofc_id id;                          /* URL-safe: it goes into the ack's path */
    ofc_command_kind kind;
    char key[OFC_CMD_KEY_MAX];          /* custom commands; "" otherwise */
    char payload[OFC_CMD_PAYLOAD_MAX];  /* JSON text; "null" when absent */
    int log_on;                         /* log commands: the payload's "on" */
    const char *bad;                    /* non-NULL: malformed; ack "rejected" with this */
} ofc_command;

/* Parse a commands answer. Stores at most `cap` commands in `out` and the
 * array's length in *total (entries past `cap` are delivered again next
 * time). An entry without a usable id cannot be acknowledged: it is skipped
 * (and counted in *skipped). An entry with an id but a bad kind, key or
 * payload is stored with `bad` set. Returns the number stored, or
 * OFC_PROTO_EINVAL when the document is not {"commands":[...]}. */
int ofc_parse_commands(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks, ofc_command *out,
                       size_t cap, size_t *total, size_t *skipped);

const char *ofc_command_kind_name(ofc_command_kind k);
const char *ofc_command_state_name(ofc_command_state s);

/* {"state":..., "result":...}; result NULL or "" is left out. */
int ofc_build_ack(char *buf, size_t cap, ofc_command_state state, const char *result);

/* A config answer: the version and the values object's JSON text. Returns 0,
 * OFC_PROTO_EINVAL, or OFC_PROTO_ETOOBIG when the values do not fit. */
int ofc_parse_config(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks, uint64_t *version,
                     char *values, size_t cap);
int ofc_build_config_ack(char *buf, size_t cap, uint64_t version);

/* Read one value from a values object (as stored). 0 on success, -1 when
 * the key is absent, of another type, or (strings) does not fit. Integers
 * must be whole numbers within int64 range. Flat objects of up to 31 keys. */
int ofc_config_str(const char *values, const char *key, char *out, size_t cap);
int ofc_config_int(const char *values, const char *key, int64_t *out);
int ofc_config_bool(const char *values, const char *key, int *out);

/* type: "info", "warn", "error" or "success" (else OFC_PROTO_EINVAL). */
int ofc_build_report(char *buf, size_t cap, const char *mac, const char *type, const char *subject,
                     const char *body);

/* As many of the ring's oldest lines as fit in `cap` (at least one, else
 * OFC_PROTO_ETOOBIG), preceded by a warning line when `dropped` > 0.
 * *taken: how many ring lines the body holds. */
int ofc_build_logs(char *buf, size_t cap, const ofc_logring *ring, uint32_t dropped, size_t *taken);
/* The logs answer: *logs 1/0 (-1 absent), *accepted (0 absent). */
int ofc_parse_logs_reply(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks, int *logs,
                         uint32_t *accepted);

#ifdef __cplusplus
}
#endif

#endif /* OFC_MGMT_H */
