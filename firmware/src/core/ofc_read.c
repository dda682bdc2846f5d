/* ofc_read.c - typed field lookups; see ofc_read.h. */
#include "ofc_read.h"

#include <string.h>

int ofc__field(const ofc_reader *r, int obj, const char *key, int want_type, int *idx)
{
    int i = ofc_json_find(r->js, r->toks, obj, key);
    *idx = -1;
    if (i < 0 || r->toks[i].type == OFC_JSON_NULL) return 0;
    if (want_type && r->toks[i].type != want_type) return -1;
    *idx = i;
    return 1;
}

int ofc__get_str(const ofc_reader *r, int obj, const char *key, char *out, size_t cap, int required)
{
    int i, f = ofc__field(r, obj, key, OFC_JSON_STRING, &i);
    out[0] = '\0';
    if (f < 0) return -1;
    if (f == 0) return required ? -1 : 0;
    return ofc_json_string(r->js, &r->toks[i], out, cap) < 0 ? -1 : 0;
}

int ofc__get_id(const ofc_reader *r, int obj, const char *key, ofc_id *out, int required)
{
    int i = ofc_json_find(r->js, r->toks, obj, key);
    const ofc_json_tok *t;
    memset(out, 0, sizeof *out);
    if (i < 0 || r->toks[i].type == OFC_JSON_NULL) return required ? -1 : 0;
    t = &r->toks[i];
    if (t->type == OFC_JSON_STRING) {
        if (ofc_json_string(r->js, t, out->text, sizeof out->text) <= 0) return -1;
        return 0;
    }
    if (t->type == OFC_JSON_NUMBER && t->end - t->start < sizeof out->text) {
        memcpy(out->text, r->js + t->start, t->end - t->start);
        out->text[t->end - t->start] = '\0';
        out->is_number = 1;
        return 0;
    }
    return -1;
}

int ofc__get_uint(const ofc_reader *r, int obj, const char *key, uint64_t max, uint64_t *out)
{
    int i, f = ofc__field(r, obj, key, OFC_JSON_NUMBER, &i);
    *out = 0;
    if (f <= 0) return f;
    return ofc_json_uint(r->js, &r->toks[i], max, out) == 0 ? 1 : -1;
}

int ofc__get_bool(const ofc_reader *r, int obj, const char *key)
{
    int i, f = ofc__field(r, obj, key, 0, &i);
    if (f == 0) return -2;
    if (r->toks[i].type == OFC_JSON_TRUE) return 1;
    if (r->toks[i].type == OFC_JSON_FALSE) return 0;
    return -1;
}

int ofc__header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F) return 0;
    return 1;
}
