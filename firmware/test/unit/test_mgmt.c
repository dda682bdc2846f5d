/* test_mgmt.c - the remote-management bodies (ofc_mgmt.c) and the log ring
 * (ofc_logring.c): the commands list including hostile ones (and a
 * mutation run that must never crash or overrun), acks, the config answer
 * and reading values from it, report and log bodies, the new check-in
 * fields. */
#include <stdint.h>

#include "../../src/core/ofc_logring.h"
#include "../../src/core/ofc_mgmt.h"
#include "check.h"

static ofc_json_tok toks[128];
static ofc_command cmds[4];

static int commands(const char *body, size_t *total, size_t *skipped)
{
    return ofc_parse_commands(body, strlen(body), toks, 128, cmds, 4, total, skipped);
}

static void test_commands_all_kinds(void)
{
    size_t total, skipped;
    const char *body =
        "{\"commands\":["
        "{\"id\":1,\"kind\":\"restart\",\"key\":null,\"payload\":null,\"expires_at\":\"2026-12-06T06:00:00Z\"},"
        "{\"id\":2,\"kind\":\"config\"},"
        "{\"id\":3,\"kind\":\"log\",\"payload\":{\"on\":true}},"
        "{\"id\":\"c-4\",\"kind\":\"custom\",\"key\":\"blink\",\"payload\":{\"times\": [1, 2]}}]}";
    CHECK_INT(commands(body, &total, &skipped), 4);
    CHECK_INT(total, 4);
    CHECK_INT(skipped, 0);
    CHECK_INT(cmds[0].kind, OFC_CMDK_RESTART);
    CHECK_STR(cmds[0].id.text, "1");
    CHECK_INT(cmds[0].id.is_number, 1);
    CHECK_STR(cmds[0].payload, "null");
    CHECK(cmds[0].bad == NULL);
    CHECK_INT(cmds[1].kind, OFC_CMDK_CONFIG);
    CHECK_INT(cmds[2].kind, OFC_CMDK_LOG);
    CHECK_INT(cmds[2].log_on, 1);
    CHECK(cmds[2].bad == NULL);
    CHECK_INT(cmds[3].kind, OFC_CMDK_CUSTOM);
    CHECK_STR(cmds[3].id.text, "c-4");
    CHECK_STR(cmds[3].key, "blink");
    CHECK_STR(cmds[3].payload, "{\"times\": [1, 2]}");
    CHECK(cmds[3].bad == NULL);
    CHECK_INT(commands("{\"commands\":[{\"id\":9,\"kind\":\"update_abort\"},"
                       "{\"id\":10,\"kind\":\"custom\",\"key\":\"k\",\"payload\":\"a \\\"q\\\"\"}]}",
                       &total, &skipped), 2);
    CHECK_INT(cmds[0].kind, OFC_CMDK_UPDATE_ABORT);
    CHECK_STR(cmds[1].payload, "\"a \\\"q\\\"\""); /* a string payload keeps its quotes */
    CHECK_INT(commands("{\"commands\":[]}", &total, &skipped), 0);
    CHECK_INT(total, 0);
    CHECK_STR(ofc_command_kind_name(OFC_CMDK_UPDATE_ABORT), "update_abort");
    CHECK_STR(ofc_command_state_name(OFC_CMD_REJECTED), "rejected");
}

static void test_commands_more_than_fit(void)
{
    size_t total, skipped;
    CHECK_INT(commands("{\"commands\":[{\"id\":1,\"kind\":\"config\"},{\"id\":2,\"kind\":\"config\"},"
                       "{\"id\":3,\"kind\":\"config\"},{\"id\":4,\"kind\":\"config\"},{\"id\":5,\"kind\":\"config\"},"
                       "{\"id\":6,\"kind\":\"config\"}]}", &total, &skipped), 4);
    CHECK_INT(total, 6);
    CHECK_STR(cmds[3].id.text, "4");
}

static void test_commands_hostile_documents(void)
{
    static const char *const bad[] = {
        "", "[]", "null", "{}", "{\"commands\":{}}", "{\"commands\":null}", "{\"commands\":\"x\"}",
        "{\"commands\":[{\"id\":1,\"kind\":\"restart\"}", /* truncated */
        "{\"commands\":[],\"commands\":[]}",                 /* duplicate key */
        "{\"commands\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}", /* too deep */
        "{\"commands\":[{\"id\":1,\"kind\":\"restart\"}]} x",
    };
    size_t i, total, skipped;
    char many[4096];
    size_t off;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_INT(commands(bad[i], &total, &skipped), OFC_PROTO_EINVAL);
    /* more tokens than the array holds: refused as a whole, no overrun */
    off = (size_t)sprintf(many, "{\"commands\":[");
    for (i = 0; i < 200; i++) off += (size_t)sprintf(many + off, "%s1", i ? "," : "");
    strcpy(many + off, "]}");
    CHECK_INT(commands(many, &total, &skipped), OFC_PROTO_EINVAL);
}

