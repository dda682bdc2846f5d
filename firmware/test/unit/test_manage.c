/* test_manage.c - remote management in the state machine (ofc_manage.c)
 * against the scripted fake device: commands after a check-in that says
 * some are pending (restart acks and reports before rebooting, and does not
 * reboot without the ack; custom with and without a handler; update_abort
 * before a download; hostile lists), config fetched/stored/acknowledged and
 * kept on failure, log forwarding on and off with the ring flushed, reports,
 * the long-poll option, and an older server that sends none of it. */
#include <stdio.h>

#include "../../src/core/ofc_client.h"
#include "check.h"
#include "fake_platform.h"

#define PLAIN "{\"device_id\":\"d1\",\"update\":null,\"checkin_interval_s\":30}"
#define PENDING(n) "{\"device_id\":\"d1\",\"update\":null,\"checkin_interval_s\":30,\"commands_pending\":" #n "}"
#define CFG(v) "{\"device_id\":\"d1\",\"update\":null,\"checkin_interval_s\":30,\"config_version\":" #v "}"
#define LOGS(b) "{\"device_id\":\"d1\",\"update\":null,\"checkin_interval_s\":30,\"logs\":" #b "}"

static fake f;
static ofc_client client;
static ofc_config cfg;
static char seen_key[64], seen_payload[300], seen_values[OFC_CONFIG_MAX];
static int handler_calls, config_calls;

static int on_command(void *user, const char *key, const char *payload, char *result, size_t cap)
{
    (void)user;
    handler_calls++;
    snprintf(seen_key, sizeof seen_key, "%s", key);
    snprintf(seen_payload, sizeof seen_payload, "%s", payload);
    snprintf(result, cap, "blinked \"%s\"", key);
    return strcmp(key, "nope") == 0 ? OFC_CMD_REJECTED : OFC_CMD_DONE;
}

static void on_config(void *user, const char *values)
{
    (void)user;
    config_calls++;
    snprintf(seen_values, sizeof seen_values, "%s", values);
}

static void setup(void)
{
    fake_init(&f);
    fake_config(&cfg, &f);
    fake_kv_put(&f, "token", "tok1");
    handler_calls = config_calls = 0;
    seen_key[0] = seen_payload[0] = seen_values[0] = '\0';
}

static void start(void) { ofc_client_init(&client, &cfg, &fake_platform, &f); }

/* Poll until the n-th check-in happened and everything due after it is done. */
static void run_checkins(int n)
{
    int i;
    for (i = 0; i < 200 && client.phase != OFC_PHASE_HALTED; i++) {
        uint32_t wait = ofc_client_poll(&client);
        if (fake_count_events(&f, OFC_EV_CHECKIN) >= n && wait > 1000) return;
        if (wait == 0xFFFFFFFFu) return;
        f.now += wait;
    }
}

static const char *post_body(const char *suffix, int n)
{
    int i = fake_find_post(&f, suffix, n);
    return i < 0 ? "" : f.posts[i].body;
}

static void test_older_server_costs_nothing(void)
{
    setup();
    fake_reply(&f, 200, PLAIN);
    fake_reply(&f, 200, PLAIN);
    start();
    run_checkins(2);
    CHECK_INT(f.commands_gets, 0);
    CHECK_INT(f.config_gets, 0);
    CHECK_INT(f.nposts, 2);
    CHECK_INT(ofc_client_logs_on(&client), 0);
    CHECK_INT(ofc_client_log(&client, OFC_LOG_INFO, "t", "dropped: nobody listens"), 0);
    CHECK_STR(ofc_client_config_values(&client), "{}");
}

