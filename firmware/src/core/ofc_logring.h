/* ofc_logring.h - a fixed ring of log lines waiting to be forwarded.
 *
 * Why it exists: while someone watches a device's logs, the sketch's log
 * lines are queued here and sent in batches (POST /api/v1/device/logs) by
 * ofc_client_poll(). Memory is fixed (OFC_LOG_LINES lines of at most
 * OFC_LOG_TEXT bytes): a full ring drops its oldest line and counts the
 * drop, so logging never blocks or allocates.
 */
#ifndef OFC_LOGRING_H
#define OFC_LOGRING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OFC_LOG_LINES 16
#define OFC_LOG_TEXT 160 /* bytes of text kept per line, with NUL (longer is cut at a character) */
#define OFC_LOG_SCOPE 24 /* bytes of scope (e.g. a tag), with NUL */

typedef enum ofc_log_level {
    OFC_LOG_ERROR = 0,
    OFC_LOG_WARN,
    OFC_LOG_INFO,
    OFC_LOG_DEBUG,
    OFC_LOG_VERBOSE
} ofc_log_level;

typedef struct ofc_log_line {
    uint8_t level;
    char scope[OFC_LOG_SCOPE];
    char text[OFC_LOG_TEXT];
} ofc_log_line;

typedef struct ofc_logring {
    ofc_log_line line[OFC_LOG_LINES];
    unsigned head;     /* index of the oldest line */
    unsigned count;
    uint32_t dropped;  /* lines lost to a full ring since the last good send */
} ofc_logring;

void ofc_logring_clear(ofc_logring *r);
/* Queue a line (scope may be NULL); drops the oldest when full. */
void ofc_logring_push(ofc_logring *r, ofc_log_level level, const char *scope, const char *text);
/* The i-th oldest line (i < count). */
const ofc_log_line *ofc_logring_at(const ofc_logring *r, unsigned i);
/* Forget the n oldest lines. */
void ofc_logring_pop(ofc_logring *r, unsigned n);
/* "error", "warn", "info", "debug", "verbose". */
const char *ofc_log_level_name(ofc_log_level level);

#ifdef __cplusplus
}
#endif

#endif /* OFC_LOGRING_H */
