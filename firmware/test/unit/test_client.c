/* test_client.c - the update state machine (ofc_client) against the scripted
 * fake device: enrolment, the whole update with progress every 5%, reboot and
 * confirmation, every way a download can go wrong, 401 without re-enrolment,
 * back-off when the server is away, rollback of a trial image, discovery. */
#include <stdio.h>

#include "../../src/core/ofc_client.h"
#include "check.h"
#include "fake_platform.h"

#define TOKEN_REPLY "{\"device_id\":\"d1\",\"token\":\"tok1\",\"update\":null,\"checkin_interval_s\":30}"
#define PLAIN_REPLY "{\"device_id\":\"d1\",\"update\":null,\"checkin_interval_s\":30}"

static fake f;
static ofc_client client;
static ofc_config cfg;
static uint8_t image[3000];
static char offer_reply[1024];
static char image_sha[65], image_md5[33];

static void setup(void)
{
    size_t i;
    ofc_sha256 s;
    ofc_md5 m;
    uint8_t d[32];
    fake_init(&f);
    fake_config(&cfg, &f);
    for (i = 0; i < sizeof image; i++) image[i] = (uint8_t)(i * 31 + 7);
    image[0] = 0xE9;
    ofc_sha256_init(&s);
    ofc_sha256_update(&s, image, sizeof image);
    ofc_sha256_final(&s, d);
    ofc_hex(d, 32, image_sha);
    ofc_md5_init(&m);
    ofc_md5_update(&m, image, sizeof image);
    ofc_md5_final(&m, d);
    ofc_hex(d, 16, image_md5);
    f.image = image;
    f.image_len = sizeof image;
    snprintf(offer_reply, sizeof offer_reply,
             "{\"device_id\":\"d1\",\"update\":{\"id\":7,\"version\":\"2.0.0\",\"url\":\"/api/v1/device/firmware/%s\","
             "\"size\":%u,\"sha256\":\"%s\",\"md5\":\"%s\"},\"checkin_interval_s\":30}",
             image_sha, (unsigned)sizeof image, image_sha, image_md5);
}

static void start(void) { ofc_client_init(&client, &cfg, &fake_platform, &f); }

static void test_enrols_and_then_sends_token(void)
{
    setup();
    fake_reply(&f, 200, TOKEN_REPLY);
    fake_reply(&f, 200, PLAIN_REPLY);
    f.discover_result = NULL;
    start();
    CHECK(fake_run(&client, &f, OFC_EV_ENROLLED, 20));
    CHECK_STR(fake_kv(&f, "token"), "tok1");
    CHECK_STR(f.posts[0].url, "http://10.0.0.2:8080/api/v1/device/checkin");
    CHECK_STR(f.posts[0].bearer, "");
    CHECK(strstr(f.posts[0].body, "\"mac\":\"24:0A:C4:00:00:01\"") != NULL);
    CHECK(strstr(f.posts[0].body, "\"sha256\":\"1111") != NULL);
    {
        uint32_t before = f.now, wait = ofc_client_poll(&client);
        /* next check-in after the server's 30 s, +/- 10% */
        CHECK(wait >= 27000 && wait <= 33000);
        f.now = before + wait;
    }
    ofc_client_poll(&client);
    CHECK_INT(f.nposts, 2);
    CHECK_STR(f.posts[1].bearer, "tok1");
    CHECK_INT(fake_count_events(&f, OFC_EV_ENROLLED), 1);
}