static void test_restart_acks_reports_then_reboots(void)
{
    int ack, report;
    setup();
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":5,\"kind\":\"restart\",\"key\":null,\"payload\":null}]}");
    start();
    run_checkins(1);
    CHECK_INT(f.commands_gets, 1);
    CHECK_STR(f.commands_url, "http://10.0.0.2:8080/api/v1/device/commands?wait=0");
    ack = fake_find_post(&f, "/device/commands/5", 0);
    report = fake_find_post(&f, "/device/report", 0);
    CHECK(ack >= 0 && report > ack);
    CHECK_STR(f.posts[ack].body, "{\"state\":\"done\",\"result\":\"restarting\"}");
    CHECK_STR(f.posts[ack].bearer, "tok1");
    CHECK_STR(f.posts[report].body,
              "{\"mac\":\"24:0A:C4:00:00:01\",\"type\":\"info\",\"subject\":\"restarting on request\"}");
    CHECK_INT(f.reboot_calls, 1);
    CHECK_INT(fake_count_events(&f, OFC_EV_RESTART), 1);
    CHECK_INT(ofc_client_phase(&client), OFC_PHASE_HALTED);
}

static void test_restart_without_ack_does_not_reboot(void)
{
    setup();
    f.ack_status = 500;
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":5,\"kind\":\"restart\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(fake_count_posts(&f, "/device/commands/5", NULL), 1);
    CHECK_INT(f.reboot_calls, 0);
    CHECK_INT(fake_count_posts(&f, "/device/report", NULL), 0);
    CHECK_INT(ofc_client_phase(&client), OFC_PHASE_CHECKIN);

    setup(); /* 409: the command already ended another way (cancelled) */
    f.ack_status = 409;
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":5,\"kind\":\"restart\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(f.reboot_calls, 0);
}

static void test_custom_commands(void)
{
    setup();
    cfg.on_command = on_command;
    fake_reply(&f, 200, PENDING(2));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"custom\",\"key\":\"blink\",\"payload\":{\"n\":3}},"
                           "{\"id\":2,\"kind\":\"custom\",\"key\":\"nope\",\"payload\":null}]}");
    start();
    run_checkins(1);
    CHECK_INT(handler_calls, 2);
    CHECK_STR(seen_key, "nope");
    CHECK_STR(post_body("/device/commands/1", 0), "{\"state\":\"done\",\"result\":\"blinked \\\"blink\\\"\"}");
    CHECK_STR(post_body("/device/commands/2", 0), "{\"state\":\"rejected\",\"result\":\"blinked \\\"nope\\\"\"}");
    CHECK_INT(fake_count_events(&f, OFC_EV_COMMAND), 2);

    setup(); /* no handler */
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":3,\"kind\":\"custom\",\"key\":\"blink\",\"payload\":[1]}]}");
    start();
    run_checkins(1);
    CHECK_STR(post_body("/device/commands/3", 0), "{\"state\":\"rejected\",\"result\":\"no handler\"}");
}

static void test_custom_payload_reaches_handler(void)
{
    setup();
    cfg.on_command = on_command;
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"custom\",\"key\":\"blink\",\"payload\":{\"n\":3}}]}");
    start();
    run_checkins(1);
    CHECK_STR(seen_key, "blink");
    CHECK_STR(seen_payload, "{\"n\":3}");
}

static void test_hostile_commands_are_rejected_not_obeyed(void)
{
    setup();
    cfg.on_command = on_command;
    fake_reply(&f, 200, PENDING(3));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":\"../../x\",\"kind\":\"restart\"},{\"id\":7,\"kind\":\"rm\"},"
                           "{\"id\":8,\"kind\":\"log\",\"payload\":{\"on\":\"yes\"}},{\"kind\":\"restart\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(f.reboot_calls, 0);
    CHECK_INT(handler_calls, 0);
    CHECK_INT(fake_count_posts(&f, "/device/commands/7", "\"rejected\""), 1);
    CHECK_INT(fake_count_posts(&f, "/device/commands/8", "\"rejected\""), 1);
    CHECK_INT(fake_count_posts(&f, "x", NULL), 0); /* the bad id never reaches a URL */
    CHECK_INT(ofc_client_logs_on(&client), 0);

    setup(); /* a malformed answer: nothing done, asked again after the next check-in */
    fake_reply(&f, 200, PENDING(1));
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"restart\"}");
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"restart\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(f.commands_gets, 1);
    CHECK_INT(f.reboot_calls, 0);
    run_checkins(2);
    CHECK_INT(f.commands_gets, 2);
    CHECK_INT(f.reboot_calls, 1);
}

