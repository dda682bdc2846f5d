/* ofc_manage.c - remote management: commands, config, log forwarding, reports.
 *
 * What is due is decided after each good check-in (ofc__manage_checkin) from
 * the answer's commands_pending, config_version and logs; ofc_client_poll()
 * then calls ofc__manage_step() before anything else, which does one due
 * request per call. Failures are not retried in a loop: what failed is due
 * again after the next good check-in, so a server without these routes
 * costs one refused request per check-in and nothing more.
 */
#include "ofc_client_internal.h"

#include <stdio.h>
#include <string.h>

#define NTOKS (sizeof c->toks / sizeof c->toks[0])
#define MAX_ROUNDS 8 /* command GETs per check-in */

static int due(const ofc_client *c, uint32_t at)
{
    return (int32_t)(at - c->p->now_ms(c->pctx)) <= 0;
}

static int ok(int status) { return status == 200 || status == 204; }

void ofc__manage_start(ofc_client *c)
{
    char v[24];
    uint64_t version = 0;
    const char *s;
    strcpy(c->cfg_values, "{}");
    if (c->p->kv_get(c->pctx, OFC_KEY_CFG_VERSION, v, sizeof v) != 0 || v[0] == '\0') return;
    for (s = v; *s >= '0' && *s <= '9' && s - v < 19; s++) /* 19 digits cannot overflow */
        version = version * 10 + (uint64_t)(*s - '0');
    if (*s != '\0' || c->p->kv_get(c->pctx, OFC_KEY_CFG, c->cfg_values, sizeof c->cfg_values) != 0) {
        ofc__log(c, 1, "stored config unreadable: fetching it again");
        strcpy(c->cfg_values, "{}");
        return;
    }
    c->mg.have_cfg = 1;
    c->mg.cfg_version = version;
}

static void set_logs(ofc_client *c, int on)
{
    if (!on) ofc_logring_clear(&c->logs);
    if (on == c->mg.logs_on) return;
    c->mg.logs_on = on;
    ofc__log(c, 2, "log forwarding %s", on ? "on" : "off");
    ofc__emit(c, OFC_EV_LOG_FORWARDING, on, NULL);
}

void ofc__manage_checkin(ofc_client *c, const ofc_checkin_reply *r)
{
    c->mg.fetch = r->commands_pending > 0;
    c->mg.rounds = 0;
    c->mg.lp_blocked = 0;
    c->mg.logs_blocked = 0;
    if (r->has_config_version && (!c->mg.have_cfg || r->config_version != c->mg.cfg_version))
        c->mg.cfg_due = 1;
    if (r->logs >= 0) set_logs(c, r->logs);
}

/* ---- config ---- */

/* Fetch, store, hand over and acknowledge the device's config. Returns 0,
 * or -1 with the reason in why. The version is stored only once the server
 * took the ack, so a lost ack means "fetch again", never "never acked". */
static int apply_config(ofc_client *c, char *why, size_t cap)
{
    char v[24];
    uint64_t version;
    size_t len;
    int status = ofc__get_json(c, "/device/config", &len), r;
    ofc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = OFC_EV_CONFIG;
    c->mg.cfg_due = 0;
    if (status != 200) {
        snprintf(why, cap, "config fetch failed (status %d)", status);
    } else if ((r = ofc_parse_config(c->resp, len, c->toks, NTOKS, &version, c->body, sizeof c->cfg_values)) != 0) {
        snprintf(why, cap, r == OFC_PROTO_ETOOBIG ? "config larger than %u bytes" : "config answer malformed",
                 (unsigned)sizeof c->cfg_values - 1);
    } else if (c->p->kv_set(c->pctx, OFC_KEY_CFG, c->body) != 0) {
        snprintf(why, cap, "config could not be stored");
    } else {
        memcpy(c->cfg_values, c->body, strlen(c->body) + 1);
        if (c->cfg.on_config) c->cfg.on_config(c->cfg.user, c->cfg_values);
        snprintf(v, sizeof v, "%llu", (unsigned long long)version);
        status = ofc__post(c, "/device/config", ofc_build_config_ack(c->body, sizeof c->body, version), &len);
        if (!ok(status)) {
            ofc__log(c, 1, "config %s applied; the server did not take the ack (status %d)", v, status);
        } else if (c->p->kv_set(c->pctx, OFC_KEY_CFG_VERSION, v) != 0) {
            ofc__log(c, 1, "config %s applied; its version could not be stored", v);
        } else {
            c->mg.have_cfg = 1;
            c->mg.cfg_version = version;
            ofc__log(c, 2, "config %s applied", v);
        }
        ev.status = status;
        ev.text = v;
        ofc__emit_event(c, &ev);
        return 0;
    }
    ofc__log(c, 1, "%s; keeping the current config", why);
    ev.status = status;
    ev.state = "failed";
    ev.text = why;
    ofc__emit_event(c, &ev);
    return -1;
}