static void test_full_update_then_confirm(void)
{
    char want[64];
    int i, downloading = 0;
    setup();
    fake_kv_put(&f, "token", "tok1");
    fake_reply(&f, 200, offer_reply);
    f.get_chunk = 37;
    start();
    CHECK(fake_run(&client, &f, OFC_EV_REBOOT, 50));
    CHECK_INT(f.get_calls, 1);
    {
        char url[OFC_URL_MAX];
        snprintf(url, sizeof url, "http://10.0.0.2:8080/api/v1/device/firmware/%s", image_sha);
        CHECK_STR(f.get_url, url);
    }
    CHECK_STR(f.get_bearer, "tok1");             /* same origin: token sent */
    CHECK_INT(f.ota_len, sizeof image);
    CHECK(memcmp(f.ota, image, sizeof image) == 0);
    CHECK_INT(f.ota_finished, 1);
    CHECK_INT(f.ota_aborted, 0);
    CHECK_INT(f.reboot_calls, 1);
    CHECK_INT(ofc_client_phase(&client), OFC_PHASE_HALTED);
    /* downloading at 0, 5, ..., 100, each once and in order; then the states */
    for (i = 0; i < f.nposts; i++)
        if (strstr(f.posts[i].body, "\"downloading\"")) {
            snprintf(want, sizeof want, "\"progress\":%d}", downloading * 5);
            CHECK(strstr(f.posts[i].body, want) != NULL);
            CHECK(strstr(f.posts[i].body, "\"update_id\":7,") != NULL);
            CHECK_STR(f.posts[i].bearer, "tok1");
            downloading++;
        }
    CHECK_INT(downloading, 21);
    CHECK_INT(fake_count_posts(&f, "/device/progress", "\"verifying\""), 1);
    CHECK_INT(fake_count_posts(&f, "/device/progress", "\"flashing\""), 1);
    CHECK_INT(fake_count_posts(&f, "/device/progress", "\"rebooting\""), 1);
    CHECK(strstr(f.posts[f.nposts - 1].body, "\"rebooting\"") != NULL);
    CHECK(fake_kv(&f, "pending") != NULL);

    /* "Reboot": the new image runs on trial; the first good check-in
     * confirms it and reports done. */
    strcpy(f.info.version, "2.0.0");
    strcpy(f.info.sha256, "2222222222222222222222222222222222222222222222222222222222222222");
    f.trial = 1;
    f.nposts = 0;
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_UPDATE_DONE, 20));
    CHECK_INT(f.mark_valid_calls, 1);
    CHECK_INT(fake_count_events(&f, OFC_EV_CONFIRMED), 1);
    CHECK_INT(fake_count_posts(&f, "/device/progress", "{\"update_id\":7,\"state\":\"done\",\"progress\":100}"), 1);
    CHECK(fake_kv(&f, "pending") == NULL);
    CHECK_INT(f.rollback_calls, 0);
}

static void expect_failed_update(const char *error_part)
{
    char needle[128];
    CHECK(fake_run(&client, &f, OFC_EV_UPDATE_FAILED, 50));
    snprintf(needle, sizeof needle, "\"state\":\"failed\"");
    CHECK_INT(fake_count_posts(&f, "/device/progress", needle), 1);
    CHECK_INT(fake_count_posts(&f, "/device/progress", error_part), 1);
    CHECK_INT(f.reboot_calls, 0);
    CHECK(fake_kv(&f, "pending") == NULL);
    CHECK_INT(ofc_client_phase(&client), OFC_PHASE_CHECKIN);
}

static void test_sha_mismatch_fails_and_aborts(void)
{
    setup();
    fake_reply(&f, 200, offer_reply);
    f.corrupt_at = 1234;
    start();
    expect_failed_update("sha256 mismatch");
    CHECK_INT(f.ota_aborted, 1);
    CHECK_INT(f.ota_finished, 0);
    CHECK_INT(fake_count_posts(&f, "/device/progress", "\"verifying\""), 1);
}

static void test_md5_mismatch_fails(void)
{
    char reply[1024];
    setup();
    snprintf(reply, sizeof reply,
             "{\"update\":{\"id\":\"u8\",\"version\":\"2.0.0\",\"url\":\"/fw\",\"size\":%u,\"sha256\":\"%s\","
             "\"md5\":\"00000000000000000000000000000000\"}}",
             (unsigned)sizeof image, image_sha);
    fake_reply(&f, 200, reply);
    start();
    expect_failed_update("md5 mismatch");
    CHECK_INT(fake_count_posts(&f, "/device/progress", "\"update_id\":\"u8\""), 23);
}

static void test_download_problems(void)
{
    setup(); /* Content-Length differs from the offer */
    fake_reply(&f, 200, offer_reply);
    f.get_content_length = 10;
    start();
    expect_failed_update("Content-Length 10 differs");
    CHECK_INT(f.ota_aborted, 1);

    setup(); /* connection drops half-way */
    fake_reply(&f, 200, offer_reply);
    f.get_cut_at = 1500;
    f.get_content_length = -1;
    start();
    expect_failed_update("after 1500 of 3000 bytes");
    CHECK_INT(f.ota_aborted, 1);

    setup(); /* server error on the image */
    fake_reply(&f, 200, offer_reply);
    f.get_status = 500;
    start();
    expect_failed_update("HTTP 500");

    setup(); /* image larger than the OTA slot */
    fake_reply(&f, 200, offer_reply);
    f.info.free_space = 1000;
    start();
    expect_failed_update("does not fit");
    CHECK_INT(f.get_calls, 0);

    setup(); /* the OTA slot rejects the image when activating */
    fake_reply(&f, 200, offer_reply);
    f.ota_finish_result = -1;
    start();
    expect_failed_update("rejected when activating");
}