static void test_more_commands_than_one_batch(void)
{
    setup();
    fake_reply(&f, 200, PENDING(6));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"update_abort\"},{\"id\":2,\"kind\":\"update_abort\"},"
                           "{\"id\":3,\"kind\":\"update_abort\"},{\"id\":4,\"kind\":\"update_abort\"},"
                           "{\"id\":5,\"kind\":\"update_abort\"},{\"id\":6,\"kind\":\"update_abort\"}]}");
    fake_commands(&f, 200, "{\"commands\":[{\"id\":5,\"kind\":\"update_abort\"},{\"id\":6,\"kind\":\"update_abort\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(f.commands_gets, 2);
    CHECK_INT(fake_count_posts(&f, "/device/commands/6", "{\"state\":\"done\",\"result\":\"no update running\"}"), 1);
    CHECK_INT(fake_count_events(&f, OFC_EV_COMMAND), 6);

    setup(); /* acks refused: no second fetch in this round (each would be handled again) */
    f.ack_status = 500;
    fake_reply(&f, 200, PENDING(6));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"update_abort\"},{\"id\":2,\"kind\":\"update_abort\"},"
                           "{\"id\":3,\"kind\":\"update_abort\"},{\"id\":4,\"kind\":\"update_abort\"},"
                           "{\"id\":5,\"kind\":\"update_abort\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(f.commands_gets, 1);
    CHECK_INT(fake_count_events(&f, OFC_EV_COMMAND), 4);
}

