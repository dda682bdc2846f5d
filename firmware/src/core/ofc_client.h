/* ofc_client.h - the device side of otafleet's native v1 protocol.
 *
 * Why it exists: this is the update state machine every port shares. Call
 * ofc_client_poll() from the main loop; it does at most one piece of network
 * work per call and returns how long until it wants to be called again:
 *
 *   START -> DISCOVER (mDNS, else the configured URL) -> CHECKIN
 *
 * HTTPS: once the client knows the server's CA (ofc_config.ca_pem; or
 * fetched from /api/v1/tls/ca.pem and checked against the pinned
 * ofc_config.ca_sha256, or, with no pin, against the ca= fingerprint the
 * server advertised over mDNS: trust on first use; then kept in NVS as
 * "ca_pem"), every request goes to https:// on the same host and port,
 * verified against that CA only, and a request that would carry the token
 * over plain http:// is refused inside the core. A CA fetched over the
 * network that does not match its fingerprint is refused, and the client
 * does not check in at all (it backs off and discovers again). Without any
 * CA or pin, and no tls=1 ca= from mDNS, the client speaks plain http://.
 *
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
 *
 * Remote management (ofc_manage.c) rides on the same polls, one request per
 * call, between check-ins and before an offered update starts:
 *   commands_pending > 0 -> GET the commands, handle each, acknowledge it
 *       (restart: ack, report, reboot; config: fetch the config; log: forward
 *       logs on/off; update_abort; custom: the sketch's on_command)
 *   config_version differs from the stored one -> GET the config, store it in
 *       NVS, on_config, POST the applied version (a failure keeps the old
 *       config and tries again after the next check-in)
 *   logs forwarded (the server asked) -> ofc_client_log() queues lines in a
 *       fixed ring; polls send them in batches.
 */
#ifndef OFC_CLIENT_H
#define OFC_CLIENT_H

#include <stdint.h>

#include "ofc_backoff.h"
#include "ofc_hash.h"
#include "ofc_logring.h"
#include "ofc_mgmt.h"
#include "ofc_pem.h"
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
    OFC_EV_ROLLED_BACK,   /* the previous image is running again; "failed" reported */
    OFC_EV_COMMAND,       /* a command was handled: text kind (custom: its key), state the ack's
                             state; status: the server's reply to the ack */
    OFC_EV_RESTART,       /* about to restart on a restart command */
    OFC_EV_CONFIG,        /* a config was applied: text its version; status: reply to the
                             applied-version POST. On failure status < 0 or the HTTP
                             status of the fetch, text why, state "failed" */
    OFC_EV_LOG_FORWARDING,/* log forwarding switched: status 1 on, 0 off */
    OFC_EV_LOGS_SENT,     /* a batch of log lines was posted: status, progress = lines accepted */
    OFC_EV_REPORT,        /* ofc_client_report() sent: status, text the subject */
    OFC_EV_CA             /* a CA fetched from the server: status 1 trusted (and stored), 0
                             refused; text its SHA-256 (AA:BB:... form) */
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
    const char *ca_pem;          /* the otafleet CA certificate (PEM; Settings -> Secure connection
                                    or GET /api/v1/tls); NULL: none configured */
    const char *ca_sha256;       /* pinned SHA-256 of the CA certificate (64 hex, ':' allowed); a
                                    fetched or stored CA must match it, TOFU never overrides it */
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
    /* A custom command: `key`, its payload as JSON text ("null" if none).
     * Write an optional result text into result[0..cap) and return
     * OFC_CMD_DONE, OFC_CMD_FAILED or OFC_CMD_REJECTED. NULL: custom
     * commands are rejected ("no handler"). */
    int (*on_command)(void *user, const char *key, const char *payload_json, char *result, size_t cap);
    /* A new config was stored: the values object as JSON text (read one
     * value with ofc_config_str/int/bool). May be NULL. */
    void (*on_config)(void *user, const char *values_json);
    void *user;
    uint32_t command_wait_s;     /* > 0: between check-ins, long-poll for commands this many s
                                    (the HTTP timeout must exceed it); default 0 */
    uint32_t log_flush_ms;       /* at most one log batch per this many ms; default 1000 */
} ofc_config;

typedef enum ofc_phase {
    OFC_PHASE_START = 0,
    OFC_PHASE_DISCOVER,
    OFC_PHASE_CHECKIN,
    OFC_PHASE_UPDATE,
    OFC_PHASE_HALTED /* rebooting (or the reboot returned, on the host) */
} ofc_phase;

#define OFC_CA_PEM_MAX 2048 /* a CA certificate as PEM (P-256: ~600 bytes, RSA-2048: ~1300) */
#define OFC_CMD_BATCH 4 /* commands handled per GET; more are fetched again */

/* All state lives here (about 15 KB): allocate it statically. Fields are
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
    const char *ca;              /* the trusted CA (PEM): cfg.ca_pem or ca_pem below; NULL: none */
    char pin[OFC_FP_HEX];        /* normalized cfg.ca_sha256; "" none; "!" unusable (matches nothing) */
    char ca_pem[OFC_CA_PEM_MAX]; /* a stored or fetched CA */
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
    struct {
        int fetch;             /* GET the commands on the next poll */
        unsigned rounds;       /* GETs since the last check-in */
        int lp_blocked;        /* no long-poll until the next good check-in */
        uint32_t lp_next;      /* earliest next long-poll */
        int cfg_due;           /* fetch and apply the config */
        int have_cfg;          /* cfg_version/cfg_values hold a stored config */
        uint64_t cfg_version;
        int logs_on;
        int logs_blocked;      /* a batch failed: wait for the next good check-in */
        uint32_t logs_next;    /* earliest next batch */
    } mg;
    ofc_command cmds[OFC_CMD_BATCH];
    ofc_logring logs;
    char cfg_values[OFC_CONFIG_MAX];
    char body[1536];
    char resp[2048];
    ofc_json_tok toks[128];
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

/* POST a report (type "info", "warn", "error" or "success"; body may be
 * NULL) with the device token. Best effort, not retried. Returns the HTTP
 * status (200 when stored), or < 0 (no token or server yet, body too large,
 * bad type, transport error). */
int ofc_client_report(ofc_client *c, const char *type, const char *subject, const char *body);

/* Queue a log line for forwarding. Returns 1 when queued, 0 when the server
 * is not collecting this device's logs (the line is not kept). Never blocks:
 * a full ring drops its oldest line. Safe to call from the callbacks. */
int ofc_client_log(ofc_client *c, ofc_log_level level, const char *scope, const char *text);
int ofc_client_logs_on(const ofc_client *c);

/* The stored config's values object ("{}" before any) and version (0). */
const char *ofc_client_config_values(const ofc_client *c);
uint64_t ofc_client_config_version(const ofc_client *c);
/* One stored value by key; 0 or -1 (absent, other type, does not fit). */
int ofc_client_config_str(const ofc_client *c, const char *key, char *out, size_t cap);
int ofc_client_config_int(const ofc_client *c, const char *key, int64_t *out);
int ofc_client_config_bool(const ofc_client *c, const char *key, int *out);

const char *ofc_event_name(ofc_event_type t);

#ifdef __cplusplus
}
#endif

#endif /* OFC_CLIENT_H */