static void test_commands_hostile_entries(void)
{
    size_t total, skipped;
    char body[1024], longkey[100];
    memset(longkey, 'k', 65);
    longkey[65] = '\0';
    /* without a usable id: skipped (cannot be acknowledged) */
    CHECK_INT(commands("{\"commands\":[7,\"x\",null,{\"kind\":\"restart\"},{\"id\":null,\"kind\":\"restart\"},"
                       "{\"id\":\"../admin\",\"kind\":\"restart\"},{\"id\":\"a b\",\"kind\":\"restart\"},"
                       "{\"id\":\"\",\"kind\":\"restart\"},{\"id\":true,\"kind\":\"restart\"},"
                       "{\"id\":{\"x\":1},\"kind\":\"restart\"},{\"id\":\"a%2F\",\"kind\":\"restart\"}]}",
                       &total, &skipped), 0);
    CHECK_INT(total, 11);
    CHECK_INT(skipped, 11);
    /* with an id but wrong otherwise: stored as bad, to be rejected */
    CHECK_INT(commands("{\"commands\":[{\"id\":1,\"kind\":\"format_disk\"},{\"id\":2,\"kind\":3},"
                       "{\"id\":3,\"kind\":\"custom\"},{\"id\":4,\"kind\":\"log\",\"payload\":{\"on\":\"yes\"}}]}",
                       &total, &skipped), 4);
    CHECK_STR(cmds[0].bad, "unknown command kind");
    CHECK_STR(cmds[1].bad, "unknown command kind");
    CHECK_STR(cmds[2].bad, "custom command without a key");
    CHECK(cmds[3].bad != NULL);
    CHECK_INT(commands("{\"commands\":[{\"id\":5,\"kind\":\"log\"},{\"id\":6,\"kind\":\"log\",\"payload\":[true]},"
                       "{\"id\":7,\"kind\":\"custom\",\"key\":5}]}", &total, &skipped), 3);
    CHECK(cmds[0].bad != NULL);
    CHECK(cmds[1].bad != NULL);
    CHECK(cmds[2].bad != NULL);
    snprintf(body, sizeof body, "{\"commands\":[{\"id\":8,\"kind\":\"custom\",\"key\":\"%s\"}]}", longkey);
    CHECK_INT(commands(body, &total, &skipped), 1);
    CHECK_STR(cmds[0].bad, "key is not a string of at most 64 bytes");
    longkey[64] = '\0';
    snprintf(body, sizeof body, "{\"commands\":[{\"id\":8,\"kind\":\"custom\",\"key\":\"%s\"}]}", longkey);
    CHECK_INT(commands(body, &total, &skipped), 1);
    CHECK(cmds[0].bad == NULL);
    {
        char big[600];
        memset(big, 'p', 300);
        big[300] = '\0';
        snprintf(body, sizeof body, "{\"commands\":[{\"id\":9,\"kind\":\"custom\",\"key\":\"k\",\"payload\":\"%s\"}]}",
                 big);
        CHECK_INT(commands(body, &total, &skipped), 1);
        CHECK(cmds[0].bad != NULL);
        CHECK_STR(cmds[0].payload, "null");
    }
}

static void test_commands_mutations_never_crash(void)
{
    const char *seed = "{\"commands\":[{\"id\":1,\"kind\":\"restart\",\"key\":null,\"payload\":null},"
                       "{\"id\":\"c-2\",\"kind\":\"custom\",\"key\":\"blink\",\"payload\":{\"n\":[1,\"x\"]}},"
                       "{\"id\":3,\"kind\":\"log\",\"payload\":{\"on\":false}}]}";
    char buf[256];
    uint32_t rng = 777;
    size_t len = strlen(seed), total, skipped;
    int i, parsed = 0;
    for (i = 0; i < 20000; i++) {
        size_t n = len, k;
        int edits = 1 + i % 4, e, r, j;
        memcpy(buf, seed, len);
        for (e = 0; e < edits && n > 1; e++) {
            rng = rng * 1103515245u + 12345u;
            k = (rng >> 8) % n;
            switch ((rng >> 4) % 3) {
            case 0: buf[k] = (char)(rng >> 16); break;
            case 1: memmove(buf + k, buf + k + 1, n - k - 1); n--; break;
            default: n = k + 1; break;
            }
        }
        r = ofc_parse_commands(buf, n, toks, 128, cmds, 4, &total, &skipped);
        if (r < 0) continue;
        parsed++;
        CHECK(r <= 4);
        for (j = 0; j < r; j++) {
            CHECK(cmds[j].id.text[0] != '\0');
            CHECK(strchr(cmds[j].id.text, '/') == NULL);
            CHECK(strlen(cmds[j].payload) < sizeof cmds[j].payload);
        }
    }
    CHECK(parsed > 0);
}