static void test_update_abort_drops_the_offer(void)
{
    static char reply[512];
    setup();
    snprintf(reply, sizeof reply,
             "{\"device_id\":\"d1\",\"update\":{\"id\":7,\"version\":\"2.0.0\",\"url\":\"/fw\",\"size\":10,"
             "\"sha256\":\"%064d\"},\"checkin_interval_s\":30,\"commands_pending\":1}", 0);
    fake_reply(&f, 200, reply);
    fake_commands(&f, 200, "{\"commands\":[{\"id\":4,\"kind\":\"update_abort\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(fake_count_events(&f, OFC_EV_OFFER), 1);
    CHECK_INT(f.get_calls, 0); /* never downloaded */
    CHECK_INT(f.ota_begun, 0);
    CHECK_INT(fake_count_posts(&f, "/device/commands/4", "update 7 abandoned before download"), 1);
    CHECK_INT(ofc_client_phase(&client), OFC_PHASE_CHECKIN);
}

static void test_config_applied_and_acknowledged(void)
{
    char s[16];
    int64_t n;
    int b;
    setup();
    cfg.on_config = on_config;
    f.config_body = "{\"version\":3,\"values\":{\"greeting\":\"hi\",\"n\":-5,\"on\":true}}";
    fake_reply(&f, 200, CFG(3));
    fake_reply(&f, 200, CFG(3));
    start();
    run_checkins(1);
    CHECK_INT(f.config_gets, 1);
    CHECK_STR(fake_kv(&f, "cfg"), "{\"greeting\":\"hi\",\"n\":-5,\"on\":true}");
    CHECK_STR(fake_kv(&f, "cfg_v"), "3");
    CHECK_INT(config_calls, 1);
    CHECK_STR(seen_values, "{\"greeting\":\"hi\",\"n\":-5,\"on\":true}");
    CHECK_STR(post_body("/device/config", 0), "{\"version\":3}");
    CHECK_INT(ofc_client_config_version(&client), 3);
    CHECK_INT(ofc_client_config_str(&client, "greeting", s, sizeof s), 0);
    CHECK_STR(s, "hi");
    CHECK_INT(ofc_client_config_int(&client, "n", &n), 0);
    CHECK_INT(n, -5);
    CHECK_INT(ofc_client_config_bool(&client, "on", &b), 0);
    CHECK_INT(b, 1);
    run_checkins(2); /* same version: nothing fetched */
    CHECK_INT(f.config_gets, 1);

    /* after a restart the stored config is read back from NVS at start */
    start();
    CHECK_INT(ofc_client_config_version(&client), 0);
    ofc_client_poll(&client);
    CHECK_INT(ofc_client_config_version(&client), 3);
    CHECK_INT(ofc_client_config_str(&client, "greeting", s, sizeof s), 0);
    CHECK_STR(s, "hi");
}

static void test_stored_config_read_at_start(void)
{
    setup();
    fake_kv_put(&f, "cfg", "{\"a\":1}");
    fake_kv_put(&f, "cfg_v", "9007199254740991");
    start();
    ofc_client_poll(&client);
    CHECK(ofc_client_config_version(&client) == 9007199254740991u);
    CHECK_STR(ofc_client_config_values(&client), "{\"a\":1}");

    setup(); /* unreadable: treated as none, so the next check-in fetches it */
    fake_kv_put(&f, "cfg", "{\"a\":1}");
    fake_kv_put(&f, "cfg_v", "12x");
    fake_reply(&f, 200, CFG(12));
    f.config_body = "{\"version\":12,\"values\":{\"a\":2}}";
    start();
    ofc_client_poll(&client);
    CHECK_INT(ofc_client_config_version(&client), 0);
    CHECK_STR(ofc_client_config_values(&client), "{}");
    run_checkins(1);
    CHECK_INT(f.config_gets, 1);
    CHECK_STR(fake_kv(&f, "cfg_v"), "12");
}

static void test_config_failures_keep_the_old_one(void)
{
    char s[16];
    setup();
    cfg.on_config = on_config;
    fake_kv_put(&f, "cfg", "{\"greeting\":\"old\"}");
    fake_kv_put(&f, "cfg_v", "2");
    f.config_status = 500;
    fake_reply(&f, 200, CFG(3));
    fake_reply(&f, 200, CFG(3));
    fake_reply(&f, 200, CFG(3));
    start();
    run_checkins(1);
    CHECK_INT(f.config_gets, 1);
    CHECK_INT(config_calls, 0);
    CHECK_STR(fake_kv(&f, "cfg"), "{\"greeting\":\"old\"}");
    CHECK_STR(fake_kv(&f, "cfg_v"), "2");
    CHECK_INT(ofc_client_config_str(&client, "greeting", s, sizeof s), 0);
    CHECK_STR(s, "old");
    CHECK_INT(fake_count_posts(&f, "/device/config", NULL), 0);
    /* a malformed answer likewise */
    f.config_status = 200;
    f.config_body = "{\"version\":3,\"values\":[1]}";
    run_checkins(2);
    CHECK_INT(f.config_gets, 2);
    CHECK_STR(fake_kv(&f, "cfg_v"), "2");
    /* the server does not take the ack: values kept, version not, so it is fetched again */
    f.config_body = "{\"version\":3,\"values\":{\"greeting\":\"new\"}}";
    f.config_ack_status = 503;
    run_checkins(3);
    CHECK_INT(config_calls, 1);
    CHECK_STR(fake_kv(&f, "cfg"), "{\"greeting\":\"new\"}");
    CHECK_STR(fake_kv(&f, "cfg_v"), "2");
    f.config_ack_status = 200;
    fake_reply(&f, 200, CFG(3));
    run_checkins(4);
    CHECK_INT(f.config_gets, 4);
    CHECK_STR(fake_kv(&f, "cfg_v"), "3");
}

static void test_config_command_refetches(void)
{
    setup();
    f.config_body = "{\"version\":9,\"values\":{}}";
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":11,\"kind\":\"config\",\"key\":null,\"payload\":null}]}");
    start();
    run_checkins(1);
    CHECK_INT(f.config_gets, 1);
    CHECK_STR(post_body("/device/config", 0), "{\"version\":9}");
    CHECK_INT(fake_count_posts(&f, "/device/commands/11", "{\"state\":\"done\"}"), 1);

    setup(); /* a config that cannot be fetched: the command failed, with why */
    f.config_status = 404;
    fake_reply(&f, 200, PENDING(1));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":12,\"kind\":\"config\"}]}");
    start();
    run_checkins(1);
    CHECK_INT(fake_count_posts(&f, "/device/commands/12",
                               "{\"state\":\"failed\",\"result\":\"config fetch failed (status 404)\"}"), 1);
}

