/* ofc_client_internal.h - helpers shared by ofc_client.c and ofc_download.c.
 *
 * Why it exists: the state machine is split in two files a reader can hold
 * (check-in/confirmation, and download/verification); this header is the
 * seam between them and is not part of the public API.
 */
#ifndef OFC_CLIENT_INTERNAL_H
#define OFC_CLIENT_INTERNAL_H

#include "ofc_client.h"

#define OFC_KEY_TOKEN "token"
#define OFC_KEY_PENDING "pending"
#define OFC_KEY_CFG "cfg"            /* the applied config's values object */
#define OFC_KEY_CFG_VERSION "cfg_v"  /* its version, written once the server took the ack */
#define OFC_KEY_CA "ca_pem"          /* the server's CA, trusted on first use or by the pin */

void ofc__log(ofc_client *c, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

void ofc__emit(ofc_client *c, ofc_event_type type, int status, const char *text);
void ofc__emit_event(ofc_client *c, const ofc_event *ev);

/* POST c->body[0..n) to the API path `suffix` with the token; the reply
 * lands in c->resp (*len bytes). Returns the status or < 0. */
int ofc__post(ofc_client *c, const char *suffix, int n, size_t *len);
/* GET the API path `suffix` with the token into c->resp (*len bytes). */
int ofc__get_json(ofc_client *c, const char *suffix, size_t *len);

/* POST a progress report for `update_id`; returns the HTTP status (< 0 on
 * transport failure). Reports are best effort: callers do not retry. */
int ofc__report(ofc_client *c, const ofc_id *update_id, const char *state, unsigned progress,
                const char *error);

/* Build base_url + api_prefix + suffix into c->api_url; 0 or -1. */
int ofc__api_url(ofc_client *c, const char *suffix);

/* Run the offered update in c->offer. On success the device reboots (on the
 * host, the phase becomes HALTED); on failure the phase returns to CHECKIN. */
void ofc__run_update(ofc_client *c);

/* Schedule the next check-in after the regular (jittered) interval. */
void ofc__schedule_interval(ofc_client *c);

int ofc__id_equal(const ofc_id *a, const ofc_id *b);

/* Every request goes through these two: they refuse (OFC_HTTP_EINSECURE,
 * nothing sent) a request with a bearer to a plain http:// URL once the
 * server's CA is known or pinned. */
int ofc__http_post(ofc_client *c, const char *url, const char *bearer, const char *body, size_t body_len,
                   char *resp, size_t resp_cap, size_t *resp_len);
int ofc__http_get(ofc_client *c, const char *url, const char *bearer, const ofc_body_sink *sink);

/* Trust (ofc_trust.c). */
void ofc__trust_start(ofc_client *c); /* the configured or stored CA; the pin */
/* The base URL was chosen (d: what mDNS said, or NULL): fetch and check the
 * CA if one is due, and move the base URL to https:// once a CA is known.
 * Returns 0, or -1 when the server's CA was refused (do not check in). */
int ofc__trust_server(ofc_client *c, const ofc_discovered *d);
/* Collect a small body into c->resp (GET helper shared with ofc_trust.c). */
int ofc__get_small(ofc_client *c, const char *url, const char *bearer, size_t *len);

/* Remote management (ofc_manage.c). */
void ofc__manage_start(ofc_client *c);                               /* load the stored config */
void ofc__manage_checkin(ofc_client *c, const ofc_checkin_reply *r); /* a good check-in: what is due */
int ofc__manage_step(ofc_client *c);       /* do one due piece of work; 1 if it did */
uint32_t ofc__manage_wait(ofc_client *c);  /* ms until work is due; 0xFFFFFFFF: none */

#endif /* OFC_CLIENT_INTERNAL_H */