static void test_ack_bodies(void)
{
    char buf[128];
    CHECK(ofc_build_ack(buf, sizeof buf, OFC_CMD_DONE, NULL) > 0);
    CHECK_STR(buf, "{\"state\":\"done\"}");
    CHECK(ofc_build_ack(buf, sizeof buf, OFC_CMD_REJECTED, "no \"handler\"\n") > 0);
    CHECK_STR(buf, "{\"state\":\"rejected\",\"result\":\"no \\\"handler\\\"\\u000a\"}");
    CHECK(ofc_build_ack(buf, sizeof buf, OFC_CMD_FAILED, "") > 0);
    CHECK_STR(buf, "{\"state\":\"failed\"}");
    CHECK_INT(ofc_build_ack(buf, 10, OFC_CMD_FAILED, "x"), OFC_PROTO_ETOOBIG);
    CHECK(ofc_build_config_ack(buf, sizeof buf, 9007199254740991u) > 0);
    CHECK_STR(buf, "{\"version\":9007199254740991}");
}

static void test_config_answer(void)
{
    const char *good = "{\"version\": 12, \"values\": {\"greeting\": \"h\\u00e9\", \"n\": -3, \"on\": true}}";
    char values[128];
    uint64_t v;
    CHECK_INT(ofc_parse_config(good, strlen(good), toks, 128, &v, values, sizeof values), 0);
    CHECK_INT(v, 12);
    CHECK_STR(values, "{\"greeting\": \"h\\u00e9\", \"n\": -3, \"on\": true}");
    CHECK_INT(ofc_parse_config(good, strlen(good), toks, 128, &v, values, 20), OFC_PROTO_ETOOBIG);
    {
        static const char *const bad[] = {"{\"values\":{}}", "{\"version\":1}", "{\"version\":-1,\"values\":{}}",
                                          "{\"version\":1,\"values\":[]}", "{\"version\":\"1\",\"values\":{}}",
                                          "{\"version\":1.5,\"values\":{}}", "{\"version\":1,\"values\":null}",
                                          "{\"version\":9007199254740992,\"values\":{}}", "[1]", "{"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
            CHECK_INT(ofc_parse_config(bad[i], strlen(bad[i]), toks, 128, &v, values, sizeof values),
                      OFC_PROTO_EINVAL);
    }
}

static void test_config_values(void)
{
    const char *vals = "{\"greeting\":\"h\\u00e9llo\",\"n\":-42,\"big\":9223372036854775807,"
                       "\"min\":-9223372036854775808,\"over\":9223372036854775808,\"f\":1.5,\"on\":true,\"off\":false,"
                       "\"s\":\"12\"}";
    char out[16];
    int64_t i;
    int b;
    CHECK_INT(ofc_config_str(vals, "greeting", out, sizeof out), 0);
    CHECK_STR(out, "h\xc3\xa9llo");
    CHECK_INT(ofc_config_str(vals, "greeting", out, 4), -1); /* does not fit */
    CHECK_INT(ofc_config_str(vals, "n", out, sizeof out), -1); /* not a string */
    CHECK_INT(ofc_config_str(vals, "absent", out, sizeof out), -1);
    CHECK_INT(ofc_config_int(vals, "n", &i), 0);
    CHECK_INT(i, -42);
    CHECK_INT(ofc_config_int(vals, "big", &i), 0);
    CHECK(i == INT64_MAX);
    CHECK_INT(ofc_config_int(vals, "min", &i), 0);
    CHECK(i == INT64_MIN);
    CHECK_INT(ofc_config_int(vals, "over", &i), -1);
    CHECK_INT(ofc_config_int(vals, "f", &i), -1);
    CHECK_INT(ofc_config_int(vals, "s", &i), -1);
    CHECK_INT(ofc_config_bool(vals, "on", &b), 0);
    CHECK_INT(b, 1);
    CHECK_INT(ofc_config_bool(vals, "off", &b), 0);
    CHECK_INT(b, 0);
    CHECK_INT(ofc_config_bool(vals, "n", &b), -1);
    CHECK_INT(ofc_config_str("not json", "x", out, sizeof out), -1);
    CHECK_INT(ofc_config_int(NULL, "x", &i), -1);
    CHECK_INT(ofc_config_bool("[true]", "x", &b), -1);
}

static void test_report_bodies(void)
{
    char buf[256];
    CHECK(ofc_build_report(buf, sizeof buf, "AA:BB:CC:DD:EE:FF", "warn", "tank \"low\"", NULL) > 0);
    CHECK_STR(buf, "{\"mac\":\"AA:BB:CC:DD:EE:FF\",\"type\":\"warn\",\"subject\":\"tank \\\"low\\\"\"}");
    CHECK(ofc_build_report(buf, sizeof buf, "AA:BB:CC:DD:EE:FF", "error", "s", "line1\nline2\t\\ \x01 \xff") > 0);
    CHECK_STR(buf, "{\"mac\":\"AA:BB:CC:DD:EE:FF\",\"type\":\"error\",\"subject\":\"s\","
                   "\"body\":\"line1\\u000aline2\\u0009\\\\ \\u0001 \xef\xbf\xbd\"}");
    CHECK_INT(ofc_build_report(buf, sizeof buf, "m", "fatal", "s", NULL), OFC_PROTO_EINVAL);
    CHECK_INT(ofc_build_report(buf, sizeof buf, "m", NULL, "s", NULL), OFC_PROTO_EINVAL);
    CHECK_INT(ofc_build_report(buf, sizeof buf, "m", "info", NULL, NULL), OFC_PROTO_EINVAL);
    CHECK_INT(ofc_build_report(buf, 30, "AA:BB:CC:DD:EE:FF", "info", "s", NULL), OFC_PROTO_ETOOBIG);
}

static void test_log_ring(void)
{
    static ofc_logring r;
    char text[200];
    int i;
    ofc_logring_clear(&r);
    for (i = 1; i <= 20; i++) {
        snprintf(text, sizeof text, "line %d", i);
        ofc_logring_push(&r, OFC_LOG_INFO, "app", text);
    }
    CHECK_INT(r.count, OFC_LOG_LINES);
    CHECK_INT(r.dropped, 4);
    CHECK_STR(ofc_logring_at(&r, 0)->text, "line 5");
    CHECK_STR(ofc_logring_at(&r, 15)->text, "line 20");
    ofc_logring_pop(&r, 3);
    CHECK_INT(r.count, 13);
    CHECK_STR(ofc_logring_at(&r, 0)->text, "line 8");
    ofc_logring_pop(&r, 99);
    CHECK_INT(r.count, 0);
    /* long text is cut before a character, never inside one; NULL scope */
    memset(text, 'a', OFC_LOG_TEXT - 2);
    strcpy(text + OFC_LOG_TEXT - 2, "\xc3\xa9 tail");
    ofc_logring_push(&r, (ofc_log_level)42, NULL, text);
    CHECK_INT(strlen(ofc_logring_at(&r, 0)->text), OFC_LOG_TEXT - 2);
    CHECK_STR(ofc_logring_at(&r, 0)->scope, "");
    CHECK_INT(ofc_logring_at(&r, 0)->level, OFC_LOG_VERBOSE);
    CHECK_STR(ofc_log_level_name(OFC_LOG_WARN), "warn");
}

static void test_log_bodies(void)
{
    static ofc_logring r;
    char buf[1536];
    size_t taken;
    int n, i;
    ofc_logring_clear(&r);
    CHECK_INT(ofc_build_logs(buf, sizeof buf, &r, 0, &taken), OFC_PROTO_ETOOBIG); /* nothing to send */
    ofc_logring_push(&r, OFC_LOG_ERROR, "wifi", "lost \"AP\"\n");
    ofc_logring_push(&r, OFC_LOG_DEBUG, NULL, "b");
    n = ofc_build_logs(buf, sizeof buf, &r, 0, &taken);
    CHECK(n > 0);
    CHECK_INT(taken, 2);
    CHECK_STR(buf, "{\"lines\":[{\"level\":\"error\",\"scope\":\"wifi\",\"text\":\"lost \\\"AP\\\"\\u000a\"},"
                   "{\"level\":\"debug\",\"text\":\"b\"}]}");
    n = ofc_build_logs(buf, sizeof buf, &r, 3, &taken);
    CHECK(n > 0);
    CHECK(strstr(buf, "{\"lines\":[{\"level\":\"warn\",\"scope\":\"otafleet\",\"text\":\"3 log lines dropped") == buf);
    CHECK_INT(taken, 2);
    /* a full ring of long lines does not fit one body: as many as fit, valid JSON */
    for (i = 0; i < OFC_LOG_LINES; i++) {
        char t[OFC_LOG_TEXT];
        memset(t, 'x', sizeof t - 1);
        t[sizeof t - 1] = '\0';
        ofc_logring_push(&r, OFC_LOG_INFO, "s", t);
    }
    n = ofc_build_logs(buf, sizeof buf, &r, 0, &taken);
    CHECK(n > 0 && (size_t)n < sizeof buf);
    CHECK(taken > 0 && taken < OFC_LOG_LINES);
    CHECK_INT(ofc_json_parse(buf, (size_t)n, toks, 128) > 0, 1);
    CHECK_INT(ofc_build_logs(buf, 40, &r, 0, &taken), OFC_PROTO_ETOOBIG);
    CHECK_INT(ofc_build_logs(buf, 5, &r, 0, &taken), OFC_PROTO_ETOOBIG);
}

static int logs_reply(const char *body, int *logs, uint32_t *acc)
{
    return ofc_parse_logs_reply(body, strlen(body), toks, 128, logs, acc);
}

static void test_logs_reply(void)
{
    int logs;
    uint32_t acc;
    CHECK_INT(logs_reply("{\"logs\":false,\"accepted\":3}", &logs, &acc), 0);
    CHECK_INT(logs, 0);
    CHECK_INT(acc, 3);
    CHECK_INT(logs_reply("{}", &logs, &acc), 0);
    CHECK_INT(logs, -1);
    CHECK_INT(logs_reply("{\"logs\":1}", &logs, &acc), OFC_PROTO_EINVAL);
    CHECK_INT(logs_reply("{\"accepted\":-1}", &logs, &acc), OFC_PROTO_EINVAL);
}

static void test_checkin_management_fields(void)
{
    ofc_checkin_reply r;
    const char *older = "{\"device_id\":\"d\",\"update\":null}";
    const char *full = "{\"device_id\":\"d\",\"update\":null,\"commands_pending\":2,\"config_version\":7,\"logs\":true}";
    const char *nullcfg = "{\"device_id\":\"d\",\"commands_pending\":0,\"config_version\":null,\"logs\":false}";
    CHECK_INT(ofc_parse_checkin(older, strlen(older), toks, 128, &r), 0);
    CHECK_INT(r.commands_pending, 0);
    CHECK_INT(r.has_config_version, 0);
    CHECK_INT(r.logs, -1);
    CHECK_INT(ofc_parse_checkin(full, strlen(full), toks, 128, &r), 0);
    CHECK_INT(r.commands_pending, 2);
    CHECK_INT(r.has_config_version, 1);
    CHECK_INT(r.config_version, 7);
    CHECK_INT(r.logs, 1);
    CHECK_INT(ofc_parse_checkin(nullcfg, strlen(nullcfg), toks, 128, &r), 0);
    CHECK_INT(r.has_config_version, 0);
    CHECK_INT(r.logs, 0);
    {
        static const char *const bad[] = {"{\"commands_pending\":-1}", "{\"commands_pending\":\"2\"}",
                                          "{\"config_version\":1.0}", "{\"logs\":\"true\"}", "{\"logs\":1}",
                                          "{\"commands_pending\":4294967296}"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
            CHECK_INT(ofc_parse_checkin(bad[i], strlen(bad[i]), toks, 128, &r), OFC_PROTO_EINVAL);
    }
}

void suite_mgmt(void)
{
    RUN(test_commands_all_kinds);
    RUN(test_commands_more_than_fit);
    RUN(test_commands_hostile_documents);
    RUN(test_commands_hostile_entries);
    RUN(test_commands_mutations_never_crash);
    RUN(test_ack_bodies);
    RUN(test_config_answer);
    RUN(test_config_values);
    RUN(test_report_bodies);
    RUN(test_log_ring);
    RUN(test_log_bodies);
    RUN(test_logs_reply);
    RUN(test_checkin_management_fields);
}
