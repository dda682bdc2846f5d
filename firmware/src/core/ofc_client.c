/* ofc_client.c - lifecycle, discovery, check-in, confirmation and rollback.
 *
 * The download half of the state machine is in ofc_download.c; the overview
 * of the states is in ofc_client.h.
 */
#include "ofc_client_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ofc_url.h"

static const char *const event_names[] = {
    "?",        "server", "checkin", "enrolled", "unauthorized", "checkin_failed", "offer",
    "progress", "update_failed", "reboot", "confirmed", "rollback", "update_done", "rolled_back",
    "command",  "restart", "config", "log_forwarding", "logs_sent", "report", "ca"};

const char *ofc_event_name(ofc_event_type t)
{
    return ((unsigned)t < sizeof event_names / sizeof event_names[0]) ? event_names[t] : "?";
}

void ofc_config_defaults(ofc_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->api_prefix = "/api/v1";
    cfg->default_interval_s = 60;
    cfg->min_interval_s = 5;
    cfg->backoff_base_ms = 2000;
    cfg->backoff_max_ms = 300000;
    cfg->confirm_attempts = 5;
    cfg->rediscover_after = 3;
    cfg->max_offer_failures = 3;
    cfg->log_flush_ms = 1000;
}

void ofc__log(ofc_client *c, int level, const char *fmt, ...)
{
    char line[320];
    va_list ap;
    if (c->p->log == NULL) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->p->log(c->pctx, level, line);
}

void ofc__emit_event(ofc_client *c, const ofc_event *ev)
{
    if (c->cfg.on_event) c->cfg.on_event(c->cfg.user, ev);
}

void ofc__emit(ofc_client *c, ofc_event_type type, int status, const char *text)
{
    ofc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.status = status;
    ev.text = text;
    ofc__emit_event(c, &ev);
}

static uint32_t rng(void *ctx)
{
    ofc_client *c = (ofc_client *)ctx;
    return c->p->random_u32 ? c->p->random_u32(c->pctx) : 0;
}

int ofc__id_equal(const ofc_id *a, const ofc_id *b)
{
    return a->is_number == b->is_number && strcmp(a->text, b->text) == 0;
}

int ofc__api_url(ofc_client *c, const char *suffix)
{
    int n = snprintf(c->api_url, sizeof c->api_url, "%s%s%s", c->base_url,
                     c->cfg.api_prefix ? c->cfg.api_prefix : "", suffix);
    return (n < 0 || (size_t)n >= sizeof c->api_url) ? -1 : 0;
}

int ofc__report(ofc_client *c, const ofc_id *update_id, const char *state, unsigned progress,
                const char *error)
{
    size_t len = 0;
    int n = ofc_build_progress(c->body, sizeof c->body, update_id, state, progress, error);
    int status;
    ofc_event ev;
    if (n < 0 || ofc__api_url(c, "/device/progress")) return OFC_HTTP_ETRANSPORT;
    status = ofc__http_post(c, c->api_url, c->token[0] ? c->token : NULL, c->body, (size_t)n, c->resp,
                            sizeof c->resp, &len);
    if (status != 200 && status != 204)
        ofc__log(c, 1, "progress report %s %u%% not accepted (status %d)", state, progress, status);
    memset(&ev, 0, sizeof ev);
    ev.type = OFC_EV_PROGRESS;
    ev.status = status;
    ev.state = state;
    ev.progress = progress;
    ev.text = error;
    ofc__emit_event(c, &ev);
    return status;
}

int ofc__post(ofc_client *c, const char *suffix, int n, size_t *len)
{
    *len = 0;
    c->resp[0] = '\0';
    if (n < 0 || ofc__api_url(c, suffix)) return OFC_HTTP_ETRANSPORT;
    return ofc__http_post(c, c->api_url, c->token[0] ? c->token : NULL, c->body, (size_t)n, c->resp,
                          sizeof c->resp, len);
}

/* Is the token about to leave in the clear although the server's CA is known? */
static int insecure(ofc_client *c, const char *url, const char *bearer)
{
    ofc_url u;
    if (bearer == NULL || (c->ca == NULL && c->pin[0] == '\0')) return 0;
    if (ofc_url_parse(url, &u) == 0 && u.https) return 0;
    ofc__log(c, 0, "refusing to send the device token over plain http:// to %.120s: the server's CA is "
                   "known, only https:// may carry it", url);
    return 1;
}

