/* hostdevice.c - a simulated ESP32 running the portable client on a PC.
 *
 * Why it exists: it takes the real client core through a real update
 * against a real `otafleet serve`, with everything else emulated:
 *   state dir        the device's flash and NVS:
 *     running.bin    the image in the running app partition
 *     ota.bin        the OTA slot being written
 *     previous.bin   the image that ran before the last update (for rollback)
 *     boot_next      present when ota.bin was activated (esp_ota_set_boot_partition)
 *     trial          present while the running image awaits confirmation
 *                    (ESP_OTA_IMG_PENDING_VERIFY with a rollback bootloader)
 *     nvs/<key>      Preferences / NVS strings (token, pending)
 *   time             virtual: the loop jumps to the client's next due time,
 *                    so back-off and check-in intervals cost no real time
 *   reboot           swaps ota.bin into running.bin and restarts the client
 * Every client event is printed to stdout as one "event=... key=value" line;
 * test/integration.py reads them. Remote management is driven from the
 * server's side; the device's part is scripted by flags:
 *   --report TYPE:SUBJECT  after the first good check-in, post this report
 *   --log-lines N          once log forwarding is on, log N lines
 *                          ("hostdevice line 1 of N", ...) through ofc_client_log
 *   custom commands are answered "done" with the result "echo <key>"; a new
 *   config prints "config values=<json>"; a restart command ends in the same
 *   simulated reboot as an update.
 *
 * Usage: hostdevice --server URL --state DIR --mac MAC [--image FILE]
 *          [--until enrolled|confirmed|update-failed|checkins:N|restarted|
 *                   config-applied|log-sent:N|report-sent|commands:N]
 *          [--token TOKEN] [--corrupt-download] [--chunk N] [--max-polls N]
 *          [--report TYPE:SUBJECT] [--log-lines N]
 * Exit status: 0 when the --until condition was reached, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/core/ofc_client.h"
#include "host_image.h"
#include "posix_http.h"

#define FREE_SPACE 0x1E0000u /* a 1.875 MB OTA slot, as in the default partition tables */

typedef struct host {
    const char *state;
    const char *mac;
    size_t chunk;
    int corrupt;
    uint32_t now;
    uint32_t rng;
    FILE *ota;
    size_t ota_written;
    int reboot_requested;
    /* what to stop at */
    const char *until;
    int until_checkins;
    int checkins, enrolled, done, failed;
    int good_checkins, restart_seen, restarted, config_applied, report_sent;
    unsigned logs_accepted, until_logs;
    int commands, until_commands;
    int ca_refused;
    /* scripted device behaviour */
    char report_type[16];
    const char *report_subject;
    int report_done;
    int log_lines, logged;
    /* TLS and discovery */
    const char *ca; /* from the core's set_ca */
    const char *server;
    const char *mdns_txt;
    const char *mdns_host;
} host;

static host H;

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", H.state, name);
}

static int exists(const char *name)
{
    char p[512];
    struct stat st;
    path_of(p, sizeof p, name);
    return stat(p, &st) == 0;
}

static void touch(const char *name)
{
    char p[512];
    FILE *f;
    path_of(p, sizeof p, name);
    f = fopen(p, "w");
    if (f) fclose(f);
}

static void drop(const char *name)
{
    char p[512];
    path_of(p, sizeof p, name);
    unlink(p);
}

static int move(const char *from, const char *to)
{
    char a[512], b[512];
    path_of(a, sizeof a, from);
    path_of(b, sizeof b, to);
    return rename(a, b);
}

