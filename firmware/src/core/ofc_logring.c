/* ofc_logring.c - the log line ring of ofc_logring.h. */
#include "ofc_logring.h"

#include <string.h>

void ofc_logring_clear(ofc_logring *r)
{
    r->head = 0;
    r->count = 0;
    r->dropped = 0;
}

/* Copy at most cap-1 bytes, never ending inside a UTF-8 sequence. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    if (src == NULL) src = "";
    while (n < cap - 1 && src[n]) n++;
    if (src[n] != '\0')
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--; /* src[n] continues a sequence */
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void ofc_logring_push(ofc_logring *r, ofc_log_level level, const char *scope, const char *text)
{
    ofc_log_line *l;
    if (r->count == OFC_LOG_LINES) {
        r->head = (r->head + 1) % OFC_LOG_LINES;
        r->count--;
        r->dropped++;
    }
    l = &r->line[(r->head + r->count) % OFC_LOG_LINES];
    l->level = (uint8_t)(level <= OFC_LOG_VERBOSE ? level : OFC_LOG_VERBOSE);
    copy_cut(l->scope, sizeof l->scope, scope);
    copy_cut(l->text, sizeof l->text, text);
    r->count++;
}

const ofc_log_line *ofc_logring_at(const ofc_logring *r, unsigned i)
{
    return &r->line[(r->head + i) % OFC_LOG_LINES];
}

void ofc_logring_pop(ofc_logring *r, unsigned n)
{
    if (n > r->count) n = r->count;
    r->head = (r->head + n) % OFC_LOG_LINES;
    r->count -= n;
}

const char *ofc_log_level_name(ofc_log_level level)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "verbose"};
    return (unsigned)level <= OFC_LOG_VERBOSE ? names[level] : "verbose";
}