static void test_log_forwarding_by_command_and_checkin(void)
{
    int i;
    char line[32];
    setup();
    cfg.log_flush_ms = 60000; /* later batches wait past the next check-in */
    f.logs_reply = "{\"logs\":true,\"accepted\":3}";
    fake_reply(&f, 200, PENDING(1));
    fake_reply(&f, 200, LOGS(false));
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"log\",\"payload\":{\"on\":true}}]}");
    start();
    run_checkins(1);
    CHECK_INT(ofc_client_logs_on(&client), 1);
    CHECK_INT(fake_count_posts(&f, "/device/commands/1", "{\"state\":\"done\",\"result\":\"log forwarding on\"}"), 1);
    for (i = 1; i <= 3; i++) {
        snprintf(line, sizeof line, "line %d", i);
        CHECK_INT(ofc_client_log(&client, OFC_LOG_INFO, "app", line), 1);
    }
    ofc_client_poll(&client); /* the first batch goes at once */
    CHECK_STR(post_body("/device/logs", 0),
              "{\"lines\":[{\"level\":\"info\",\"scope\":\"app\",\"text\":\"line 1\"},"
              "{\"level\":\"info\",\"scope\":\"app\",\"text\":\"line 2\"},"
              "{\"level\":\"info\",\"scope\":\"app\",\"text\":\"line 3\"}]}");
    CHECK_INT(client.logs.count, 0);
    CHECK_INT(fake_count_events(&f, OFC_EV_LOGS_SENT), 1);
    ofc_client_log(&client, OFC_LOG_WARN, NULL, "pending when the watcher leaves");
    run_checkins(2); /* logs:false: off, and the queued line is dropped */
    CHECK_INT(ofc_client_logs_on(&client), 0);
    CHECK_INT(client.logs.count, 0);
    CHECK_INT(fake_count_posts(&f, "/device/logs", NULL), 1);
    CHECK_INT(ofc_client_log(&client, OFC_LOG_INFO, NULL, "x"), 0);

    setup(); /* the check-in turns it on */
    fake_reply(&f, 200, LOGS(true));
    start();
    run_checkins(1);
    CHECK_INT(ofc_client_logs_on(&client), 1);
    CHECK_INT(fake_count_events(&f, OFC_EV_LOG_FORWARDING), 1);
}

static void test_log_overflow_and_server_stop(void)
{
    int i;
    char line[32];
    setup();
    fake_reply(&f, 200, LOGS(true));
    start();
    run_checkins(1);
    for (i = 1; i <= 20; i++) {
        snprintf(line, sizeof line, "line %d", i);
        ofc_client_log(&client, OFC_LOG_DEBUG, "app", line);
    }
    CHECK_INT(client.logs.dropped, 4);
    f.logs_reply = "{\"logs\":false,\"accepted\":17}";
    f.now += 1000;
    ofc_client_poll(&client);
    CHECK(strstr(post_body("/device/logs", 0), "{\"lines\":[{\"level\":\"warn\",\"scope\":\"otafleet\","
                                               "\"text\":\"4 log lines dropped") != NULL);
    CHECK(strstr(post_body("/device/logs", 0), "\"line 5\"") != NULL);
    CHECK(strstr(post_body("/device/logs", 0), "\"line 4\"") == NULL);
    CHECK_INT(ofc_client_logs_on(&client), 0); /* the answer said stop */
    CHECK_INT(client.logs.count, 0);
    CHECK_INT(client.logs.dropped, 0);
}

