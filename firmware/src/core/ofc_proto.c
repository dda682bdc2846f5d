/* ofc_proto.c - building and validating native v1 bodies; see ofc_proto.h. */
#include "ofc_proto.h"

#include "ofc_read.h"

#include <string.h>

int ofc_hex_normalize(const char *s, size_t n, char *out)
{
    size_t i;
    if (strlen(s) != n) return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F') c = (char)(c + 32);
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
        out[i] = c;
    }
    out[n] = '\0';
    return 1;
}

static void put_id(ofc_jw *w, const char *key, const ofc_id *id)
{
    if (id->is_number)
        ofc_jw_raw(w, key, id->text);
    else
        ofc_jw_str(w, key, id->text);
}

int ofc_build_checkin(char *buf, size_t cap, const ofc_device_info *info, const char *name)
{
    ofc_jw w;
    int n;
    ofc_jw_begin(&w, buf, cap);
    ofc_jw_str(&w, "mac", info->mac);
    ofc_jw_str(&w, "chip", info->chip);
    ofc_jw_str(&w, "project", info->project);
    ofc_jw_str(&w, "version", info->version);
    if (info->sha256[0]) ofc_jw_str(&w, "sha256", info->sha256);
    if (info->free_space) ofc_jw_uint(&w, "free_space", info->free_space);
    if (info->ip[0]) ofc_jw_str(&w, "ip", info->ip);
    if (info->has_rssi) ofc_jw_int(&w, "rssi", info->rssi);
    ofc_jw_uint(&w, "uptime_s", info->uptime_s);
    if (name && name[0]) ofc_jw_str(&w, "name", name);
    n = ofc_jw_end(&w);
    return n < 0 ? OFC_PROTO_ETOOBIG : n;
}

int ofc_build_progress(char *buf, size_t cap, const ofc_id *update_id, const char *state,
                       unsigned progress, const char *error)
{
    ofc_jw w;
    int n;
    ofc_jw_begin(&w, buf, cap);
    put_id(&w, "update_id", update_id);
    ofc_jw_str(&w, "state", state);
    ofc_jw_uint(&w, "progress", progress > 100 ? 100 : progress);
    if (error && error[0]) ofc_jw_str(&w, "error", error);
    n = ofc_jw_end(&w);
    return n < 0 ? OFC_PROTO_ETOOBIG : n;
}

/* ---- reading (helpers in ofc_read.c) ---- */

static int parse_offer(const ofc_reader *r, int obj, ofc_offer *o)
{
    char hex[80];
    uint64_t size;
    memset(o, 0, sizeof *o);
    if (ofc__get_id(r, obj, "id", &o->id, 1)) return -1;
    if (ofc__get_str(r, obj, "version", o->version, sizeof o->version, 0)) return -1;
    if (ofc__get_str(r, obj, "url", o->url, sizeof o->url, 1) || o->url[0] == '\0') return -1;
    if (!ofc__header_safe(o->url)) return -1;
    if (ofc__get_uint(r, obj, "size", 0xFFFFFFFFu, &size) != 1 || size == 0) return -1;
    o->size = (uint32_t)size;
    if (ofc__get_str(r, obj, "sha256", hex, sizeof hex, 1) || !ofc_hex_normalize(hex, 64, o->sha256))
        return -1;
    if (ofc__get_str(r, obj, "md5", hex, sizeof hex, 0)) return -1;
    if (hex[0] && !ofc_hex_normalize(hex, 32, o->md5)) return -1;
    return 0;
}

int ofc_parse_checkin(const char *body, size_t len, ofc_json_tok *toks, size_t ntoks,
                      ofc_checkin_reply *out)
{
    ofc_reader r;
    int n, upd, f;
    uint64_t interval, pending;
    memset(out, 0, sizeof *out);
    n = ofc_json_parse(body, len, toks, ntoks);
    if (n < 1 || toks[0].type != OFC_JSON_OBJECT) return OFC_PROTO_EINVAL;
    r.js = body;
    r.toks = toks;
    if (ofc__get_id(&r, 0, "device_id", &out->device_id, 0)) return OFC_PROTO_EINVAL;
    if (ofc__get_str(&r, 0, "token", out->token, sizeof out->token, 0)) return OFC_PROTO_EINVAL;
    if (!ofc__header_safe(out->token)) return OFC_PROTO_EINVAL;
    f = ofc__field(&r, 0, "update", OFC_JSON_OBJECT, &upd);
    if (f < 0) return OFC_PROTO_EINVAL;
    if (f == 1) {
        if (parse_offer(&r, upd, &out->update)) return OFC_PROTO_EINVAL;
        out->has_update = 1;
    }
    if (ofc__get_uint(&r, 0, "checkin_interval_s", 10000000u, &interval) < 0) return OFC_PROTO_EINVAL;
    out->checkin_interval_s = (uint32_t)interval;
    /* Remote management (all optional: an older server sends none). */
    if (ofc__get_uint(&r, 0, "commands_pending", 0xFFFFFFFFu, &pending) < 0) return OFC_PROTO_EINVAL;
    out->commands_pending = (uint32_t)pending;
    f = ofc__get_uint(&r, 0, "config_version", OFC_CONFIG_VERSION_MAX, &out->config_version);
    if (f < 0) return OFC_PROTO_EINVAL;
    out->has_config_version = f;
    out->logs = ofc__get_bool(&r, 0, "logs");
    if (out->logs == -1) return OFC_PROTO_EINVAL;
    if (out->logs == -2) out->logs = -1;
    return 0;
}

int ofc_pending_encode(char *buf, size_t cap, const ofc_pending *p)
{
    ofc_jw w;
    int n;
    ofc_jw_begin(&w, buf, cap);
    put_id(&w, "update_id", &p->update_id);
    ofc_jw_str(&w, "sha256", p->sha256);
    ofc_jw_str(&w, "version", p->version);
    ofc_jw_str(&w, "prev_sha256", p->prev_sha256);
    ofc_jw_str(&w, "prev_version", p->prev_version);
    n = ofc_jw_end(&w);
    return n < 0 ? OFC_PROTO_ETOOBIG : n;
}

int ofc_pending_decode(const char *text, ofc_json_tok *toks, size_t ntoks, ofc_pending *out)
{
    ofc_reader r;
    int n = ofc_json_parse(text, strlen(text), toks, ntoks);
    memset(out, 0, sizeof *out);
    if (n < 1 || toks[0].type != OFC_JSON_OBJECT) return OFC_PROTO_EINVAL;
    r.js = text;
    r.toks = toks;
    if (ofc__get_id(&r, 0, "update_id", &out->update_id, 1) ||
        ofc__get_str(&r, 0, "sha256", out->sha256, sizeof out->sha256, 1) ||
        ofc__get_str(&r, 0, "version", out->version, sizeof out->version, 0) ||
        ofc__get_str(&r, 0, "prev_sha256", out->prev_sha256, sizeof out->prev_sha256, 0) ||
        ofc__get_str(&r, 0, "prev_version", out->prev_version, sizeof out->prev_version, 0))
        return OFC_PROTO_EINVAL;
    return 0;
}
