/* ofc_json.c - the strict JSON reader declared in ofc_json.h.
 *
 * A recursive-descent validator with a depth limit: every byte of the input
 * is checked before any value is used, so a truncated, padded or hostile
 * response is rejected as a whole instead of being half-read.
 */
#include "ofc_json.h"

#include <string.h>

typedef struct parser {
    const char *js;
    size_t len;
    size_t pos;
    ofc_json_tok *toks;
    size_t ntoks;
    size_t count;
} parser;

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->js[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int new_tok(parser *p, int type, size_t start)
{
    ofc_json_tok *t;
    if (p->count >= p->ntoks || p->count >= 0xFFFF)
        return OFC_JSON_ENOMEM;
    t = &p->toks[p->count];
    t->type = (uint8_t)type;
    t->start = (uint32_t)start;
    t->end = (uint32_t)start;
    t->next = 0;
    return (int)p->count++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need, i;
    unsigned long cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
    else return 0;
    if (n < need + 1) return 0;
    for (i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0; /* overlong or out of range */
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0; /* UTF-16 surrogate encoded in UTF-8 */
    return need + 1;
}

static int parse_string(parser *p)
{
    int idx;
    p->pos++; /* opening quote */
    idx = new_tok(p, OFC_JSON_STRING, p->pos);
    if (idx < 0) return idx;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->js[p->pos];
        if (c == '"') {
            p->toks[idx].end = (uint32_t)p->pos;
            p->toks[idx].next = (uint16_t)p->count;
            p->pos++;
            return idx;
        }
        if (c < 0x20) return OFC_JSON_ESYNTAX;
        if (c == '\\') {
            char e;
            if (p->pos + 1 >= p->len) return OFC_JSON_ESYNTAX;
            e = p->js[p->pos + 1];
            if (e == 'u') {
                int i;
                if (p->pos + 6 > p->len) return OFC_JSON_ESYNTAX;
                for (i = 2; i < 6; i++)
                    if (hexval(p->js[p->pos + (size_t)i]) < 0) return OFC_JSON_ESYNTAX;
                p->pos += 6;
            } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
                p->pos += 2;
            } else {
                return OFC_JSON_ESYNTAX;
            }
            continue;
        }
        {
            size_t n = utf8_seq((const unsigned char *)p->js + p->pos, p->len - p->pos);
            if (n == 0) return OFC_JSON_ESYNTAX;
            p->pos += n;
        }
    }
    return OFC_JSON_ESYNTAX; /* unterminated */
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p)
{
    size_t s = p->pos;
    int idx;
    if (p->pos < p->len && p->js[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) return OFC_JSON_ESYNTAX;
    if (p->js[p->pos] == '0') {
        p->pos++;
    } else if (is_digit(p->js[p->pos])) {
        while (p->pos < p->len && is_digit(p->js[p->pos])) p->pos++;
    } else {
        return OFC_JSON_ESYNTAX;
    }
    if (p->pos < p->len && p->js[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->js[p->pos])) return OFC_JSON_ESYNTAX;
        while (p->pos < p->len && is_digit(p->js[p->pos])) p->pos++;
    }
    if (p->pos < p->len && (p->js[p->pos] == 'e' || p->js[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->js[p->pos] == '+' || p->js[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || !is_digit(p->js[p->pos])) return OFC_JSON_ESYNTAX;
        while (p->pos < p->len && is_digit(p->js[p->pos])) p->pos++;
    }
    idx = new_tok(p, OFC_JSON_NUMBER, s);
    if (idx < 0) return idx;
    p->toks[idx].end = (uint32_t)p->pos;
    p->toks[idx].next = (uint16_t)p->count;
    return idx;
}

static int parse_literal(parser *p, const char *word, int type)
{
    size_t n = strlen(word);
    int idx;
    if (p->len - p->pos < n || memcmp(p->js + p->pos, word, n) != 0)
        return OFC_JSON_ESYNTAX;
    idx = new_tok(p, type, p->pos);
    if (idx < 0) return idx;
    p->pos += n;
    p->toks[idx].end = (uint32_t)p->pos;
    p->toks[idx].next = (uint16_t)p->count;
    return idx;
}

static int parse_value(parser *p, int depth);

/* Does the object `obj` already hold a key equal to token `key`? */
static int has_key(const parser *p, int obj, int key)
{
    const ofc_json_tok *k = &p->toks[key];
    size_t klen = k->end - k->start;
    int i = obj + 1;
    while (i < key) {
        const ofc_json_tok *o = &p->toks[i];
        if (o->end - o->start == klen && memcmp(p->js + o->start, p->js + k->start, klen) == 0)
            return 1;
        i = p->toks[i + 1].next; /* skip the member's value */
    }
    return 0;
}

static int parse_container(parser *p, int depth, int is_object)
{
    char close = is_object ? '}' : ']';
    int idx = new_tok(p, is_object ? OFC_JSON_OBJECT : OFC_JSON_ARRAY, p->pos);
    if (idx < 0) return idx;
    if (depth >= OFC_JSON_MAX_DEPTH) return OFC_JSON_EDEPTH;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->js[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            int r;
            skip_ws(p);
            if (is_object) {
                int key;
                if (p->pos >= p->len || p->js[p->pos] != '"') return OFC_JSON_ESYNTAX;
                key = parse_string(p);
                if (key < 0) return key;
                if (has_key(p, idx, key)) return OFC_JSON_EDUP;
                skip_ws(p);
                if (p->pos >= p->len || p->js[p->pos] != ':') return OFC_JSON_ESYNTAX;
                p->pos++;
                skip_ws(p);
            }
            r = parse_value(p, depth + 1);
            if (r < 0) return r;
            skip_ws(p);
            if (p->pos >= p->len) return OFC_JSON_ESYNTAX;
            if (p->js[p->pos] == ',') { p->pos++; continue; }
            if (p->js[p->pos] == close) { p->pos++; break; }
            return OFC_JSON_ESYNTAX;
        }
    }
    p->toks[idx].end = (uint32_t)p->pos;
    p->toks[idx].next = (uint16_t)p->count;
    return idx;
}

static int parse_value(parser *p, int depth)
{
    if (p->pos >= p->len) return OFC_JSON_ESYNTAX;
    switch (p->js[p->pos]) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': return parse_string(p);
    case 't': return parse_literal(p, "true", OFC_JSON_TRUE);
    case 'f': return parse_literal(p, "false", OFC_JSON_FALSE);
    case 'n': return parse_literal(p, "null", OFC_JSON_NULL);
    default: return parse_number(p);
    }
}

