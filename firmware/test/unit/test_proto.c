/* test_proto.c - native v1 request bodies, check-in reply validation and
 * the pending-update record. */
#include "../../src/core/ofc_proto.h"
#include "check.h"

static ofc_json_tok toks[96];

static int parse(const char *body, ofc_checkin_reply *r)
{
    return ofc_parse_checkin(body, strlen(body), toks, 96, r);
}

static void test_build_checkin(void)
{
    ofc_device_info d;
    char buf[512];
    memset(&d, 0, sizeof d);
    strcpy(d.mac, "AA:BB:CC:DD:EE:FF");
    strcpy(d.chip, "esp32");
    strcpy(d.project, "blink");
    strcpy(d.version, "1.0.0");
    CHECK(ofc_build_checkin(buf, sizeof buf, &d, NULL) > 0);
    CHECK_STR(buf, "{\"mac\":\"AA:BB:CC:DD:EE:FF\",\"chip\":\"esp32\",\"project\":\"blink\",\"version\":\"1.0.0\","
                   "\"uptime_s\":0}");
    strcpy(d.sha256, "ab12");
    strcpy(d.ip, "10.0.0.7");
    d.free_space = 1310720;
    d.rssi = -61;
    d.has_rssi = 1;
    d.uptime_s = 42;
    CHECK(ofc_build_checkin(buf, sizeof buf, &d, "bench \"3\"") > 0);
    CHECK_STR(buf, "{\"mac\":\"AA:BB:CC:DD:EE:FF\",\"chip\":\"esp32\",\"project\":\"blink\",\"version\":\"1.0.0\","
                   "\"sha256\":\"ab12\",\"free_space\":1310720,\"ip\":\"10.0.0.7\",\"rssi\":-61,\"uptime_s\":42,"
                   "\"name\":\"bench \\\"3\\\"\"}");
    CHECK_INT(ofc_build_checkin(buf, 40, &d, NULL), OFC_PROTO_ETOOBIG);
}

static void test_build_progress(void)
{
    ofc_id num = {"17", 1}, str = {"u-1", 0};
    char buf[256];
    CHECK(ofc_build_progress(buf, sizeof buf, &num, "downloading", 35, NULL) > 0);
    CHECK_STR(buf, "{\"update_id\":17,\"state\":\"downloading\",\"progress\":35}");
    CHECK(ofc_build_progress(buf, sizeof buf, &str, "failed", 250, "sha256 mismatch") > 0);
    CHECK_STR(buf, "{\"update_id\":\"u-1\",\"state\":\"failed\",\"progress\":100,\"error\":\"sha256 mismatch\"}");
}

static const char *FULL =
    "{\"device_id\": 12, \"token\": \"tok-ABC_123\", \"checkin_interval_s\": 30, \"extra\": [1, {\"x\": 2}],"
    " \"update\": {\"id\": \"3f2a\", \"version\": \"2.0.0\", \"url\": \"/api/v1/device/firmware/"
    "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\", \"size\": 123456,"
    " \"sha256\": \"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\","
    " \"md5\": \"D41D8CD98F00B204E9800998ECF8427E\"}}";

