/* fake_platform.h - a scripted, in-memory device for testing ofc_client.
 *
 * Why it exists: the state machine's behaviour (enrolment, 401 handling,
 * back-off, streaming verification, confirmation, rollback) is tested
 * without a network or a clock: check-in replies are scripted, the image is
 * served from memory in configurable chunks, time is virtual, and every
 * request, OTA call and event is recorded for the assertions.
 */
#ifndef FAKE_PLATFORM_H
#define FAKE_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "../../src/core/ofc_client.h"

#define FAKE_MAX_POSTS 128
#define FAKE_MAX_EVENTS 256
#define FAKE_KV 12

typedef struct fake_post {
    char url[OFC_URL_MAX];
    char bearer[OFC_TOKEN_MAX]; /* "" when none was sent */
    char body[1600];
} fake_post;

typedef struct fake {
    uint32_t now;
    uint32_t rng_state;

    /* key/value store */
    char kv_key[FAKE_KV][16];
    char kv_val[FAKE_KV][2100];
    int kv_used[FAKE_KV];
    const char *kv_fail_prefix; /* non-NULL: kv_set of keys starting with it fails */
    int kv_set_fail;            /* how many did */

    ofc_device_info info;
    int trial;
    int mark_valid_calls, rollback_calls, reboot_calls;

    const char *discover_result; /* NULL: discovery fails */
    int discover_tls;            /* TXT tls=1 */
    const char *discover_ca;     /* TXT ca=, NULL: absent */
    int discover_calls;

    /* TLS: GET /tls/ca.pem answers ca_served (NULL: 404); set_ca records */
    const char *ca_served;
    int ca_gets;
    char ca_get_bearer[OFC_TOKEN_MAX];
    int set_ca_calls;
    const char *set_ca_pem;

    /* check-in replies, consumed in order; past the end: transport error */
    int checkin_status[32];
    const char *checkin_body[32];
    int checkin_n, checkin_i;
    int progress_status; /* reply to progress reports, default 204 */

    /* remote management: GET /device/commands answers, consumed in order
     * (past the end: {"commands":[]}), and the other routes' replies */
    const char *commands_body[8];
    int commands_status[8];
    int commands_n, commands_i, commands_gets;
    char commands_url[OFC_URL_MAX];
    int config_status;        /* GET /device/config, default 200 */
    const char *config_body;
    int config_gets;
    int config_ack_status;    /* POST /device/config, default 200 */
    int ack_status;           /* POST /device/commands/{id}, default 200 */
    int report_status;        /* POST /device/report, default 200 */
    int logs_status;          /* POST /device/logs, default 200 */
    const char *logs_reply;   /* default {"logs":true,"accepted":1} */

    fake_post posts[FAKE_MAX_POSTS];
    int nposts;

    /* firmware GET */
    const uint8_t *image;
    size_t image_len;
    int get_status;          /* default 200 */
    long get_content_length; /* default: image_len; -1: none */
    size_t get_chunk;        /* bytes per data() call, default 100 */
    size_t get_cut_at;       /* stop after this many bytes with a transport error; 0: never */
    long corrupt_at;         /* flip the byte at this offset; -1: never */
    int get_calls;
    char get_url[OFC_URL_MAX];
    char get_bearer[OFC_TOKEN_MAX];

    /* OTA slot */
    uint8_t ota[8192];
    size_t ota_len;
    int ota_begun, ota_finished, ota_aborted;
    int ota_finish_result;

    ofc_event_type events[FAKE_MAX_EVENTS];
    int event_status[FAKE_MAX_EVENTS];
    uint32_t event_delay[FAKE_MAX_EVENTS];
    char event_text[FAKE_MAX_EVENTS][96];
    int nevents;
} fake;

void fake_init(fake *f);
extern const ofc_platform fake_platform;
void fake_on_event(void *user, const ofc_event *ev);

/* Queue a reply for the next check-in. */
void fake_reply(fake *f, int status, const char *body);
/* Queue an answer for the next GET /device/commands. */
void fake_commands(fake *f, int status, const char *body);
/* Index of the n-th (0-based) POST whose URL ends with suffix, or -1. */
int fake_find_post(const fake *f, const char *suffix, int n);
const char *fake_kv(fake *f, const char *key); /* NULL if absent */
void fake_kv_put(fake *f, const char *key, const char *value);

/* Poll until `until` has been emitted (until == 0: until the client halts),
 * at most max_polls times; between polls virtual time jumps to the next due
 * time. Returns 1 when reached, and stops right after that poll. */
int fake_run(ofc_client *c, fake *f, ofc_event_type until, int max_polls);

int fake_count_events(const fake *f, ofc_event_type t);
/* Number of recorded POSTs whose URL ends with `suffix` and whose body
 * contains `needle` (NULL: any). */
int fake_count_posts(const fake *f, const char *suffix, const char *needle);

/* A config with the defaults, events wired to `f`, fallback URL set. */
void fake_config(ofc_config *cfg, fake *f);

#endif /* FAKE_PLATFORM_H */
