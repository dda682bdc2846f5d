/* ofc_mgmt.c - remote-management bodies; see ofc_mgmt.h. */
#include "ofc_mgmt.h"

#include <stdio.h>
#include <string.h>

#include "ofc_read.h"

#define CONFIG_TOKS 64 /* a flat object of up to 31 members */

static const char *const kind_names[] = {"?", "restart", "config", "log", "custom", "update_abort"};
static const char *const state_names[] = {"done", "failed", "rejected"};

const char *ofc_command_kind_name(ofc_command_kind k)
{
    return (unsigned)k <= OFC_CMDK_UPDATE_ABORT ? kind_names[k] : "?";
}

const char *ofc_command_state_name(ofc_command_state s)
{
    return (unsigned)s <= OFC_CMD_REJECTED ? state_names[s] : "failed";
}

static int parse_doc(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks, ofc_reader *r)
{
    int n = ofc_json_parse(body, len, toks, ntoks);
    if (n < 1 || toks[0].type != OFC_JSON_OBJECT) return -1;
    r->js = body;
    r->toks = toks;
    return 0;
}

/* The id goes into the ack's URL path: unreserved characters only. */
static int url_safe(const char *s)
{
    if (*s == '\0') return 0;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '.' || ch == '_' || ch == '~'))
            return 0;
    }
    return 1;
}

static ofc_command_kind kind_of(const char *s)
{
    int k;
    for (k = OFC_CMDK_RESTART; k <= OFC_CMDK_UPDATE_ABORT; k++)
        if (strcmp(s, kind_names[k]) == 0) return (ofc_command_kind)k;
    return OFC_CMDK_UNKNOWN;
}

/* The raw JSON text of a value (a string keeps its quotes); -1 if too long. */
static int raw_text(const ofc_reader *r, int i, char *out, size_t cap)
{
    const ofc_json_tok *t = &r->toks[i];
    size_t s = t->start, e = t->end;
    if (t->type == OFC_JSON_STRING) {
        s--;
        e++;
    }
    if (e - s >= cap) return -1;
    memcpy(out, r->js + s, e - s);
    out[e - s] = '\0';
    return 0;
}

/* 0: stored (maybe with `bad` set); -1: no usable id, skip it. */
static int parse_command(const ofc_reader *r, int obj, ofc_command *c)
{
    char kind[16];
    int p;
    memset(c, 0, sizeof *c);
    strcpy(c->payload, "null");
    if (r->toks[obj].type != OFC_JSON_OBJECT) return -1;
    if (ofc__get_id(r, obj, "id", &c->id, 1) || !url_safe(c->id.text)) return -1;
    if (ofc__get_str(r, obj, "kind", kind, sizeof kind, 1) || (c->kind = kind_of(kind)) == OFC_CMDK_UNKNOWN) {
        c->bad = "unknown command kind";
        return 0;
    }
    if (ofc__get_str(r, obj, "key", c->key, sizeof c->key, 0)) {
        c->bad = "key is not a string of at most 64 bytes";
        return 0;
    }
    if (ofc__field(r, obj, "payload", 0, &p) == 1 && raw_text(r, p, c->payload, sizeof c->payload)) {
        strcpy(c->payload, "null");
        c->bad = "payload larger than this device accepts (255 bytes)";
        return 0;
    }
    if (c->kind == OFC_CMDK_CUSTOM && c->key[0] == '\0') {
        c->bad = "custom command without a key";
    } else if (c->kind == OFC_CMDK_LOG) {
        c->log_on = p >= 0 && r->toks[p].type == OFC_JSON_OBJECT ? ofc__get_bool(r, p, "on") : -1;
        if (c->log_on < 0) {
            c->log_on = 0;
            c->bad = "log payload must be {\"on\": true|false}";
        }
    }
    return 0;
}

int ofc_parse_commands(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks, ofc_command *out,
                       size_t cap, size_t *total, size_t *skipped)
{
    ofc_reader r;
    int arr, i;
    size_t stored = 0;
    *total = 0;
    *skipped = 0;
    if (parse_doc(body, len, toks, ntoks, &r) || ofc__field(&r, 0, "commands", OFC_JSON_ARRAY, &arr) != 1)
        return OFC_PROTO_EINVAL;
    for (i = arr + 1; i < toks[arr].next; i = toks[i].next) {
        (*total)++;
        if (stored == cap) continue;
        if (parse_command(&r, i, &out[stored]) == 0)
            stored++;
        else
            (*skipped)++;
    }
    return (int)stored;
}

static int finish(ofc_jw *w)
{
    int n = ofc_jw_end(w);
    return n < 0 ? OFC_PROTO_ETOOBIG : n;
}

int ofc_build_ack(char *buf, size_t cap, ofc_command_state state, const char *result)
{
    ofc_jw w;
    ofc_jw_begin(&w, buf, cap);
    ofc_jw_str(&w, "state", ofc_command_state_name(state));
    if (result && result[0]) ofc_jw_str(&w, "result", result);
    return finish(&w);
}

int ofc_parse_config(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks, uint64_t *version,
                     char *values, size_t cap)
{
    ofc_reader r;
    int v;
    values[0] = '\0';
    if (parse_doc(body, len, toks, ntoks, &r) ||
        ofc__get_uint(&r, 0, "version", OFC_CONFIG_VERSION_MAX, version) != 1 ||
        ofc__field(&r, 0, "values", OFC_JSON_OBJECT, &v) != 1)
        return OFC_PROTO_EINVAL;
    return raw_text(&r, v, values, cap) ? OFC_PROTO_ETOOBIG : 0;
}