static void test_same_failing_offer_is_skipped_after_three_tries(void)
{
    int i;
    setup();
    for (i = 0; i < 5; i++) fake_reply(&f, 200, offer_reply);
    f.corrupt_at = 5;
    start();
    for (i = 0; i < 200 && f.checkin_i < 5; i++) f.now += ofc_client_poll(&client);
    f.now += ofc_client_poll(&client);
    CHECK_INT(f.get_calls, 3);
    CHECK_INT(fake_count_events(&f, OFC_EV_OFFER), 3);
    CHECK_INT(fake_count_events(&f, OFC_EV_UPDATE_FAILED), 3);
}

static void test_offer_of_running_image_is_ignored(void)
{
    setup();
    strcpy(f.info.sha256, image_sha);
    fake_reply(&f, 200, offer_reply);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_CHECKIN, 4));
    ofc_client_poll(&client); /* nothing due */
    CHECK_INT(fake_count_events(&f, OFC_EV_OFFER), 0);
    CHECK_INT(f.get_calls, 0);
}

static void test_refuse_downgrade_option(void)
{
    setup();
    strcpy(f.info.version, "3.1.0");
    cfg.refuse_downgrade = 1;
    fake_reply(&f, 200, offer_reply);
    start();
    expect_failed_update("downgrade from 3.1.0 to 2.0.0 refused");
    CHECK_INT(f.get_calls, 0);
}

static void test_token_not_sent_to_other_hosts(void)
{
    char reply[1024];
    setup();
    fake_kv_put(&f, "token", "tok1");
    snprintf(reply, sizeof reply,
             "{\"update\":{\"id\":1,\"version\":\"2\",\"url\":\"http://cdn.lan:9000/f.bin\",\"size\":%u,"
             "\"sha256\":\"%s\",\"md5\":\"%s\"}}",
             (unsigned)sizeof image, image_sha, image_md5);
    fake_reply(&f, 200, reply);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_REBOOT, 50));
    CHECK_STR(f.get_url, "http://cdn.lan:9000/f.bin");
    CHECK_STR(f.get_bearer, "");

    setup();
    snprintf(reply, sizeof reply,
             "{\"update\":{\"id\":1,\"version\":\"2\",\"url\":\"https://cdn.lan/f.bin\",\"size\":%u,"
             "\"sha256\":\"%s\"}}", (unsigned)sizeof image, image_sha);
    fake_reply(&f, 200, reply);
    start();
    expect_failed_update("unsupported URL scheme");
}

static void test_unauthorized_backs_off_and_keeps_token(void)
{
    int i;
    setup();
    fake_kv_put(&f, "token", "wrong");
    for (i = 0; i < 4; i++) fake_reply(&f, 401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no\"}}");
    start();
    for (i = 0; i < 30 && f.checkin_i < 4; i++) f.now += ofc_client_poll(&client);
    CHECK_INT(fake_count_events(&f, OFC_EV_UNAUTHORIZED), 4);
    CHECK_STR(fake_kv(&f, "token"), "wrong");
    CHECK_INT(fake_count_events(&f, OFC_EV_ENROLLED), 0);
    for (i = 0; i < f.nposts; i++) CHECK_STR(f.posts[i].bearer, "wrong");
    /* the waits grow: equal jitter keeps each in [ceiling/2, ceiling] */
    {
        int k = 0;
        uint32_t ceiling = 2000;
        for (i = 0; i < f.nevents; i++)
            if (f.events[i] == OFC_EV_UNAUTHORIZED) {
                CHECK(f.event_delay[i] >= ceiling / 2 && f.event_delay[i] <= ceiling);
                ceiling *= 2;
                k++;
            }
        CHECK_INT(k, 4);
    }
}

static void test_server_away_backoff_and_rediscovery(void)
{
    int i;
    setup();
    f.discover_result = "http://192.168.7.7:8080";
    start();
    for (i = 0; i < 40 && fake_count_events(&f, OFC_EV_CHECKIN_FAILED) < 7; i++) f.now += ofc_client_poll(&client);
    CHECK_INT(fake_count_events(&f, OFC_EV_CHECKIN_FAILED), 7);
    CHECK_STR(f.posts[0].url, "http://192.168.7.7:8080/api/v1/device/checkin");
    CHECK_INT(f.discover_calls, 3); /* at start, after failures 3 and 6 */
    {
        uint32_t prev = 0;
        int k = 0;
        for (i = 0; i < f.nevents; i++)
            if (f.events[i] == OFC_EV_CHECKIN_FAILED) {
                CHECK(f.event_delay[i] <= 300000);
                if (k > 0) CHECK(f.event_delay[i] * 2 >= prev); /* roughly non-decreasing */
                prev = f.event_delay[i];
                k++;
            }
        CHECK(prev >= 64000); /* 7th failure: ceiling 128 s */
    }
    /* back: one good check-in resets the back-off */
    fake_reply(&f, 200, PLAIN_REPLY);
    f.checkin_n = f.checkin_i + 1;
    CHECK(fake_run(&client, &f, OFC_EV_CHECKIN, 5));
}

