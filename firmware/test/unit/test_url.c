/* test_url.c - parsing, resolving (relative and absolute update URLs) and
 * the same-origin rule that decides where the device token may be sent. */
#include "../../src/core/ofc_url.h"
#include "check.h"

static void test_parse(void)
{
    ofc_url u;
    CHECK_INT(ofc_url_parse("http://192.168.1.10:8080/api/v1", &u), 0);
    CHECK_STR(u.host, "192.168.1.10");
    CHECK_INT(u.port, 8080);
    CHECK_STR(u.path, "/api/v1");
    CHECK_INT(ofc_url_parse("HTTP://otafleet.local", &u), 0);
    CHECK_STR(u.host, "otafleet.local");
    CHECK_INT(u.port, 80);
    CHECK_STR(u.path, "/");
    CHECK_INT(ofc_url_parse("http://[fe80::1]:81/x?y=1", &u), 0);
    CHECK_STR(u.host, "fe80::1");
    CHECK_INT(u.port, 81);
    CHECK_STR(u.path, "/x?y=1");
}

static void test_parse_rejects(void)
{
    static const char *bad[] = {"", "http://", "http://:80/", "http://h:/", "http://h:0/", "http://h:65536/",
                                "http://h:8x/", "http://user@h/", "http://h/a b", "http://h/\r\nX: y",
                                "http://[::1/", "http://[::1]x/", "ftp//h", "h:80", "http://h/\x80"};
    ofc_url u;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = ofc_url_parse(bad[i], &u);
        if (r == 0) fprintf(stderr, "  accepted: [%s]\n", bad[i]);
        CHECK(r != 0);
    }
    CHECK_INT(ofc_url_parse("ftp://h/", &u), OFC_URL_ESCHEME);
    CHECK_INT(ofc_url_parse(NULL, &u), OFC_URL_EINVAL);
}

static void test_resolve(void)
{
    char out[OFC_URL_MAX];
    CHECK_INT(ofc_url_resolve("http://10.0.0.2:8080", "/api/v1/device/firmware/ab", out, sizeof out), 0);
    CHECK_STR(out, "http://10.0.0.2:8080/api/v1/device/firmware/ab");
    CHECK_INT(ofc_url_resolve("http://h:1/prefix/api", "/fw/1", out, sizeof out), 0);
    CHECK_STR(out, "http://h:1/fw/1");
    CHECK_INT(ofc_url_resolve("http://h:1/a/b", "c", out, sizeof out), 0);
    CHECK_STR(out, "http://h:1/a/c");
    CHECK_INT(ofc_url_resolve("http://h:1", "c", out, sizeof out), 0);
    CHECK_STR(out, "http://h:1/c");
    CHECK_INT(ofc_url_resolve("http://h:1/a?q=/x", "c", out, sizeof out), 0);
    CHECK_STR(out, "http://h:1/c");
    CHECK_INT(ofc_url_resolve("http://h:1", "http://cdn.lan:9000/f.bin", out, sizeof out), 0);
    CHECK_STR(out, "http://cdn.lan:9000/f.bin");
    CHECK_INT(ofc_url_resolve("http://h:1", "//cdn.lan/f.bin", out, sizeof out), 0);
    CHECK_STR(out, "http://cdn.lan/f.bin");
    CHECK_INT(ofc_url_resolve("http://h:1", "/x?u=http://evil/", out, sizeof out), 0);
    CHECK_STR(out, "http://h:1/x?u=http://evil/");
}

static void test_resolve_rejects(void)
{
    char out[32];
    CHECK_INT(ofc_url_resolve("http://h", "ftp://h/f.bin", out, sizeof out), OFC_URL_ESCHEME);
    CHECK_INT(ofc_url_resolve("http://h", "", out, sizeof out), OFC_URL_EINVAL);
    CHECK_INT(ofc_url_resolve("http://h", "/a b", out, sizeof out), OFC_URL_EINVAL);
    CHECK_INT(ofc_url_resolve("http://h", "/a\r\n", out, sizeof out), OFC_URL_EINVAL);
    CHECK_INT(ofc_url_resolve("not a url", "/a", out, sizeof out), OFC_URL_EINVAL);
    CHECK_INT(ofc_url_resolve("http://h", "/0123456789012345678901234567890", out, sizeof out),
              OFC_URL_ETOOLONG);
    CHECK_INT(ofc_url_resolve("http://h", "http://h/0123456789012345678901234567890", out, sizeof out),
              OFC_URL_ETOOLONG);
}

static void test_https(void)
{
    ofc_url u;
    char out[OFC_URL_MAX];
    CHECK_INT(ofc_url_parse("https://h/", &u), 0);
    CHECK_INT(u.https, 1);
    CHECK_INT(u.port, 443);
    CHECK_INT(ofc_url_parse("HTTPS://h:8443/x", &u), 0);
    CHECK_INT(u.port, 8443);
    CHECK_INT(ofc_url_parse("http://h/", &u), 0);
    CHECK_INT(u.https, 0);
    CHECK_INT(ofc_url_resolve("https://10.0.0.2:8080", "/api/v1/x", out, sizeof out), 0);
    CHECK_STR(out, "https://10.0.0.2:8080/api/v1/x");
    CHECK_INT(ofc_url_resolve("https://h:1", "//cdn.lan/f.bin", out, sizeof out), 0);
    CHECK_STR(out, "https://cdn.lan/f.bin");
    CHECK_INT(ofc_url_to_https("http://10.0.0.2:8080", out, sizeof out), 0);
    CHECK_STR(out, "https://10.0.0.2:8080");
    CHECK_INT(ofc_url_to_https("http://h/p?q", out, sizeof out), 0);
    CHECK_STR(out, "https://h:80/p?q");
    CHECK_INT(ofc_url_to_https("http://[::1]", out, sizeof out), 0);
    CHECK_STR(out, "https://[::1]:80");
    CHECK_INT(ofc_url_to_https("http://[::1]:9/", out, sizeof out), 0);
    CHECK_STR(out, "https://[::1]:9/");
    CHECK_INT(ofc_url_to_https("https://h:1/x", out, sizeof out), 0);
    CHECK_STR(out, "https://h:1/x");
    CHECK_INT(ofc_url_to_https("ftp://h", out, sizeof out), OFC_URL_ESCHEME);
    CHECK_INT(ofc_url_same_host_port("https://h:80/", "http://h/"), 1);
    CHECK_INT(ofc_url_same_origin("https://h:80/", "http://h/"), 0);
}

static void test_same_origin(void)
{
    CHECK_INT(ofc_url_same_origin("http://H:80/a", "http://h/b"), 1);
    CHECK_INT(ofc_url_same_origin("http://h:8080/a", "http://h/b"), 0);
    CHECK_INT(ofc_url_same_origin("http://h2/a", "http://h/b"), 0);
    CHECK_INT(ofc_url_same_origin("https://h/a", "http://h/b"), 0);
}

void suite_url(void)
{
    RUN(test_parse);
    RUN(test_parse_rejects);
    RUN(test_https);
    RUN(test_resolve);
    RUN(test_resolve_rejects);
    RUN(test_same_origin);
}