int ofc_build_config_ack(char *buf, size_t cap, uint64_t version)
{
    ofc_jw w;
    ofc_jw_begin(&w, buf, cap);
    ofc_jw_uint(&w, "version", version);
    return finish(&w);
}

/* The value under `key` in a stored values object, or -1. */
static int config_value(const char *values, const char *key, ofc_json_tok *toks, int want)
{
    int i;
    if (values == NULL || ofc_json_parse(values, strlen(values), toks, CONFIG_TOKS) < 1) return -1;
    i = ofc_json_find(values, toks, 0, key);
    return i >= 0 && toks[i].type == want ? i : -1;
}

int ofc_config_str(const char *values, const char *key, char *out, size_t cap)
{
    ofc_json_tok toks[CONFIG_TOKS];
    int i = config_value(values, key, toks, OFC_JSON_STRING);
    return i >= 0 && ofc_json_string(values, &toks[i], out, cap) >= 0 ? 0 : -1;
}

int ofc_config_int(const char *values, const char *key, int64_t *out)
{
    ofc_json_tok toks[CONFIG_TOKS];
    int i = config_value(values, key, toks, OFC_JSON_NUMBER);
    int neg;
    uint64_t mag;
    if (i < 0) return -1;
    neg = values[toks[i].start] == '-';
    toks[i].start += (uint32_t)neg;
    if (ofc_json_uint(values, &toks[i], neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX, &mag)) return -1;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

int ofc_config_bool(const char *values, const char *key, int *out)
{
    ofc_json_tok toks[CONFIG_TOKS];
    int i;
    if (values == NULL || ofc_json_parse(values, strlen(values), toks, CONFIG_TOKS) < 1) return -1;
    i = ofc_json_find(values, toks, 0, key);
    if (i < 0 || (toks[i].type != OFC_JSON_TRUE && toks[i].type != OFC_JSON_FALSE)) return -1;
    *out = toks[i].type == OFC_JSON_TRUE;
    return 0;
}

int ofc_build_report(char *buf, size_t cap, const char *mac, const char *type, const char *subject,
                     const char *body)
{
    ofc_jw w;
    if (type == NULL || subject == NULL ||
        (strcmp(type, "info") && strcmp(type, "warn") && strcmp(type, "error") && strcmp(type, "success")))
        return OFC_PROTO_EINVAL;
    ofc_jw_begin(&w, buf, cap);
    ofc_jw_str(&w, "mac", mac);
    ofc_jw_str(&w, "type", type);
    ofc_jw_str(&w, "subject", subject);
    if (body && body[0]) ofc_jw_str(&w, "body", body);
    return finish(&w);
}

/* Append one line object at *off, keeping room for the closing "]}". */
static int put_line(char *buf, size_t cap, size_t *off, int *lines, unsigned level, const char *scope,
                    const char *text)
{
    size_t start = *off + (*lines ? 1 : 0);
    ofc_jw w;
    int n;
    if (start + 3 > cap) return -1;
    ofc_jw_begin(&w, buf + start, cap - start - 2);
    ofc_jw_str(&w, "level", ofc_log_level_name((ofc_log_level)level));
    if (scope && scope[0]) ofc_jw_str(&w, "scope", scope);
    ofc_jw_str(&w, "text", text);
    n = ofc_jw_end(&w);
    if (n < 0) return -1;
    if (*lines) buf[*off] = ',';
    *off = start + (size_t)n;
    (*lines)++;
    return 0;
}

int ofc_build_logs(char *buf, size_t cap, const ofc_logring *ring, uint32_t dropped, size_t *taken)
{
    static const char head[] = "{\"lines\":[";
    size_t off = sizeof head - 1;
    int lines = 0;
    unsigned i;
    *taken = 0;
    if (ring->count == 0 || cap < off + 3) return OFC_PROTO_ETOOBIG;
    memcpy(buf, head, off);
    if (dropped) {
        char msg[64];
        snprintf(msg, sizeof msg, "%lu log lines dropped: the device's buffer was full", (unsigned long)dropped);
        if (put_line(buf, cap, &off, &lines, OFC_LOG_WARN, "otafleet", msg)) return OFC_PROTO_ETOOBIG;
    }
    for (i = 0; i < ring->count; i++) {
        const ofc_log_line *l = ofc_logring_at(ring, i);
        if (put_line(buf, cap, &off, &lines, l->level, l->scope, l->text)) break;
        (*taken)++;
    }
    if (*taken == 0) return OFC_PROTO_ETOOBIG;
    memcpy(buf + off, "]}", 3);
    return (int)off + 2;
}

int ofc_parse_logs_reply(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks, int *logs,
                         uint32_t *accepted)
{
    ofc_reader r;
    uint64_t n;
    *logs = -1;
    *accepted = 0;
    if (parse_doc(body, len, toks, ntoks, &r)) return OFC_PROTO_EINVAL;
    *logs = ofc__get_bool(&r, 0, "logs");
    if (*logs == -1 || ofc__get_uint(&r, 0, "accepted", 0xFFFFFFFFu, &n) < 0) return OFC_PROTO_EINVAL;
    if (*logs == -2) *logs = -1;
    *accepted = (uint32_t)n;
    return 0;
}
