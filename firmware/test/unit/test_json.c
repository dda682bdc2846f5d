/* test_json.c - the strict JSON reader and the writer (ofc_json.h).
 *
 * Covers valid documents, every class of malformed input we reject, limits
 * (depth, token count, integer range), unescaping, writer escaping, and a
 * deterministic mutation run that must never crash (the test build has
 * AddressSanitizer and UBSan on).
 */
#include <stdint.h>

#include "../../src/core/ofc_json.h"
#include "check.h"

static ofc_json_tok toks[64];

static int parse(const char *s) { return ofc_json_parse(s, strlen(s), toks, 64); }

static void test_valid_document(void)
{
    const char *js = "{\"a\": [1, 2.5e-3, {\"x\": null}], \"b\": \"hi\", \"c\": true, \"d\": false, \"e\": -0}";
    int n = ofc_json_parse(js, strlen(js), toks, 64);
    int a, b, x;
    char out[8];
    CHECK_INT(n, 16); /* keys are tokens too */
    CHECK_INT(toks[0].type, OFC_JSON_OBJECT);
    CHECK_INT(toks[0].next, n);
    a = ofc_json_find(js, toks, 0, "a");
    CHECK_INT(toks[a].type, OFC_JSON_ARRAY);
    b = ofc_json_find(js, toks, 0, "b");
    CHECK_INT(ofc_json_string(js, &toks[b], out, sizeof out), 2);
    CHECK_STR(out, "hi");
    CHECK_INT(toks[ofc_json_find(js, toks, 0, "c")].type, OFC_JSON_TRUE);
    CHECK_INT(toks[ofc_json_find(js, toks, 0, "d")].type, OFC_JSON_FALSE);
    CHECK_INT(ofc_json_find(js, toks, 0, "x"), -1); /* nested keys are not top-level members */
    x = ofc_json_find(js, toks, a + 3, "x");
    CHECK_INT(toks[x].type, OFC_JSON_NULL);
    CHECK_INT(ofc_json_find(js, toks, a, "a"), -1); /* not an object */
    CHECK_INT(parse("  [ ]  "), 1);
    CHECK_INT(parse("\"\""), 1);
    CHECK_INT(parse("0"), 1);
}

static void test_malformed_rejected(void)
{
    static const char *bad[] = {
        "", " ", "{", "}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[,1]", "01", "1.", ".5", "-", "+1",
        "1e", "1e+", "tru", "nul", "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"",
        "{\"a\" 1}", "{a:1}", "{\"a\":1}x", "{\"a\":1}}", "[1 2]", "\"\x01\"", "\"tab\there\"",
        "\"\xff\"", "\"\xc0\x80\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
        "\"\xc3\"", "{\"a\":1 \"b\":2}", "[\"a\":1]", "{\"a\":1,\"a\":2}", "NaN", "Infinity", "'a'",
        "[1]/**/", "\xef\xbb\xbf{}"};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse(bad[i]);
        if (r >= 0) fprintf(stderr, "  accepted: [%s]\n", bad[i]);
        CHECK(r < 0);
    }
    CHECK_INT(parse("{\"a\":1,\"a\":2}"), OFC_JSON_EDUP);
    CHECK_INT(ofc_json_parse("{}\0", 3, toks, 64), OFC_JSON_ESYNTAX); /* embedded NUL */
    CHECK_INT(ofc_json_parse(NULL, 0, toks, 64), OFC_JSON_ESYNTAX);
}

static void test_limits(void)
{
    char deep[64];
    int i;
    for (i = 0; i < 16; i++) deep[i] = '[';
    for (i = 0; i < 16; i++) deep[16 + i] = ']';
    deep[32] = '\0';
    CHECK_INT(parse(deep), 16);
    for (i = 0; i < 17; i++) deep[i] = '[';
    for (i = 0; i < 17; i++) deep[17 + i] = ']';
    deep[34] = '\0';
    CHECK_INT(parse(deep), OFC_JSON_EDEPTH);
    CHECK_INT(ofc_json_parse("[1,2,3]", 7, toks, 3), OFC_JSON_ENOMEM);
    CHECK_INT(ofc_json_parse("[1,2,3]", 7, toks, 4), 4);
}

static void test_strings(void)
{
    const char *js = "[\"a\\\"b\\\\c\\/d\\n\", \"\\u00e9\\u20ac\", \"\\ud83d\\ude00\", \"\\u0000\", \"\\ud83d\", "
                     "\"\\ude00\", \"\\ud83dx\", \"caf\xc3\xa9\"]";
    char out[16];
    CHECK_INT(ofc_json_parse(js, strlen(js), toks, 64), 9);
    CHECK_INT(ofc_json_string(js, &toks[1], out, sizeof out), 8);
    CHECK_STR(out, "a\"b\\c/d\n");
    CHECK_INT(ofc_json_string(js, &toks[2], out, sizeof out), 5);
    CHECK_STR(out, "\xc3\xa9\xe2\x82\xac");
    CHECK_INT(ofc_json_string(js, &toks[3], out, sizeof out), 4);
    CHECK_STR(out, "\xf0\x9f\x98\x80");
    CHECK_INT(ofc_json_string(js, &toks[4], out, sizeof out), -1); /* \u0000 */
    CHECK_INT(ofc_json_string(js, &toks[5], out, sizeof out), -1); /* lone high surrogate */
    CHECK_INT(ofc_json_string(js, &toks[6], out, sizeof out), -1); /* lone low surrogate */
    CHECK_INT(ofc_json_string(js, &toks[7], out, sizeof out), -1);
    CHECK_INT(ofc_json_string(js, &toks[8], out, sizeof out), 5);
    CHECK_INT(ofc_json_string(js, &toks[8], out, 5), -1); /* no room for the NUL */
    CHECK_INT(ofc_json_string(js, &toks[8], out, 6), 5);
    CHECK_INT(ofc_json_string(js, &toks[0], out, sizeof out), -1); /* not a string */
}