static void test_discovery_falls_back_to_configured_url(void)
{
    setup();
    f.discover_result = NULL;
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    fake_run(&client, &f, 0, 3);
    CHECK_INT(f.discover_calls, 1);
    CHECK_STR(f.posts[0].url, "http://10.0.0.2:8080/api/v1/device/checkin");

    setup(); /* neither: keep trying, with back-off */
    cfg.server_url = NULL;
    start();
    fake_run(&client, &f, 0, 6);
    CHECK(fake_count_events(&f, OFC_EV_CHECKIN_FAILED) >= 2);
    CHECK_INT(f.nposts, 0);
}

static void test_trial_image_rolls_back_after_failed_checkins(void)
{
    int i;
    setup();
    f.trial = 1;
    start();
    for (i = 0; i < 60 && f.rollback_calls == 0; i++) f.now += ofc_client_poll(&client);
    CHECK_INT(f.rollback_calls, 1);
    CHECK_INT(fake_count_events(&f, OFC_EV_CHECKIN_FAILED), 5); /* confirm_attempts */
    CHECK_INT(f.mark_valid_calls, 0);
}

static void test_trial_not_confirmed_by_bad_reply(void)
{
    int i;
    setup();
    f.trial = 1;
    fake_reply(&f, 200, "{\"update\": ");
    fake_reply(&f, 500, "oops");
    fake_reply(&f, 401, "");
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    for (i = 0; i < 30 && f.checkin_i < 4; i++) f.now += ofc_client_poll(&client);
    CHECK_INT(fake_count_events(&f, OFC_EV_CHECKIN_FAILED), 2);
    CHECK_INT(fake_count_events(&f, OFC_EV_UNAUTHORIZED), 1);
    CHECK_INT(f.mark_valid_calls, 1); /* only the good one confirmed */
    CHECK_INT(f.rollback_calls, 0);
}

static void test_rolled_back_image_reports_failure(void)
{
    setup();
    fake_kv_put(&f, "pending",
                "{\"update_id\":7,\"sha256\":\"aa\",\"version\":\"2.0.0\",\"prev_sha256\":"
                "\"1111111111111111111111111111111111111111111111111111111111111111\",\"prev_version\":\"1.0.0\"}");
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_ROLLED_BACK, 10));
    CHECK_INT(fake_count_posts(&f, "/device/progress", "\"state\":\"failed\""), 1);
    CHECK_INT(fake_count_posts(&f, "/device/progress", "rolled back"), 1);
    CHECK(fake_kv(&f, "pending") == NULL);

    setup(); /* unreadable record: dropped, nothing reported */
    fake_kv_put(&f, "pending", "{not json");
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    fake_run(&client, &f, 0, 3);
    CHECK_INT(fake_count_posts(&f, "/device/progress", NULL), 0);
    CHECK(fake_kv(&f, "pending") == NULL);
}

static void test_event_names(void)
{
    CHECK_STR(ofc_event_name(OFC_EV_SERVER), "server");
    CHECK_STR(ofc_event_name(OFC_EV_UNAUTHORIZED), "unauthorized");
    CHECK_STR(ofc_event_name(OFC_EV_UPDATE_DONE), "update_done");
    CHECK_STR(ofc_event_name(OFC_EV_ROLLED_BACK), "rolled_back");
    CHECK_STR(ofc_event_name((ofc_event_type)99), "?");
}

void suite_client(void)
{
    RUN(test_event_names);
    RUN(test_enrols_and_then_sends_token);
    RUN(test_full_update_then_confirm);
    RUN(test_sha_mismatch_fails_and_aborts);
    RUN(test_md5_mismatch_fails);
    RUN(test_download_problems);
    RUN(test_same_failing_offer_is_skipped_after_three_tries);
    RUN(test_offer_of_running_image_is_ignored);
    RUN(test_refuse_downgrade_option);
    RUN(test_token_not_sent_to_other_hosts);
    RUN(test_unauthorized_backs_off_and_keeps_token);
    RUN(test_server_away_backoff_and_rediscovery);
    RUN(test_discovery_falls_back_to_configured_url);
    RUN(test_trial_image_rolls_back_after_failed_checkins);
    RUN(test_trial_not_confirmed_by_bad_reply);
    RUN(test_rolled_back_image_reports_failure);
}