/* ---- commands ---- */

static int ack(ofc_client *c, const ofc_command *cmd, ofc_command_state state, const char *result)
{
    char suffix[24 + OFC_ID_MAX];
    size_t len;
    int status;
    ofc_event ev;
    snprintf(suffix, sizeof suffix, "/device/commands/%s", cmd->id.text);
    status = ofc__post(c, suffix, ofc_build_ack(c->body, sizeof c->body, state, result), &len);
    if (!ok(status)) ofc__log(c, 1, "ack of command %s not accepted (status %d)", cmd->id.text, status);
    memset(&ev, 0, sizeof ev);
    ev.type = OFC_EV_COMMAND;
    ev.status = status;
    ev.state = ofc_command_state_name(state);
    ev.text = cmd->kind == OFC_CMDK_CUSTOM ? cmd->key : ofc_command_kind_name(cmd->kind);
    ofc__emit_event(c, &ev);
    return status;
}

static int restart(ofc_client *c, const ofc_command *cmd)
{
    int status = ack(c, cmd, OFC_CMD_DONE, "restarting");
    /* Without the ack the server delivers the command again: restarting
     * anyway could loop. A 409 means it already ended otherwise (e.g. it
     * was cancelled): no restart either. */
    if (!ok(status)) return status;
    ofc_client_report(c, "info", "restarting on request", NULL);
    ofc__log(c, 2, "restarting on request");
    ofc__emit(c, OFC_EV_RESTART, 0, NULL);
    c->phase = OFC_PHASE_HALTED;
    c->p->reboot(c->pctx);
    return status;
}

/* Handle one command and acknowledge it; returns the ack's status. */
static int handle(ofc_client *c, const ofc_command *cmd)
{
    char result[OFC_CMD_RESULT_MAX];
    int state = OFC_CMD_DONE;
    result[0] = '\0';
    if (cmd->bad) return ack(c, cmd, OFC_CMD_REJECTED, cmd->bad);
    switch (cmd->kind) {
    case OFC_CMDK_RESTART: return restart(c, cmd);
    case OFC_CMDK_CONFIG:
        if (apply_config(c, result, sizeof result) != 0) state = OFC_CMD_FAILED;
        break;
    case OFC_CMDK_LOG:
        set_logs(c, cmd->log_on);
        snprintf(result, sizeof result, "log forwarding %s", cmd->log_on ? "on" : "off");
        break;
    case OFC_CMDK_UPDATE_ABORT:
        /* Downloads run within one poll: between polls an update is at most
         * offered, not started, and dropping the offer aborts it. */
        if (c->phase == OFC_PHASE_UPDATE) {
            c->phase = OFC_PHASE_CHECKIN;
            snprintf(result, sizeof result, "update %s abandoned before download", c->offer.id.text);
        } else {
            snprintf(result, sizeof result, "no update running");
        }
        break;
    case OFC_CMDK_CUSTOM:
        if (c->cfg.on_command == NULL) {
            state = OFC_CMD_REJECTED;
            snprintf(result, sizeof result, "no handler");
        } else {
            state = c->cfg.on_command(c->cfg.user, cmd->key, cmd->payload, result, sizeof result);
            result[sizeof result - 1] = '\0';
            if (state < OFC_CMD_DONE || state > OFC_CMD_REJECTED) state = OFC_CMD_FAILED;
        }
        break;
    case OFC_CMDK_UNKNOWN: state = OFC_CMD_REJECTED; break; /* not reached: parsed as bad */
    }
    return ack(c, cmd, (ofc_command_state)state, result);
}