static void test_uint(void)
{
    const char *js = "[0, 42, 18446744073709551615, 18446744073709551616, -1, 1.0, 1e3, 4294967296, \"7\"]";
    uint64_t v = 99;
    CHECK_INT(ofc_json_parse(js, strlen(js), toks, 64), 10);
    CHECK_INT(ofc_json_uint(js, &toks[1], UINT64_MAX, &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(ofc_json_uint(js, &toks[2], UINT64_MAX, &v), 0);
    CHECK_INT(v, 42);
    CHECK_INT(ofc_json_uint(js, &toks[2], 41, &v), -1);
    CHECK_INT(ofc_json_uint(js, &toks[2], 5, &v), -1);
    CHECK_INT(ofc_json_uint(js, &toks[3], UINT64_MAX, &v), 0);
    CHECK(v == UINT64_MAX);
    CHECK_INT(ofc_json_uint(js, &toks[4], UINT64_MAX, &v), -1);
    CHECK_INT(ofc_json_uint(js, &toks[5], UINT64_MAX, &v), -1);
    CHECK_INT(ofc_json_uint(js, &toks[6], UINT64_MAX, &v), -1);
    CHECK_INT(ofc_json_uint(js, &toks[7], UINT64_MAX, &v), -1);
    CHECK_INT(ofc_json_uint(js, &toks[8], 0xFFFFFFFFu, &v), -1);
    CHECK_INT(ofc_json_uint(js, &toks[9], UINT64_MAX, &v), -1);
}

static void test_writer(void)
{
    char buf[128];
    ofc_jw w;
    int n;
    ofc_jw_begin(&w, buf, sizeof buf);
    ofc_jw_str(&w, "s", "q\"b\\c\n\x01\x7f");
    ofc_jw_str(&w, "u", "caf\xc3\xa9 \xff!");
    ofc_jw_uint(&w, "n", 18446744073709551615ull);
    ofc_jw_int(&w, "m", INT64_MIN);
    ofc_jw_int(&w, "z", 0);
    ofc_jw_raw(&w, "r", "17");
    n = ofc_jw_end(&w);
    CHECK_STR(buf, "{\"s\":\"q\\\"b\\\\c\\u000a\\u0001\\u007f\",\"u\":\"caf\xc3\xa9 \xef\xbf\xbd!\","
                   "\"n\":18446744073709551615,\"m\":-9223372036854775808,\"z\":0,\"r\":17}");
    CHECK_INT(n, (int)strlen(buf));
    CHECK(ofc_json_parse(buf, (size_t)n, toks, 64) == 13); /* the output is valid JSON */

    ofc_jw_begin(&w, buf, 8); /* {"a":1} is 7 bytes + NUL: fits exactly */
    ofc_jw_uint(&w, "a", 1);
    CHECK_INT(ofc_jw_end(&w), 7);
    ofc_jw_begin(&w, buf, 7);
    ofc_jw_uint(&w, "a", 1);
    CHECK_INT(ofc_jw_end(&w), -1);
    ofc_jw_begin(&w, buf, 0);
    CHECK_INT(ofc_jw_end(&w), -1);
}

/* Flip, drop and truncate bytes of a valid reply many times: the reader must
 * either accept or reject, never read out of bounds. */
static void test_mutations_never_crash(void)
{
    const char *seed = "{\"device_id\":\"d1\",\"token\":\"t\\u00e9\",\"update\":{\"id\":7,\"version\":\"2.0.0\","
                       "\"url\":\"/x\",\"size\":10,\"sha256\":\"ab\",\"md5\":null},\"checkin_interval_s\":60}";
    char buf[256];
    uint32_t rng = 12345;
    size_t len = strlen(seed);
    int i, accepted = 0;
    for (i = 0; i < 20000; i++) {
        size_t n = len, k;
        int edits = 1 + i % 4, e;
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
        if (ofc_json_parse(buf, n, toks, 64) >= 0) {
            char out[64];
            int t;
            accepted++;
            for (t = 0; t < toks[0].next; t++) (void)ofc_json_string(buf, &toks[t], out, sizeof out);
        }
    }
    CHECK(accepted > 0);
    CHECK(accepted < 20000);
}

void suite_json(void)
{
    RUN(test_valid_document);
    RUN(test_malformed_rejected);
    RUN(test_limits);
    RUN(test_strings);
    RUN(test_uint);
    RUN(test_writer);
    RUN(test_mutations_never_crash);
}
