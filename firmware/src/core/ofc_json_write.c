/* ofc_json_write.c - the flat JSON object writer declared in ofc_json.h.
 *
 * Request bodies are flat objects of strings and integers; this writer
 * escapes strings correctly (values such as a device name come from users)
 * and reports overflow instead of sending a cut-off body.
 */
#include "ofc_json.h"

#include <stdio.h>
#include <string.h>

static void put(ofc_jw *w, const char *s, size_t n)
{
    if (w->failed) return;
    if (w->len + n + 1 > w->cap) { /* keep room for the final NUL */
        w->failed = 1;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* Same rules as the reader's validator: length of a well-formed sequence. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t need, i;
    unsigned long cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
    else return 0;
    for (i = 1; i <= need; i++) { /* a NUL stops here: it is not 10xxxxxx */
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return need + 1;
}

static void put_string(ofc_jw *w, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    put(w, "\"", 1);
    while (*u) {
        unsigned char c = *u;
        if (c == '"' || c == '\\') {
            char e[2];
            e[0] = '\\';
            e[1] = (char)c;
            put(w, e, 2);
            u++;
        } else if (c < 0x20 || c == 0x7F) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", (unsigned)c);
            put(w, e, 6);
            u++;
        } else {
            size_t n = utf8_len(u);
            if (n == 0) {
                put(w, "\xEF\xBF\xBD", 3); /* U+FFFD for a stray byte */
                u++;
            } else {
                put(w, (const char *)u, n);
                u += n;
            }
        }
    }
    put(w, "\"", 1);
}

static void member(ofc_jw *w, const char *key)
{
    if (w->members++ > 0) put(w, ",", 1);
    put_string(w, key);
    put(w, ":", 1);
}

void ofc_jw_begin(ofc_jw *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->failed = (buf == NULL || cap == 0);
    w->members = 0;
    put(w, "{", 1);
}

void ofc_jw_str(ofc_jw *w, const char *key, const char *value)
{
    member(w, key);
    put_string(w, value);
}

void ofc_jw_uint(ofc_jw *w, const char *key, uint64_t value)
{
    char tmp[24];
    size_t n = 0, i;
    char rev[24];
    do {
        rev[n++] = (char)('0' + (value % 10));
        value /= 10;
    } while (value != 0);
    for (i = 0; i < n; i++) tmp[i] = rev[n - 1 - i];
    member(w, key);
    put(w, tmp, n);
}

void ofc_jw_int(ofc_jw *w, const char *key, int64_t value)
{
    if (value < 0) {
        /* Negate in unsigned arithmetic so INT64_MIN is safe. */
        uint64_t mag = (uint64_t)0 - (uint64_t)value;
        char tmp[24];
        size_t n = 0;
        char rev[24];
        size_t i;
        do {
            rev[n++] = (char)('0' + (mag % 10));
            mag /= 10;
        } while (mag != 0);
        tmp[0] = '-';
        for (i = 0; i < n; i++) tmp[i + 1] = rev[n - 1 - i];
        member(w, key);
        put(w, tmp, n + 1);
    } else {
        ofc_jw_uint(w, key, (uint64_t)value);
    }
}

void ofc_jw_raw(ofc_jw *w, const char *key, const char *json_text)
{
    member(w, key);
    put(w, json_text, strlen(json_text));
}

int ofc_jw_end(ofc_jw *w)
{
    put(w, "}", 1);
    return w->failed ? -1 : (int)w->len;
}