static void fetch_commands(ofc_client *c, uint32_t wait_s)
{
    char suffix[40];
    size_t len, total, skipped;
    int status, n, i, acked = 1;
    c->mg.fetch = 0;
    c->mg.rounds++;
    snprintf(suffix, sizeof suffix, "/device/commands?wait=%u", (unsigned)wait_s);
    status = ofc__get_json(c, suffix, &len);
    if (status != 200) {
        ofc__log(c, 1, "commands not fetched (status %d)", status);
        c->mg.lp_blocked = 1;
        return;
    }
    n = ofc_parse_commands(c->resp, len, c->toks, NTOKS, c->cmds, OFC_CMD_BATCH, &total, &skipped);
    if (n < 0) {
        ofc__log(c, 1, "commands answer malformed");
        c->mg.lp_blocked = 1;
        return;
    }
    if (skipped) ofc__log(c, 1, "%u command(s) without a usable id ignored", (unsigned)skipped);
    for (i = 0; i < n; i++) {
        if (!ok(handle(c, &c->cmds[i]))) acked = 0;
        if (c->phase == OFC_PHASE_HALTED) return;
    }
    /* More wait: fetch again, unless an ack was refused (the command would
     * come back at once and be handled twice in a row). */
    if (acked && total > (size_t)n + skipped && c->mg.rounds < MAX_ROUNDS) c->mg.fetch = 1;
}

/* ---- logs ---- */

static void flush_logs(ofc_client *c)
{
    size_t taken, len;
    int n = ofc_build_logs(c->body, sizeof c->body, &c->logs, c->logs.dropped, &taken), status, on;
    uint32_t accepted;
    ofc_event ev;
    c->mg.logs_next = c->p->now_ms(c->pctx) + c->cfg.log_flush_ms;
    if (n < 0) { /* cannot happen with the sizes in use; never wedge on it */
        ofc_logring_pop(&c->logs, 1);
        return;
    }
    status = ofc__post(c, "/device/logs", n, &len);
    if (status == 200 || (status >= 400 && status < 500 && status != 401 && status != 404)) {
        ofc_logring_pop(&c->logs, (unsigned)taken); /* sent, or refused for its content */
        c->logs.dropped = 0;
    }
    memset(&ev, 0, sizeof ev);
    ev.type = OFC_EV_LOGS_SENT;
    ev.status = status;
    if (status == 200 && ofc_parse_logs_reply(c->resp, len, c->toks, NTOKS, &on, &accepted) == 0) {
        ev.progress = accepted;
        if (on == 0) set_logs(c, 0);
    } else if (status == 404) {
        set_logs(c, 0); /* a server without the logs route */
    } else if (status != 200) {
        ofc__log(c, 1, "log lines not sent (status %d)", status);
        c->mg.logs_blocked = 1;
    }
    ofc__emit_event(c, &ev);
    if (c->logs.count && !c->mg.logs_blocked) c->mg.logs_next = c->p->now_ms(c->pctx);
}

static int logs_due(const ofc_client *c)
{
    return c->mg.logs_on && c->logs.count > 0 && !c->mg.logs_blocked;
}

/* ---- scheduling ---- */