static int copy_file(const char *from, const char *to_path)
{
    FILE *in = fopen(from, "rb"), *out;
    char buf[4096];
    size_t n;
    if (in == NULL) return -1;
    out = fopen(to_path, "wb");
    if (out == NULL) {
        fclose(in);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    return fclose(out);
}

/* ---- platform: time, randomness, log ---- */

static uint32_t p_now(void *ctx) { (void)ctx; return H.now; }

static uint32_t p_rng(void *ctx)
{
    (void)ctx;
    H.rng ^= H.rng << 13; /* xorshift32 */
    H.rng ^= H.rng >> 17;
    H.rng ^= H.rng << 5;
    return H.rng;
}

static void p_log(void *ctx, int level, const char *msg)
{
    static const char *const names[] = {"E", "W", "I", "D"};
    (void)ctx;
    fprintf(stderr, "[%8u ms] %s %s\n", (unsigned)H.now, names[level & 3], msg);
}

/* ---- platform: HTTP ---- */

typedef struct collect {
    char *buf;
    size_t cap, len;
    int overflow;
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
    collect *c = (collect *)ctx;
    if (c->len + len >= c->cap) {
        c->overflow = 1;
        return 1;
    }
    memcpy(c->buf + c->len, buf, len);
    c->len += len;
    c->buf[c->len] = '\0';
    return 0;
}

static int p_post(void *ctx, const char *url, const char *bearer, const char *body, size_t body_len,
                  char *resp, size_t resp_cap, size_t *resp_len)
{
    collect c;
    ofc_body_sink sink;
    int status;
    (void)ctx;
    c.buf = resp;
    c.cap = resp_cap;
    c.len = 0;
    c.overflow = 0;
    resp[0] = '\0';
    sink.begin = collect_begin;
    sink.data = collect_data;
    sink.sink_ctx = &c;
    status = posix_http_request("POST", url, bearer, body, body_len, &sink, 4096, 10000, NULL, H.ca);
    *resp_len = c.len;
    printf("post url=%s status=%d token=%d\n", url, status, bearer != NULL);
    fflush(stdout);
    if (c.overflow) {
        fprintf(stderr, "hostdevice: reply from %s larger than %lu bytes\n", url, (unsigned long)resp_cap);
        return -1;
    }
    if (status != 200 && status != 204)
        fprintf(stderr, "hostdevice: POST %s -> %d %.200s\n", url, status, resp);
    return status;
}

/* Wraps the client's sink to flip one byte on the way, as a bad link would. */
typedef struct corrupting {
    const ofc_body_sink *inner;
    size_t seen;
    size_t flip_at;
} corrupting;

static int corrupt_begin(void *ctx, int status, long content_length)
{
    corrupting *k = (corrupting *)ctx;
    if (content_length > 0) k->flip_at = (size_t)content_length / 2;
    return k->inner->begin(k->inner->sink_ctx, status, content_length);
}

static int corrupt_data(void *ctx, const uint8_t *buf, size_t len)
{
    corrupting *k = (corrupting *)ctx;
    uint8_t piece[4096];
    memcpy(piece, buf, len);
    if (k->flip_at >= k->seen && k->flip_at < k->seen + len) piece[k->flip_at - k->seen] ^= 0x5A;
    k->seen += len;
    return k->inner->data(k->inner->sink_ctx, piece, len);
}

static int p_get(void *ctx, const char *url, const char *bearer, const ofc_body_sink *sink)
{
    posix_http_headers hdr;
    corrupting k;
    ofc_body_sink wrapped;
    int status;
    (void)ctx;
    if (H.corrupt) {
        k.inner = sink;
        k.seen = 0;
        k.flip_at = 0;
        wrapped.begin = corrupt_begin;
        wrapped.data = corrupt_data;
        wrapped.sink_ctx = &k;
        sink = &wrapped;
    }
    status = posix_http_request("GET", url, bearer, NULL, 0, sink, H.chunk, 10000, &hdr, H.ca);
    if (strstr(url, "/device/firmware/"))
        printf("download url=%s status=%d x_sha256=%s x_md5=%s\n", url, status,
               hdr.x_sha256[0] ? hdr.x_sha256 : "-", hdr.x_md5[0] ? hdr.x_md5 : "-");
    else
        printf("get url=%s status=%d token=%d\n", url, status, bearer != NULL);
    fflush(stdout);
    return status;
}

/* ---- platform: TLS and discovery ---- */

static int p_set_ca(void *ctx, const char *pem)
{
    (void)ctx;
    H.ca = pem;
    return 0;
}

/* As if mDNS answered: the --server URL with the --mdns-txt keys. */
static int p_discover(void *ctx, ofc_discovered *out)
{
    const char *t;
    (void)ctx;
    snprintf(out->base_url, sizeof out->base_url, "%s", H.server);
    snprintf(out->host, sizeof out->host, "%s", H.mdns_host ? H.mdns_host : "");
    out->tls = strstr(H.mdns_txt, "tls=1") != NULL;
    if ((t = strstr(H.mdns_txt, "ca=")) != NULL)
        snprintf(out->ca_sha256, sizeof out->ca_sha256, "%.*s", (int)strcspn(t + 3, " ,"), t + 3);
    return 0;
}

/* ---- platform: NVS ---- */

static int kv_path(char *out, size_t cap, const char *key)
{
    const char *k;
    for (k = key; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_')) return -1;
    snprintf(out, cap, "%s/nvs/%s", H.state, key);
    return 0;
}

static int p_kv_get(void *ctx, const char *key, char *out, size_t cap)
{
    char p[512];
    FILE *f;
    size_t n;
    (void)ctx;
    if (kv_path(p, sizeof p, key) || (f = fopen(p, "rb")) == NULL) return -1;
    n = fread(out, 1, cap, f);
    fclose(f);
    if (n >= cap) return -1;
    out[n] = '\0';
    return 0;
}

static int p_kv_set(void *ctx, const char *key, const char *value)
{
    char p[512], tmp[520];
    FILE *f;
    (void)ctx;
    if (kv_path(p, sizeof p, key)) return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    f = fopen(tmp, "wb");
    if (f == NULL) return -1;
    fputs(value, f);
    if (fclose(f) != 0) return -1;
    return rename(tmp, p); /* NVS writes are atomic per key */
}

static int p_kv_erase(void *ctx, const char *key)
{
    char p[512];
    (void)ctx;
    if (kv_path(p, sizeof p, key)) return -1;
    unlink(p);
    return 0;
}

/* ---- platform: identity, OTA, reboot ---- */

static int p_info(void *ctx, ofc_device_info *info)
{
    char p[512];
    host_image img;
    (void)ctx;
    path_of(p, sizeof p, "running.bin");
    if (host_image_read(p, &img) != 0) return -1;
    snprintf(info->mac, sizeof info->mac, "%s", H.mac);
    snprintf(info->chip, sizeof info->chip, "%s", img.chip);
    snprintf(info->project, sizeof info->project, "%s", img.project);
    snprintf(info->version, sizeof info->version, "%s", img.version);
    memcpy(info->sha256, img.sha256, sizeof info->sha256);
    snprintf(info->ip, sizeof info->ip, "127.0.0.1");
    info->free_space = FREE_SPACE;
    info->rssi = -48;
    info->has_rssi = 1;
    info->uptime_s = H.now / 1000u;
    return 0;
}

static int p_is_trial(void *ctx) { (void)ctx; return exists("trial"); }

static int p_mark_valid(void *ctx)
{
    (void)ctx;
    drop("trial");
    return 0;
}

static void p_rollback(void *ctx)
{
    (void)ctx;
    if (!exists("previous.bin")) return; /* nothing to go back to: "fails" */
    move("previous.bin", "running.bin");
    drop("trial");
    drop("boot_next");
    printf("rollback-simulated\n");
    H.reboot_requested = 1;
}

static int p_ota_begin(void *ctx, uint32_t size)
{
    char p[512];
    (void)ctx;
    if (size > FREE_SPACE) return -1;
    path_of(p, sizeof p, "ota.bin");
    H.ota = fopen(p, "wb");
    H.ota_written = 0;
    drop("boot_next");
    return H.ota ? 0 : -1;
}

static int p_ota_write(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    if (H.ota == NULL || fwrite(buf, 1, len, H.ota) != len) return -1;
    H.ota_written += len;
    return 0;
}

static void p_ota_abort(void *ctx)
{
    (void)ctx;
    if (H.ota) fclose(H.ota);
    H.ota = NULL;
    drop("ota.bin");
}

/* Like Update.end(true): the written image must verify before it may boot. */
static int p_ota_finish(void *ctx)
{
    char p[512], why[80];
    uint8_t *data;
    FILE *f;
    int ok;
    if (H.ota == NULL || fclose(H.ota) != 0) return -1;
    H.ota = NULL;
    path_of(p, sizeof p, "ota.bin");
    data = malloc(H.ota_written + 1);
    f = fopen(p, "rb");
    ok = data && f && fread(data, 1, H.ota_written, f) == H.ota_written &&
         host_image_verify(data, H.ota_written, why, sizeof why) == 0;
    if (f) fclose(f);
    free(data);
    if (!ok) {
        fprintf(stderr, "hostdevice: written image does not verify\n");
        p_ota_abort(ctx);
        return -1;
    }
    touch("boot_next");
    return 0;
}

static void p_reboot(void *ctx)
{
    (void)ctx;
    H.reboot_requested = 1;
}

static ofc_platform PLATFORM = {p_now,      p_rng,        p_log,      p_post,      p_get,
                                NULL,       p_kv_get,     p_kv_set,   p_kv_erase,  p_info,
                                p_is_trial, p_mark_valid, p_rollback, p_ota_begin, p_ota_write,
                                p_ota_finish, p_ota_abort, p_reboot,  p_set_ca};

/* A whole (small) file into a malloc'd string, or NULL. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = n >= 0 && n < 65536 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

/* What the bootloader does at the next start. */
static void simulate_boot(void)
{
    if (exists("boot_next")) {
        drop("previous.bin");
        move("running.bin", "previous.bin");
        move("ota.bin", "running.bin");
        drop("boot_next");
        touch("trial"); /* a rollback-enabled bootloader boots it PENDING_VERIFY */
    }
    printf("reboot-simulated\n");
    fflush(stdout);
}

static void on_event(void *user, const ofc_event *ev)
{
    (void)user;
    printf("event=%s status=%d", ofc_event_name(ev->type), ev->status);
    if (ev->state) printf(" state=%s progress=%u", ev->state, ev->progress);
    else if (ev->type == OFC_EV_LOGS_SENT) printf(" accepted=%u", ev->progress);
    if (ev->delay_ms) printf(" delay_ms=%u", (unsigned)ev->delay_ms);
    if (ev->text) printf(" text=\"%s\"", ev->text);
    printf("\n");
    fflush(stdout);
    switch (ev->type) {
    case OFC_EV_CHECKIN:
        H.checkins++;
        if (ev->status == 200) {
            H.good_checkins++;
            if (H.restart_seen) H.restarted = 1; /* back after the restart */
        }
        break;
    case OFC_EV_RESTART: H.restart_seen = 1; break;
    case OFC_EV_COMMAND: H.commands++; break;
    case OFC_EV_CONFIG: H.config_applied |= ev->state == NULL && ev->status == 200; break;
    case OFC_EV_LOGS_SENT: H.logs_accepted += ev->progress; break;
    case OFC_EV_REPORT: H.report_sent |= ev->status == 200; break;
    case OFC_EV_ENROLLED: H.enrolled = 1; break;
    case OFC_EV_CA: if (ev->status == 0) H.ca_refused++; break;
    case OFC_EV_UPDATE_DONE: H.done = 1; break;
    case OFC_EV_UPDATE_FAILED: H.failed = 1; break;
    default: break;
    }
}

/* Custom commands: echo the key back as the result. */
static int on_command(void *user, const char *key, const char *payload, char *result, size_t cap)
{
    (void)user;
    printf("command key=%s payload=%s\n", key, payload);
    fflush(stdout);
    snprintf(result, cap, "echo %s", key);
    return OFC_CMD_DONE;
}

static void on_config(void *user, const char *values)
{
    (void)user;
    printf("config values=%s\n", values);
    fflush(stdout);
}

/* What the sketch would do between polls (never inside a callback: the
 * client's buffers are in use there). */
static void sketch(ofc_client *c)
{
    if (H.report_subject && !H.report_done && H.good_checkins > 0) {
        H.report_done = 1;
        ofc_client_report(c, H.report_type, H.report_subject, "sent by hostdevice --report");
    }
    while (H.logged < H.log_lines && ofc_client_logs_on(c)) {
        char line[64];
        H.logged++;
        snprintf(line, sizeof line, "hostdevice line %d of %d", H.logged, H.log_lines);
        ofc_client_log(c, H.logged % 2 ? OFC_LOG_INFO : OFC_LOG_WARN, "hostdevice", line);
    }
}

static int reached(void)
{
    if (strcmp(H.until, "restarted") == 0) return H.restarted;
    if (strcmp(H.until, "config-applied") == 0) return H.config_applied;
    if (strcmp(H.until, "report-sent") == 0) return H.report_sent;
    if (H.until_logs) return H.logs_accepted >= H.until_logs;
    if (H.until_commands) return H.commands >= H.until_commands;
    if (strcmp(H.until, "enrolled") == 0) return H.enrolled;
    if (strcmp(H.until, "confirmed") == 0) return H.done;
    if (strcmp(H.until, "update-failed") == 0) return H.failed;
    if (strcmp(H.until, "ca-refused") == 0) return H.ca_refused > 0;
    return H.until_checkins > 0 && H.checkins >= H.until_checkins;
}

static int usage(void)
{
    fprintf(stderr, "usage: hostdevice --server URL --state DIR --mac MAC [--image FILE]\n"
                    "  [--until enrolled|confirmed|update-failed|checkins:N] [--token T]\n"
                    "  [--until restarted|config-applied|log-sent:N|report-sent|commands:N]\n"
                    "  [--corrupt-download] [--chunk N] [--max-polls N] [--seed N]\n"
                    "  [--report TYPE:SUBJECT] [--log-lines N] [--until ca-refused]\n"
                    "  [--ca PEMFILE] [--pin SHA256] [--mdns-txt \"tls=1 ca=HEX\"] [--mdns-host NAME]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static ofc_client client;
    ofc_config cfg;
    const char *server = NULL, *image = NULL, *token = NULL, *ca_file = NULL, *pin = NULL;
    static char *ca_pem; /* reachable until exit (LeakSanitizer) */
    char p[512];
    int i, polls, max_polls = 400;
    H.chunk = 1024;
    H.rng = 0x2545F491u;
    H.until = "checkins:1";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--corrupt-download") == 0) { H.corrupt = 1; continue; }
        if (v == NULL) return usage();
        if (strcmp(a, "--server") == 0) server = v;
        else if (strcmp(a, "--state") == 0) H.state = v;
        else if (strcmp(a, "--mac") == 0) H.mac = v;
        else if (strcmp(a, "--image") == 0) image = v;
        else if (strcmp(a, "--until") == 0) H.until = v;
        else if (strcmp(a, "--token") == 0) token = v;
        else if (strcmp(a, "--chunk") == 0) H.chunk = (size_t)atol(v);
        else if (strcmp(a, "--max-polls") == 0) max_polls = atoi(v);
        else if (strcmp(a, "--seed") == 0) H.rng = (uint32_t)strtoul(v, NULL, 0) | 1u;
        else if (strcmp(a, "--log-lines") == 0) H.log_lines = atoi(v);
        else if (strcmp(a, "--ca") == 0) ca_file = v;
        else if (strcmp(a, "--pin") == 0) pin = v;
        else if (strcmp(a, "--mdns-txt") == 0) H.mdns_txt = v;
        else if (strcmp(a, "--mdns-host") == 0) H.mdns_host = v;
        else if (strcmp(a, "--report") == 0) {
            const char *colon = strchr(v, ':');
            if (colon == NULL || (size_t)(colon - v) >= sizeof H.report_type) return usage();
            memcpy(H.report_type, v, (size_t)(colon - v));
            H.report_subject = colon + 1;
        }
        else return usage();
        i++;
    }
    if (!server || !H.state || !H.mac || H.chunk == 0) return usage();
    if (strncmp(H.until, "checkins:", 9) == 0) H.until_checkins = atoi(H.until + 9);
    if (strncmp(H.until, "commands:", 9) == 0 && (H.until_commands = atoi(H.until + 9)) <= 0) return usage();
    if (strncmp(H.until, "log-sent:", 9) == 0 && (H.until_logs = (unsigned)atoi(H.until + 9)) == 0) return usage();
    mkdir(H.state, 0755);
    path_of(p, sizeof p, "nvs");
    mkdir(p, 0755);
    if (!exists("running.bin")) {
        path_of(p, sizeof p, "running.bin");
        if (image == NULL || copy_file(image, p) != 0) {
            fprintf(stderr, "hostdevice: no running image: pass --image FILE\n");
            return 2;
        }
    }
    if (token) p_kv_set(NULL, "token", token);
    if (ca_file && (ca_pem = read_text(ca_file)) == NULL) {
        fprintf(stderr, "hostdevice: cannot read the CA file %s\n", ca_file);
        return 2;
    }
    H.server = server;
    if (H.mdns_txt) PLATFORM.discover = p_discover;

    ofc_config_defaults(&cfg);
    cfg.server_url = server;
    cfg.ca_pem = ca_pem;
    cfg.ca_sha256 = pin;
    cfg.on_event = on_event;
    cfg.on_command = on_command;
    cfg.on_config = on_config;
    ofc_client_init(&client, &cfg, &PLATFORM, NULL);
    for (polls = 0; polls < max_polls; polls++) {
        uint32_t wait = ofc_client_poll(&client);
        if (reached()) return 0;
        sketch(&client);
        if (reached()) return 0;
        if (H.reboot_requested) {
            H.reboot_requested = 0;
            simulate_boot();
            ofc_client_init(&client, &cfg, &PLATFORM, NULL);
            continue;
        }
        if (wait == 0xFFFFFFFFu) break;
        H.now += wait;
    }
    fprintf(stderr, "hostdevice: stopped after %d polls without reaching --until %s\n", polls, H.until);
    return 1;
}