int ofc__http_post(ofc_client *c, const char *url, const char *bearer, const char *body, size_t body_len,
                   char *resp, size_t resp_cap, size_t *resp_len)
{
    *resp_len = 0;
    if (insecure(c, url, bearer)) return OFC_HTTP_EINSECURE;
    return c->p->http_post_json(c->pctx, url, bearer, body, body_len, resp, resp_cap, resp_len);
}

int ofc__http_get(ofc_client *c, const char *url, const char *bearer, const ofc_body_sink *sink)
{
    if (insecure(c, url, bearer)) return OFC_HTTP_EINSECURE;
    return c->p->http_get(c->pctx, url, bearer, sink);
}

/* Collects a small JSON answer into c->resp, refusing more than fits. */
typedef struct collect {
    ofc_client *c;
    size_t len;
} collect;

static int collect_begin(void *ctx, int status, long content_length)
{
    (void)ctx;
    (void)status;
    (void)content_length;
    return 0;
}

static int collect_data(void *ctx, const uint8_t *buf, size_t len)
{
    collect *k = (collect *)ctx;
    if (len >= sizeof k->c->resp - k->len) return 1;
    memcpy(k->c->resp + k->len, buf, len);
    k->len += len;
    k->c->resp[k->len] = '\0';
    return 0;
}

int ofc__get_small(ofc_client *c, const char *url, const char *bearer, size_t *len)
{
    collect k;
    ofc_body_sink sink;
    int status;
    *len = 0;
    c->resp[0] = '\0';
    k.c = c;
    k.len = 0;
    sink.begin = collect_begin;
    sink.data = collect_data;
    sink.sink_ctx = &k;
    status = ofc__http_get(c, url, bearer, &sink);
    *len = k.len;
    return status;
}

int ofc__get_json(ofc_client *c, const char *suffix, size_t *len)
{
    *len = 0;
    c->resp[0] = '\0';
    if (ofc__api_url(c, suffix)) return OFC_HTTP_ETRANSPORT;
    return ofc__get_small(c, c->api_url, c->token[0] ? c->token : NULL, len);
}

void ofc__schedule_interval(ofc_client *c)
{
    uint32_t s = c->interval_s ? c->interval_s : c->cfg.default_interval_s;
    if (s < c->cfg.min_interval_s) s = c->cfg.min_interval_s;
    if (s > 86400) s = 86400;
    c->next_at = c->p->now_ms(c->pctx) + ofc_jitter(s * 1000u, 10, rng, c);
}

void ofc_client_init(ofc_client *c, const ofc_config *cfg, const ofc_platform *p, void *pctx)
{
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    if (c->cfg.api_prefix == NULL) c->cfg.api_prefix = "/api/v1";
    if (c->cfg.default_interval_s == 0) c->cfg.default_interval_s = 60;
    if (c->cfg.confirm_attempts == 0) c->cfg.confirm_attempts = 1;
    if (c->cfg.command_wait_s > 25) c->cfg.command_wait_s = 25; /* the server's limit */
    c->p = p;
    c->pctx = pctx;
    c->phase = OFC_PHASE_START;
    c->next_at = p->now_ms(pctx);
    ofc_backoff_init(&c->backoff, c->cfg.backoff_base_ms, c->cfg.backoff_max_ms, rng, c);
}

void ofc_client_checkin_now(ofc_client *c)
{
    if (c->phase == OFC_PHASE_CHECKIN) c->next_at = c->p->now_ms(c->pctx);
}

ofc_phase ofc_client_phase(const ofc_client *c) { return c->phase; }

/* Store a base URL without a trailing slash. */
static int set_base(ofc_client *c, const char *url)
{
    ofc_url u;
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/') n--;
    if (n == 0 || n >= sizeof c->base_url) return -1;
    memcpy(c->base_url, url, n);
    c->base_url[n] = '\0';
    return ofc_url_parse(c->base_url, &u) == 0 ? 0 : -1;
}

static void do_start(ofc_client *c)
{
    char *buf = c->body; /* free until the first request */
    if (c->p->kv_get(c->pctx, OFC_KEY_TOKEN, c->token, sizeof c->token) != 0) c->token[0] = '\0';
    if (c->p->kv_get(c->pctx, OFC_KEY_PENDING, buf, sizeof c->body) == 0) {
        if (ofc_pending_decode(buf, c->toks, sizeof c->toks / sizeof c->toks[0], &c->pending) == 0) {
            c->have_pending = 1;
        } else {
            ofc__log(c, 1, "discarding unreadable pending-update record");
            c->p->kv_erase(c->pctx, OFC_KEY_PENDING);
        }
    }
    ofc__manage_start(c);
    ofc__trust_start(c);
    c->trial = c->p->image_is_trial ? c->p->image_is_trial(c->pctx) : 0;
    if (c->trial) ofc__log(c, 2, "running a trial image: it is confirmed after a good check-in");
    c->phase = OFC_PHASE_DISCOVER;
}