static int can_talk(const ofc_client *c)
{
    return (c->phase == OFC_PHASE_CHECKIN || c->phase == OFC_PHASE_UPDATE) && c->token[0] && c->base_url[0];
}

static uint32_t long_poll_s(const ofc_client *c)
{
    int32_t left = (int32_t)(c->next_at - c->p->now_ms(c->pctx));
    if (!c->cfg.command_wait_s || c->mg.lp_blocked || c->phase != OFC_PHASE_CHECKIN || left < 1000) return 0;
    return (uint32_t)left / 1000u < c->cfg.command_wait_s ? (uint32_t)left / 1000u : c->cfg.command_wait_s;
}

int ofc__manage_step(ofc_client *c)
{
    uint32_t wait_s;
    if (!can_talk(c)) return 0;
    if (c->mg.fetch) {
        fetch_commands(c, 0);
    } else if (c->mg.cfg_due) {
        char why[OFC_CMD_RESULT_MAX];
        apply_config(c, why, sizeof why);
    } else if (logs_due(c) && due(c, c->mg.logs_next)) {
        flush_logs(c);
    } else if ((wait_s = long_poll_s(c)) > 0 && due(c, c->mg.lp_next)) {
        c->mg.lp_next = c->p->now_ms(c->pctx) + 1000; /* at most one long-poll a second */
        fetch_commands(c, wait_s);
    } else {
        return 0;
    }
    return 1;
}

uint32_t ofc__manage_wait(ofc_client *c)
{
    uint32_t now = c->p->now_ms(c->pctx), w = 0xFFFFFFFFu;
    if (!can_talk(c)) return w;
    if (c->mg.fetch || c->mg.cfg_due) return 0;
    if (logs_due(c)) w = due(c, c->mg.logs_next) ? 0 : c->mg.logs_next - now;
    if (long_poll_s(c) > 0) {
        uint32_t lp = due(c, c->mg.lp_next) ? 0 : c->mg.lp_next - now;
        if (lp < w) w = lp;
    }
    return w;
}

/* ---- the sketch's side ---- */

int ofc_client_report(ofc_client *c, const char *type, const char *subject, const char *body)
{
    size_t len;
    int n, status;
    if (!c->token[0] || !c->base_url[0]) return OFC_HTTP_ETRANSPORT;
    if (!c->info.mac[0] && c->p->device_info(c->pctx, &c->info) != 0) return OFC_HTTP_ETRANSPORT;
    n = ofc_build_report(c->body, sizeof c->body, c->info.mac, type, subject, body);
    if (n < 0) return OFC_HTTP_ETRANSPORT; /* bad type, or larger than the body buffer */
    status = ofc__post(c, "/device/report", n, &len);
    if (!ok(status)) ofc__log(c, 1, "report \"%.60s\" not accepted (status %d)", subject, status);
    ofc__emit(c, OFC_EV_REPORT, status, subject);
    return status;
}

int ofc_client_log(ofc_client *c, ofc_log_level level, const char *scope, const char *text)
{
    if (!c->mg.logs_on || text == NULL) return 0;
    ofc_logring_push(&c->logs, level, scope, text);
    return 1;
}

int ofc_client_logs_on(const ofc_client *c) { return c->mg.logs_on; }

const char *ofc_client_config_values(const ofc_client *c) { return c->cfg_values[0] ? c->cfg_values : "{}"; }
uint64_t ofc_client_config_version(const ofc_client *c) { return c->mg.have_cfg ? c->mg.cfg_version : 0; }

int ofc_client_config_str(const ofc_client *c, const char *key, char *out, size_t cap)
{
    return ofc_config_str(ofc_client_config_values(c), key, out, cap);
}

int ofc_client_config_int(const ofc_client *c, const char *key, int64_t *out)
{
    return ofc_config_int(ofc_client_config_values(c), key, out);
}

int ofc_client_config_bool(const ofc_client *c, const char *key, int *out)
{
    return ofc_config_bool(ofc_client_config_values(c), key, out);
}
