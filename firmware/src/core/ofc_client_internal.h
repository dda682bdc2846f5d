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

void ofc__log(ofc_client *c, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

void ofc__emit(ofc_client *c, ofc_event_type type, int status, const char *text);

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

#endif /* OFC_CLIENT_INTERNAL_H */