/* A check-in (or discovery) failed: count it, maybe roll back, back off. */
static void checkin_failed(ofc_client *c, ofc_event_type type, int status, const char *why)
{
    ofc_event ev;
    uint32_t delay = ofc_backoff_next(&c->backoff);
    c->fail_streak++;
    if (c->trial && c->fail_streak >= c->cfg.confirm_attempts) {
        ofc__log(c, 0, "trial image failed %u check-ins in a row: rolling back", (unsigned)c->fail_streak);
        ofc__emit(c, OFC_EV_ROLLBACK, status, why);
        c->p->image_rollback(c->pctx); /* returns only if the rollback failed */
        ofc__log(c, 0, "rollback failed; keeping this image");
        c->trial = 0;
    }
    if (c->p->discover && c->cfg.rediscover_after && c->fail_streak % c->cfg.rediscover_after == 0)
        c->phase = OFC_PHASE_DISCOVER;
    c->next_at = c->p->now_ms(c->pctx) + delay;
    ofc__log(c, 1, "check-in failed (%s, status %d); next try in %u ms", why, status, (unsigned)delay);
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.status = status;
    ev.text = why;
    ev.delay_ms = delay;
    ofc__emit_event(c, &ev);
}

static void do_discover(ofc_client *c)
{
    ofc_discovered d;
    int by_mdns = 0;
    memset(&d, 0, sizeof d);
    if (c->p->discover && c->p->discover(c->pctx, &d) == 0 && set_base(c, d.base_url) == 0) {
        by_mdns = 1;
        ofc__log(c, 2, "server found by mDNS: %s%s", c->base_url, d.tls ? " (tls=1)" : "");
    } else if (c->cfg.server_url && set_base(c, c->cfg.server_url) == 0) {
        /* the configured URL */
    } else if (c->base_url[0] == '\0') {
        checkin_failed(c, OFC_EV_CHECKIN_FAILED, OFC_HTTP_ETRANSPORT, "no server found");
        return;
    } /* else: keep the last known address */
    if (ofc__trust_server(c, by_mdns ? &d : NULL) != 0) {
        checkin_failed(c, OFC_EV_CHECKIN_FAILED, OFC_HTTP_ETRANSPORT, "server's CA not trusted");
        c->phase = OFC_PHASE_DISCOVER; /* nothing is sent with the token; look again later */
        return;
    }
    ofc__emit(c, OFC_EV_SERVER, by_mdns, c->base_url);
    c->phase = OFC_PHASE_CHECKIN;
}

/* After reboot into an update: tell the server how it went. */
static void settle_pending(ofc_client *c)
{
    const ofc_pending *pd = &c->pending;
    int rolled_back;
    if (pd->prev_sha256[0] && c->info.sha256[0])
        rolled_back = strcmp(c->info.sha256, pd->prev_sha256) == 0;
    else
        rolled_back = strcmp(c->info.version, pd->prev_version) == 0 &&
                      strcmp(c->info.version, pd->version) != 0;
    if (rolled_back) {
        ofc__log(c, 0, "update %s did not stay: the previous image is running", pd->update_id.text);
        ofc__report(c, &pd->update_id, "failed", 100, "rolled back to the previous image");
        ofc__emit(c, OFC_EV_ROLLED_BACK, 0, pd->update_id.text);
    } else {
        ofc__report(c, &pd->update_id, "done", 100, NULL);
        ofc__emit(c, OFC_EV_UPDATE_DONE, 0, pd->version);
    }
    c->p->kv_erase(c->pctx, OFC_KEY_PENDING);
    c->have_pending = 0;
}

