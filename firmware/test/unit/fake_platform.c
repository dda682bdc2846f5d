/* fake_platform.c - the scripted device of fake_platform.h. */
#include "fake_platform.h"

#include <stdio.h>
#include <string.h>

static uint32_t f_now(void *ctx) { return ((fake *)ctx)->now; }

static uint32_t f_rng(void *ctx)
{
    fake *f = (fake *)ctx;
    f->rng_state = f->rng_state * 1664525u + 1013904223u;
    return f->rng_state;
}

static void f_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg; /* uncomment to debug: fprintf(stderr, "    log%d %s\n", level, msg); */
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int f_post(void *ctx, const char *url, const char *bearer, const char *body, size_t body_len,
                  char *resp, size_t resp_cap, size_t *resp_len)
{
    fake *f = (fake *)ctx;
    const char *reply = "";
    int status;
    (void)body_len;
    if (f->nposts < FAKE_MAX_POSTS) {
        fake_post *p = &f->posts[f->nposts++];
        copy(p->url, sizeof p->url, url);
        copy(p->bearer, sizeof p->bearer, bearer);
        copy(p->body, sizeof p->body, body);
    }
    if (ends_with(url, "/device/checkin")) {
        if (f->checkin_i >= f->checkin_n) return -1; /* server away */
        status = f->checkin_status[f->checkin_i];
        reply = f->checkin_body[f->checkin_i];
        f->checkin_i++;
    } else if (ends_with(url, "/device/logs")) {
        status = f->logs_status;
        reply = f->logs_reply;
    } else if (ends_with(url, "/device/config")) {
        status = f->config_ack_status;
        reply = "{}";
    } else if (ends_with(url, "/device/report")) {
        status = f->report_status;
        reply = "{}";
    } else if (strstr(url, "/device/commands/")) {
        status = f->ack_status;
        reply = "{}";
    } else {
        status = f->progress_status;
    }
    if (strlen(reply) >= resp_cap) return -1;
    strcpy(resp, reply);
    *resp_len = strlen(reply);
    return status;
}

/* A small JSON answer, delivered in pieces of 7 bytes. */
static int serve_text(const ofc_body_sink *sink, int status, const char *text)
{
    size_t off = 0, len = strlen(text);
    if (sink->begin(sink->sink_ctx, status, (long)len) != 0) return OFC_HTTP_EABORTED;
    while (off < len) {
        size_t n = len - off < 7 ? len - off : 7;
        if (sink->data(sink->sink_ctx, (const uint8_t *)text + off, n) != 0) return OFC_HTTP_EABORTED;
        off += n;
    }
    return status;
}

static int serve_image(fake *f, const char *url, const char *bearer, const ofc_body_sink *sink)
{
    size_t off = 0, limit = f->get_cut_at ? f->get_cut_at : f->image_len;
    long cl = f->get_content_length == -2 ? (long)f->image_len : f->get_content_length;
    f->get_calls++;
    copy(f->get_url, sizeof f->get_url, url);
    copy(f->get_bearer, sizeof f->get_bearer, bearer);
    if (sink->begin(sink->sink_ctx, f->get_status, cl) != 0) return OFC_HTTP_EABORTED;
    while (off < limit) {
        uint8_t piece[512];
        size_t n = limit - off < f->get_chunk ? limit - off : f->get_chunk;
        memcpy(piece, f->image + off, n);
        if (f->corrupt_at >= 0 && (size_t)f->corrupt_at >= off && (size_t)f->corrupt_at < off + n)
            piece[(size_t)f->corrupt_at - off] ^= 0x01;
        if (sink->data(sink->sink_ctx, piece, n) != 0) return OFC_HTTP_EABORTED;
        off += n;
    }
    return f->get_cut_at ? -5 : f->get_status;
}

