/* ofc_json.h - a small, strict JSON reader and a flat-object writer.
 *
 * Why it exists: the device must read the server's check-in response and
 * write its own request bodies without a heap and without trusting the
 * network. The reader validates the whole document (RFC 8259 grammar, UTF-8,
 * nesting depth, duplicate keys) into a caller-supplied token array; lookups
 * then walk that array. Nothing is allocated; nothing is truncated silently.
 */
#ifndef OFC_JSON_H
#define OFC_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    OFC_JSON_OBJECT = 1,
    OFC_JSON_ARRAY,
    OFC_JSON_STRING,
    OFC_JSON_NUMBER,
    OFC_JSON_TRUE,
    OFC_JSON_FALSE,
    OFC_JSON_NULL
};

/* Parse errors (negative return values of ofc_json_parse). */
#define OFC_JSON_ESYNTAX (-1) /* not valid JSON */
#define OFC_JSON_ENOMEM  (-2) /* more tokens than the caller's array holds */
#define OFC_JSON_EDEPTH  (-3) /* nested deeper than OFC_JSON_MAX_DEPTH */
#define OFC_JSON_EDUP    (-4) /* an object repeats a key (byte-identical) */

#define OFC_JSON_MAX_DEPTH 16

/* One value. For strings, [start, end) is the raw text between the quotes;
 * for other values, the value's own text. `next` is the index of the first
 * token after this value's subtree, so a container's children are the tokens
 * (index+1 .. next-1) and siblings are reached by jumping to `next`. */
typedef struct ofc_json_tok {
    uint32_t start;
    uint32_t end;
    uint16_t next;
    uint8_t type;
} ofc_json_tok;

/* Validate `js[0..len)` and tokenise it into `toks`. Returns the number of
 * tokens (>= 1; token 0 is the top-level value) or a negative OFC_JSON_E*. */
int ofc_json_parse(const char *js, size_t len, ofc_json_tok *toks, size_t ntoks);

/* Index of the value stored under `key` in the object at index `obj`, or -1
 * (also when `obj` is not an object). Keys are compared byte for byte with
 * their raw (still escaped) text, so an escaped spelling never matches. */
int ofc_json_find(const char *js, const ofc_json_tok *toks, int obj, const char *key);

/* Copy the unescaped string token `tok` into `out` (NUL-terminated).
 * Returns its length, or -1 if the token is not a string, does not fit in
 * `cap` bytes, or contains \u0000. */
int ofc_json_string(const char *js, const ofc_json_tok *tok, char *out, size_t cap);

/* Read a non-negative integer token (digits only: no sign, fraction or
 * exponent) that is <= max. Returns 0 on success, -1 otherwise. */
int ofc_json_uint(const char *js, const ofc_json_tok *tok, uint64_t max, uint64_t *out);

/* ---- writer: one flat JSON object into a caller buffer ---- */

typedef struct ofc_jw {
    char *buf;
    size_t cap;
    size_t len;
    int failed; /* set once anything did not fit; the result is then unusable */
    int members;
} ofc_jw;

void ofc_jw_begin(ofc_jw *w, char *buf, size_t cap);
/* A string member; invalid UTF-8 bytes are written as U+FFFD. */
void ofc_jw_str(ofc_jw *w, const char *key, const char *value);
void ofc_jw_uint(ofc_jw *w, const char *key, uint64_t value);
void ofc_jw_int(ofc_jw *w, const char *key, int64_t value);
/* A member whose value is already JSON text (e.g. a number echoed back). */
void ofc_jw_raw(ofc_jw *w, const char *key, const char *json_text);
/* Close the object. Returns the length written (buffer NUL-terminated) or -1
 * if the buffer was too small. */
int ofc_jw_end(ofc_jw *w);

#ifdef __cplusplus
}
#endif

#endif /* OFC_JSON_H */