static void consider_offer(ofc_client *c, const ofc_offer *o)
{
    if (c->failed_offer_count > 0 && !ofc__id_equal(&c->failed_offer, &o->id))
        c->failed_offer_count = 0; /* a different offer: start afresh */
    if (c->failed_offer_count >= c->cfg.max_offer_failures && c->cfg.max_offer_failures) {
        ofc__log(c, 1, "skipping update %s: it failed %u times", o->id.text, (unsigned)c->failed_offer_count);
        return;
    }
    if (c->info.sha256[0] && strcmp(c->info.sha256, o->sha256) == 0) {
        ofc__log(c, 2, "offered image is already running");
        return;
    }
    c->offer = *o;
    ofc__log(c, 2, "update %s offered: %s -> %s (%u bytes)", o->id.text, c->info.version, o->version,
             (unsigned)o->size);
    ofc__emit(c, OFC_EV_OFFER, 0, o->version);
    c->phase = OFC_PHASE_UPDATE;
    c->next_at = c->p->now_ms(c->pctx);
}

static void do_checkin(ofc_client *c)
{
    ofc_checkin_reply reply;
    size_t len = 0;
    int n, status;
    memset(&c->info, 0, sizeof c->info);
    if (c->p->device_info(c->pctx, &c->info) != 0) {
        checkin_failed(c, OFC_EV_CHECKIN_FAILED, OFC_HTTP_ETRANSPORT, "device info unavailable");
        return;
    }
    n = ofc_build_checkin(c->body, sizeof c->body, &c->info, c->cfg.name);
    if (n < 0 || ofc__api_url(c, "/device/checkin")) {
        checkin_failed(c, OFC_EV_CHECKIN_FAILED, OFC_HTTP_ETRANSPORT, "request too large");
        return;
    }
    status = ofc__http_post(c, c->api_url, c->token[0] ? c->token : NULL, c->body, (size_t)n, c->resp,
                            sizeof c->resp, &len);
    ofc__emit(c, OFC_EV_CHECKIN, status, NULL);
    if (status == 401) {
        ofc__log(c, 0, "server refused this device's token (401); not re-enrolling");
        checkin_failed(c, OFC_EV_UNAUTHORIZED, status, "unauthorized");
        return;
    }
    if (status != 200) {
        checkin_failed(c, OFC_EV_CHECKIN_FAILED, status, status < 0 ? "transport error" : "unexpected status");
        return;
    }
    if (ofc_parse_checkin(c->resp, len, c->toks, sizeof c->toks / sizeof c->toks[0], &reply) != 0) {
        checkin_failed(c, OFC_EV_CHECKIN_FAILED, status, "malformed response");
        return;
    }
    /* A good check-in. */
    c->fail_streak = 0;
    ofc_backoff_reset(&c->backoff);
    if (reply.checkin_interval_s) c->interval_s = reply.checkin_interval_s;
    if (reply.token[0] && strcmp(reply.token, c->token) != 0) {
        memcpy(c->token, reply.token, sizeof c->token);
        if (c->p->kv_set(c->pctx, OFC_KEY_TOKEN, c->token) != 0)
            ofc__log(c, 0, "could not store the device token");
        ofc__emit(c, OFC_EV_ENROLLED, 0, reply.device_id.text);
    }
    if (c->trial) {
        if (c->p->image_mark_valid(c->pctx) == 0) {
            ofc__log(c, 2, "new image confirmed");
            ofc__emit(c, OFC_EV_CONFIRMED, 0, c->info.version);
        } else {
            ofc__log(c, 0, "could not mark the running image valid");
        }
        c->trial = 0;
    }
    if (c->have_pending) settle_pending(c);
    ofc__schedule_interval(c);
    ofc__manage_checkin(c, &reply);
    if (reply.has_update) consider_offer(c, &reply.update);
}

/* Milliseconds until the next due work (check-in, update or management). */
static uint32_t until_due(ofc_client *c)
{
    int32_t wait = (int32_t)(c->next_at - c->p->now_ms(c->pctx));
    uint32_t w = wait > 0 ? (uint32_t)wait : 0, m = ofc__manage_wait(c);
    return m < w ? m : w;
}

uint32_t ofc_client_poll(ofc_client *c)
{
    if (c->phase == OFC_PHASE_HALTED) return 0xFFFFFFFFu;
    if (!ofc__manage_step(c)) {
        if ((int32_t)(c->next_at - c->p->now_ms(c->pctx)) > 0) return until_due(c);
        switch (c->phase) {
        case OFC_PHASE_START: do_start(c); break;
        case OFC_PHASE_DISCOVER: do_discover(c); break;
        case OFC_PHASE_CHECKIN: do_checkin(c); break;
        case OFC_PHASE_UPDATE: ofc__run_update(c); break;
        case OFC_PHASE_HALTED: break;
        }
    }
    if (c->phase == OFC_PHASE_HALTED) return 0xFFFFFFFFu;
    return until_due(c);
}