/* Commands and config answers by URL; anything else is the image. */
static int f_get(void *ctx, const char *url, const char *bearer, const ofc_body_sink *sink)
{
    fake *f = (fake *)ctx;
    if (strstr(url, "/device/commands?")) {
        int i = f->commands_i;
        f->commands_gets++;
        copy(f->commands_url, sizeof f->commands_url, url);
        if (i >= f->commands_n) return serve_text(sink, 200, "{\"commands\":[]}");
        f->commands_i++;
        return serve_text(sink, f->commands_status[i], f->commands_body[i]);
    }
    if (ends_with(url, "/tls/ca.pem")) {
        f->ca_gets++;
        copy(f->ca_get_bearer, sizeof f->ca_get_bearer, bearer);
        return f->ca_served ? serve_text(sink, 200, f->ca_served) : serve_text(sink, 404, "{}");
    }
    if (ends_with(url, "/device/config")) {
        f->config_gets++;
        return serve_text(sink, f->config_status, f->config_body ? f->config_body : "{}");
    }
    return serve_image(f, url, bearer, sink);
}

static int f_discover(void *ctx, ofc_discovered *out)
{
    fake *f = (fake *)ctx;
    f->discover_calls++;
    if (f->discover_result == NULL) return -1;
    copy(out->base_url, sizeof out->base_url, f->discover_result);
    copy(out->host, sizeof out->host, "otafleet-box.local");
    out->tls = f->discover_tls;
    copy(out->ca_sha256, sizeof out->ca_sha256, f->discover_ca);
    return 0;
}

static int f_set_ca(void *ctx, const char *pem)
{
    fake *f = (fake *)ctx;
    f->set_ca_calls++;
    f->set_ca_pem = pem;
    return 0;
}

static int slot(fake *f, const char *key)
{
    int i;
    for (i = 0; i < FAKE_KV; i++)
        if (f->kv_used[i] && strcmp(f->kv_key[i], key) == 0) return i;
    return -1;
}

static int f_kv_get(void *ctx, const char *key, char *out, size_t cap)
{
    fake *f = (fake *)ctx;
    int i = slot(f, key);
    if (i < 0 || strlen(f->kv_val[i]) >= cap) return -1;
    strcpy(out, f->kv_val[i]);
    return 0;
}

static int f_kv_set(void *ctx, const char *key, const char *value)
{
    fake *f = (fake *)ctx;
    if (f->kv_fail_prefix && strncmp(key, f->kv_fail_prefix, strlen(f->kv_fail_prefix)) == 0) {
        f->kv_set_fail++;
        return -1;
    }
    fake_kv_put(f, key, value);
    return 0;
}

static int f_kv_erase(void *ctx, const char *key)
{
    fake *f = (fake *)ctx;
    int i = slot(f, key);
    if (i >= 0) f->kv_used[i] = 0;
    return 0;
}

static int f_info(void *ctx, ofc_device_info *info)
{
    *info = ((fake *)ctx)->info;
    return 0;
}

static int f_is_trial(void *ctx) { return ((fake *)ctx)->trial; }
static int f_mark_valid(void *ctx) { ((fake *)ctx)->mark_valid_calls++; ((fake *)ctx)->trial = 0; return 0; }
static void f_rollback(void *ctx) { ((fake *)ctx)->rollback_calls++; }

static int f_ota_begin(void *ctx, uint32_t size)
{
    fake *f = (fake *)ctx;
    if (size > sizeof f->ota) return -1;
    f->ota_begun++;
    f->ota_len = 0;
    return 0;
}

static int f_ota_write(void *ctx, const uint8_t *buf, size_t len)
{
    fake *f = (fake *)ctx;
    if (f->ota_len + len > sizeof f->ota) return -1;
    memcpy(f->ota + f->ota_len, buf, len);
    f->ota_len += len;
    return 0;
}

static int f_ota_finish(void *ctx) { ((fake *)ctx)->ota_finished++; return ((fake *)ctx)->ota_finish_result; }
static void f_ota_abort(void *ctx) { ((fake *)ctx)->ota_aborted++; }
static void f_reboot(void *ctx) { ((fake *)ctx)->reboot_calls++; }