int ofc_json_parse(const char *js, size_t len, ofc_json_tok *toks, size_t ntoks)
{
    parser p;
    int r;
    if (js == NULL || toks == NULL || len > 0x7FFFFFFFu) return OFC_JSON_ESYNTAX;
    p.js = js;
    p.len = len;
    p.pos = 0;
    p.toks = toks;
    p.ntoks = ntoks;
    p.count = 0;
    skip_ws(&p);
    r = parse_value(&p, 0);
    if (r < 0) return r;
    skip_ws(&p);
    if (p.pos != p.len) return OFC_JSON_ESYNTAX; /* trailing garbage */
    return (int)p.count;
}

int ofc_json_find(const char *js, const ofc_json_tok *toks, int obj, const char *key)
{
    size_t klen = strlen(key);
    int i;
    if (obj < 0 || toks[obj].type != OFC_JSON_OBJECT) return -1;
    i = obj + 1;
    while (i < toks[obj].next) {
        const ofc_json_tok *k = &toks[i];
        if (k->end - k->start == klen && memcmp(js + k->start, key, klen) == 0)
            return i + 1;
        i = toks[i + 1].next;
    }
    return -1;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static unsigned long hex4(const char *s)
{
    return (unsigned long)((hexval(s[0]) << 12) | (hexval(s[1]) << 8) | (hexval(s[2]) << 4) | hexval(s[3]));
}

int ofc_json_string(const char *js, const ofc_json_tok *tok, char *out, size_t cap)
{
    size_t i, o = 0;
    if (tok->type != OFC_JSON_STRING || cap == 0) return -1;
    for (i = tok->start; i < tok->end;) {
        char tmp[4];
        size_t n;
        if (js[i] != '\\') {
            tmp[0] = js[i];
            n = 1;
            i++;
        } else {
            char e = js[i + 1];
            i += 2;
            switch (e) {
            case 'b': tmp[0] = '\b'; n = 1; break;
            case 'f': tmp[0] = '\f'; n = 1; break;
            case 'n': tmp[0] = '\n'; n = 1; break;
            case 'r': tmp[0] = '\r'; n = 1; break;
            case 't': tmp[0] = '\t'; n = 1; break;
            case 'u': {
                unsigned long cp = hex4(js + i);
                i += 4;
                if (cp == 0) return -1;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* lone low surrogate */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned long lo;
                    if (i + 6 > tok->end || js[i] != '\\' || js[i + 1] != 'u') return -1;
                    lo = hex4(js + i + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF) return -1;
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                n = put_utf8(tmp, cp);
                break;
            }
            default: tmp[0] = e; n = 1; break; /* \" \\ \/ */
            }
        }
        if (o + n >= cap) return -1;
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
    return (int)o;
}

int ofc_json_uint(const char *js, const ofc_json_tok *tok, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    uint32_t i;
    if (tok->type != OFC_JSON_NUMBER || tok->end == tok->start) return -1;
    for (i = tok->start; i < tok->end; i++) {
        unsigned d;
        if (!is_digit(js[i])) return -1;
        d = (unsigned)(js[i] - '0');
        if (d > max || v > (max - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