static void test_parse_full_reply(void)
{
    ofc_checkin_reply r;
    CHECK_INT(parse(FULL, &r), 0);
    CHECK_STR(r.device_id.text, "12");
    CHECK_INT(r.device_id.is_number, 1);
    CHECK_STR(r.token, "tok-ABC_123");
    CHECK_INT(r.checkin_interval_s, 30);
    CHECK_INT(r.has_update, 1);
    CHECK_STR(r.update.id.text, "3f2a");
    CHECK_INT(r.update.id.is_number, 0);
    CHECK_STR(r.update.version, "2.0.0");
    CHECK_INT(r.update.size, 123456);
    CHECK_STR(r.update.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_STR(r.update.md5, "d41d8cd98f00b204e9800998ecf8427e");
}

static void test_parse_minimal_replies(void)
{
    ofc_checkin_reply r;
    CHECK_INT(parse("{\"device_id\":\"d\",\"update\":null,\"checkin_interval_s\":60}", &r), 0);
    CHECK_INT(r.has_update, 0);
    CHECK_STR(r.token, "");
    CHECK_INT(parse("{\"device_id\":\"d\",\"token\":null,\"update\":null}", &r), 0);
    CHECK_INT(r.checkin_interval_s, 0);
    CHECK_INT(parse("{}", &r), 0);
    CHECK_INT(parse("{\"update\":{\"id\":1,\"url\":\"/f\",\"size\":1,\"sha256\":\""
                    "0000000000000000000000000000000000000000000000000000000000000000\",\"md5\":null}}", &r), 0);
    CHECK_INT(r.has_update, 1);
    CHECK_STR(r.update.md5, "");
    CHECK_STR(r.update.version, "");
}

static void test_parse_rejects(void)
{
    static const char *const SHA = "\"0000000000000000000000000000000000000000000000000000000000000000\"";
    static const char *bad_updates[] = {
        "{\"url\":\"/f\",\"size\":1,\"sha256\":%s}",                       /* no id */
        "{\"id\":true,\"url\":\"/f\",\"size\":1,\"sha256\":%s}",           /* id of wrong type */
        "{\"id\":\"\",\"url\":\"/f\",\"size\":1,\"sha256\":%s}",           /* empty id */
        "{\"id\":1,\"size\":1,\"sha256\":%s}",                             /* no url */
        "{\"id\":1,\"url\":\"\",\"size\":1,\"sha256\":%s}",                /* empty url */
        "{\"id\":1,\"url\":\"/a b\",\"size\":1,\"sha256\":%s}",            /* space in url */
        "{\"id\":1,\"url\":\"/f\",\"size\":0,\"sha256\":%s}",              /* size 0 */
        "{\"id\":1,\"url\":\"/f\",\"size\":-5,\"sha256\":%s}",             /* negative */
        "{\"id\":1,\"url\":\"/f\",\"size\":4294967296,\"sha256\":%s}",     /* > 4 GiB */
        "{\"id\":1,\"url\":\"/f\",\"size\":\"10\",\"sha256\":%s}",         /* string size */
        "{\"id\":1,\"url\":\"/f\",\"size\":1.5,\"sha256\":%s}",            /* fraction */
        "{\"id\":1,\"url\":\"/f\",\"size\":1,\"sha256\":\"abc\"}%.0s",     /* short sha */
        "{\"id\":1,\"url\":\"/f\",\"size\":1}%.0s",                        /* no sha */
        "{\"id\":1,\"url\":\"/f\",\"size\":1,\"sha256\":%s,\"md5\":\"xyz\"}", /* bad md5 */
        "{\"id\":1,\"url\":\"/f\",\"size\":1,\"sha256\":%s,\"version\":7}",   /* version not a string */
        "[]%.0s",                                                          /* update not an object */
        "\"later\"%.0s"};
    static const char *bad_replies[] = {
        "", "[]", "null", "{\"token\":\"a b\"}", "{\"token\":\"a\\nb\"}", "{\"token\":5}",
        "{\"checkin_interval_s\":-1}", "{\"checkin_interval_s\":\"60\"}", "{\"device_id\":{}}",
        "{\"update\":null,\"update\":null}", "{\"device_id\":\"d\"} trailing"};
    ofc_checkin_reply r;
    char body[512], upd[400];
    size_t i;
    for (i = 0; i < sizeof bad_updates / sizeof bad_updates[0]; i++) {
        snprintf(upd, sizeof upd, bad_updates[i], SHA);
        snprintf(body, sizeof body, "{\"device_id\":\"d\",\"update\":%s}", upd);
        if (parse(body, &r) == 0) fprintf(stderr, "  accepted: %s\n", body);
        CHECK_INT(parse(body, &r), OFC_PROTO_EINVAL);
    }
    for (i = 0; i < sizeof bad_replies / sizeof bad_replies[0]; i++) {
        if (parse(bad_replies[i], &r) == 0) fprintf(stderr, "  accepted: %s\n", bad_replies[i]);
        CHECK_INT(parse(bad_replies[i], &r), OFC_PROTO_EINVAL);
    }
    CHECK_INT(ofc_parse_checkin(FULL, strlen(FULL), toks, 8, &r), OFC_PROTO_EINVAL); /* too few tokens */
}

static void test_pending_round_trip(void)
{
    ofc_pending p, q;
    char buf[512];
    memset(&p, 0, sizeof p);
    strcpy(p.update_id.text, "42");
    p.update_id.is_number = 1;
    strcpy(p.sha256, "aa");
    strcpy(p.version, "2.0.0");
    strcpy(p.prev_sha256, "bb");
    strcpy(p.prev_version, "1.0.0");
    CHECK(ofc_pending_encode(buf, sizeof buf, &p) > 0);
    CHECK_INT(ofc_pending_decode(buf, toks, 96, &q), 0);
    CHECK_STR(q.update_id.text, "42");
    CHECK_INT(q.update_id.is_number, 1);
    CHECK_STR(q.sha256, "aa");
    CHECK_STR(q.version, "2.0.0");
    CHECK_STR(q.prev_sha256, "bb");
    CHECK_STR(q.prev_version, "1.0.0");
    CHECK_INT(ofc_pending_decode("{\"sha256\":\"aa\"}", toks, 96, &q), OFC_PROTO_EINVAL);
    CHECK_INT(ofc_pending_decode("garbage", toks, 96, &q), OFC_PROTO_EINVAL);
}

void suite_proto(void)
{
    RUN(test_build_checkin);
    RUN(test_build_progress);
    RUN(test_parse_full_reply);
    RUN(test_parse_minimal_replies);
    RUN(test_parse_rejects);
    RUN(test_pending_round_trip);
}