const ofc_platform fake_platform = {f_now,      f_rng,        f_log,        f_post,       f_get,
                                    f_discover, f_kv_get,     f_kv_set,     f_kv_erase,   f_info,
                                    f_is_trial, f_mark_valid, f_rollback,   f_ota_begin,  f_ota_write,
                                    f_ota_finish, f_ota_abort, f_reboot,  f_set_ca};

void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    f->now = 1000;
    f->rng_state = 99;
    f->progress_status = 204;
    f->get_status = 200;
    f->get_content_length = -2;
    f->get_chunk = 100;
    f->corrupt_at = -1;
    f->config_status = 200;
    f->config_ack_status = 200;
    f->ack_status = 200;
    f->report_status = 200;
    f->logs_status = 200;
    f->logs_reply = "{\"logs\":true,\"accepted\":1}";
    strcpy(f->info.mac, "24:0A:C4:00:00:01");
    strcpy(f->info.chip, "esp32");
    strcpy(f->info.project, "demo");
    strcpy(f->info.version, "1.0.0");
    strcpy(f->info.sha256, "1111111111111111111111111111111111111111111111111111111111111111");
    f->info.free_space = 8192;
}

void fake_on_event(void *user, const ofc_event *ev)
{
    fake *f = (fake *)user;
    if (f->nevents >= FAKE_MAX_EVENTS) return;
    f->events[f->nevents] = ev->type;
    f->event_status[f->nevents] = ev->status;
    f->event_delay[f->nevents] = ev->delay_ms;
    if (ev->type == OFC_EV_PROGRESS)
        snprintf(f->event_text[f->nevents], 96, "%s %u %s", ev->state, ev->progress, ev->text ? ev->text : "");
    else
        copy(f->event_text[f->nevents], 96, ev->text);
    f->nevents++;
}

void fake_reply(fake *f, int status, const char *body)
{
    f->checkin_status[f->checkin_n] = status;
    f->checkin_body[f->checkin_n] = body;
    f->checkin_n++;
}

const char *fake_kv(fake *f, const char *key)
{
    int i = slot(f, key);
    return i < 0 ? NULL : f->kv_val[i];
}

void fake_kv_put(fake *f, const char *key, const char *value)
{
    int i = slot(f, key);
    if (i < 0)
        for (i = 0; i < FAKE_KV && f->kv_used[i]; i++) {
        }
    if (i >= FAKE_KV) return;
    f->kv_used[i] = 1;
    copy(f->kv_key[i], sizeof f->kv_key[i], key);
    copy(f->kv_val[i], sizeof f->kv_val[i], value);
}

void fake_commands(fake *f, int status, const char *body)
{
    f->commands_status[f->commands_n] = status;
    f->commands_body[f->commands_n] = body;
    f->commands_n++;
}

int fake_find_post(const fake *f, const char *suffix, int n)
{
    int i;
    for (i = 0; i < f->nposts; i++)
        if (ends_with(f->posts[i].url, suffix) && n-- == 0) return i;
    return -1;
}

int fake_count_events(const fake *f, ofc_event_type t)
{
    int i, n = 0;
    for (i = 0; i < f->nevents; i++) n += f->events[i] == t;
    return n;
}

int fake_run(ofc_client *c, fake *f, ofc_event_type until, int max_polls)
{
    int i;
    for (i = 0; i < max_polls; i++) {
        uint32_t wait = ofc_client_poll(c);
        if (until && fake_count_events(f, until) > 0) return 1;
        if (wait == 0xFFFFFFFFu) return until == 0;
        f->now += wait;
    }
    return 0;
}

int fake_count_posts(const fake *f, const char *suffix, const char *needle)
{
    int i, n = 0;
    for (i = 0; i < f->nposts; i++)
        if (ends_with(f->posts[i].url, suffix) && (needle == NULL || strstr(f->posts[i].body, needle))) n++;
    return n;
}

void fake_config(ofc_config *cfg, fake *f)
{
    ofc_config_defaults(cfg);
    cfg->server_url = "http://10.0.0.2:8080/";
    cfg->on_event = fake_on_event;
    cfg->user = f;
}