static void test_log_send_failure_waits_for_checkin(void)
{
    setup();
    fake_reply(&f, 200, LOGS(true));
    fake_reply(&f, 200, LOGS(true));
    f.logs_status = -1;
    start();
    run_checkins(1);
    ofc_client_log(&client, OFC_LOG_ERROR, "app", "kept");
    f.now += 1000;
    ofc_client_poll(&client);
    CHECK_INT(fake_count_posts(&f, "/device/logs", NULL), 1);
    CHECK(ofc_client_poll(&client) > 1000); /* no retry before the next check-in */
    CHECK_INT(fake_count_posts(&f, "/device/logs", NULL), 1);
    CHECK_INT(client.logs.count, 1);
    f.logs_status = 200;
    run_checkins(2);
    CHECK_INT(fake_count_posts(&f, "/device/logs", "\"kept\""), 2);
    CHECK_INT(client.logs.count, 0);
}

static void test_reports(void)
{
    setup();
    fake_kv_put(&f, "token", "");
    start();
    CHECK(ofc_client_report(&client, "info", "too early", NULL) < 0); /* no token, no server yet */
    CHECK_INT(f.nposts, 0);
    setup();
    fake_reply(&f, 200, PLAIN);
    start();
    run_checkins(1);
    CHECK_INT(ofc_client_report(&client, "warn", "tank \"low\"", "level 3%\n"), 200);
    CHECK_STR(post_body("/device/report", 0), "{\"mac\":\"24:0A:C4:00:00:01\",\"type\":\"warn\","
                                              "\"subject\":\"tank \\\"low\\\"\",\"body\":\"level 3%\\u000a\"}");
    CHECK_STR(f.posts[fake_find_post(&f, "/device/report", 0)].bearer, "tok1");
    CHECK(ofc_client_report(&client, "fatal", "bad type", NULL) < 0);
    CHECK_INT(fake_count_posts(&f, "/device/report", NULL), 1);
    f.report_status = 422;
    CHECK_INT(ofc_client_report(&client, "info", "refused", NULL), 422);
    CHECK_INT(fake_count_events(&f, OFC_EV_REPORT), 2);
}

static void test_long_poll_option(void)
{
    int i;
    setup();
    cfg.command_wait_s = 20;
    fake_reply(&f, 200, PLAIN);
    fake_commands(&f, 404, "{}");
    start();
    for (i = 0; i < 10; i++) {
        uint32_t wait = ofc_client_poll(&client);
        if (f.commands_gets) {
            CHECK(wait > 20000); /* refused: no more long-polls until the next check-in */
            break;
        }
        f.now += wait;
    }
    CHECK_INT(f.commands_gets, 1);
    CHECK_STR(f.commands_url, "http://10.0.0.2:8080/api/v1/device/commands?wait=20");
    CHECK(ofc_client_poll(&client) > 20000);
    CHECK_INT(f.commands_gets, 1);

    setup(); /* a server that answers: long-polls go on, at most one a second */
    cfg.command_wait_s = 20;
    cfg.on_command = on_command;
    fake_reply(&f, 200, PLAIN);
    fake_commands(&f, 200, "{\"commands\":[]}");
    fake_commands(&f, 200, "{\"commands\":[{\"id\":1,\"kind\":\"custom\",\"key\":\"k\"}]}");
    start();
    for (i = 0; i < 8; i++) f.now += ofc_client_poll(&client);
    CHECK(f.commands_gets >= 3);
    CHECK_INT(handler_calls, 1);
}

void suite_manage(void)
{
    RUN(test_older_server_costs_nothing);
    RUN(test_restart_acks_reports_then_reboots);
    RUN(test_restart_without_ack_does_not_reboot);
    RUN(test_custom_commands);
    RUN(test_custom_payload_reaches_handler);
    RUN(test_hostile_commands_are_rejected_not_obeyed);
    RUN(test_more_commands_than_one_batch);
    RUN(test_update_abort_drops_the_offer);
    RUN(test_config_applied_and_acknowledged);
    RUN(test_stored_config_read_at_start);
    RUN(test_config_failures_keep_the_old_one);
    RUN(test_config_command_refetches);
    RUN(test_log_forwarding_by_command_and_checkin);
    RUN(test_log_overflow_and_server_stop);
    RUN(test_log_send_failure_waits_for_checkin);
    RUN(test_reports);
    RUN(test_long_poll_option);
}
