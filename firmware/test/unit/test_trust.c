/* test_trust.c - the client and the server's CA: a configured CA makes every
 * request https://; a known CA never lets the token go over plain http://
 * (refused inside the core, nothing reaches the platform); trust on first
 * use from mDNS's ca= (fetched without the token, checked, stored, logged);
 * a mismatch refuses the server; a pin always wins over mDNS. */
#include <stdio.h>
#include <string.h>

#include "../../src/core/ofc_client.h"
#include "../../src/core/ofc_pem.h"
#include "check.h"
#include "fake_platform.h"

#define TOKEN_REPLY "{\"device_id\":\"d1\",\"token\":\"tok1\",\"update\":null,\"checkin_interval_s\":30}"
#define PLAIN_REPLY "{\"device_id\":\"d1\",\"update\":null,\"checkin_interval_s\":30}"

/* openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=unit-ca */
static const char CA_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBeTCCAR+gAwIBAgIUeeJQpxB28XU5SsR0lp+HzqoG8j4wCgYIKoZIzj0EAwIw\n"
    "EjEQMA4GA1UEAwwHdW5pdC1jYTAeFw0yNjEyMDYxNDA3MTdaFw0zNjEyMDMxNDA3\n"
    "MTdaMBIxEDAOBgNVBAMMB3VuaXQtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n"
    "AASZfm+kyHm4e4JyRaCr76GMhCb2xsky43uNOV491YODfGBfJwv3VaA5tMtHZA/D\n"
    "tH6rOeBBZvpAz7kxtKlfeRDso1MwUTAdBgNVHQ4EFgQUp6DrJW/PIk97xnW0imhv\n"
    "iBa4R1AwHwYDVR0jBBgwFoAUp6DrJW/PIk97xnW0imhviBa4R1AwDwYDVR0TAQH/\n"
    "BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiA5R2U0u6sbKSOGfQEhJvLc+3tEUXIx\n"
    "ut0UsMYlpxQQ8AIhANlqOi/UrrWRVuRYZU+dh2mQDc/8Z1RCj1mbjhFJZCxH\n"
    "-----END CERTIFICATE-----\n";
#define CA_SHA "c6e2f2a82d8e7cdf911b1d57c1f4e7faf3f42977be86405a86780b50ae99a641"
#define CA_COLON "C6:E2:F2:A8:2D:8E:7C:DF:91:1B:1D:57:C1:F4:E7:FA:F3:F4:29:77:BE:86:40:5A:86:78:0B:50:AE:99:A6:41"
/* Another CA (/CN=other-ca). */
static const char OTHER_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBezCCASGgAwIBAgIUE5nHgOXGgFpNs2lXMlmcrovPbK8wCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIb3RoZXItY2EwHhcNMjYxMjA2MTQwNzE3WhcNMzYxMjAzMTQw\n"
    "NzE3WjATMREwDwYDVQQDDAhvdGhlci1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABINtJfmVohdYzue2CTlWBlwI07SwPq3e8d/2gmBUMXdmXD5EVmu/42vTTr0E\n"
    "UAkwq6eq+ocTwqsCQsUj1xr5hf+jUzBRMB0GA1UdDgQWBBT4+LxldDZgFavE/vPz\n"
    "gUDc7Gx6GzAfBgNVHSMEGDAWgBT4+LxldDZgFavE/vPzgUDc7Gx6GzAPBgNVHRMB\n"
    "Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDPQRxyyZ00HNzPlRaFoJzHHe1G\n"
    "0Cdqz1LFvJ/I5Ee59QIgHrWm4B9DMu970d8Q2H0AA5s0M/AVNkmm/cU09Ubd//Q=\n"
    "-----END CERTIFICATE-----\n";
#define OTHER_SHA "cc838fa90ee5341a3b024510a6a7144e5a39ed96b08ced6cc23abb9d3a56a18d"

static fake f;
static ofc_client client;
static ofc_config cfg;

static void setup(void)
{
    fake_init(&f);
    fake_config(&cfg, &f);
}

static void start(void) { ofc_client_init(&client, &cfg, &fake_platform, &f); }

static int ca_events(int trusted)
{
    int i, n = 0;
    for (i = 0; i < f.nevents; i++) n += f.events[i] == OFC_EV_CA && f.event_status[i] == trusted;
    return n;
}

static void test_pem_fingerprint(void)
{
    char hex[OFC_FP_HEX], colon[OFC_FP_COLON];
    CHECK_INT(ofc_pem_cert_sha256_hex(CA_PEM, hex), 0);
    CHECK_STR(hex, CA_SHA);
    CHECK_INT(ofc_pem_cert_sha256_hex(OTHER_PEM, hex), 0);
    CHECK_STR(hex, OTHER_SHA);
    CHECK_INT(ofc_pem_cert_sha256_hex("no pem here", hex), -1);
    CHECK_INT(ofc_pem_cert_sha256_hex("-----BEGIN CERTIFICATE-----\nAB*C\n-----END CERTIFICATE-----\n", hex), -1);
    CHECK_INT(ofc_fingerprint_normalize(CA_COLON, hex), 0);
    CHECK_STR(hex, CA_SHA);
    CHECK_INT(ofc_fingerprint_normalize("abc", hex), -1);
    CHECK_INT(ofc_fingerprint_normalize(CA_SHA "00", hex), -1);
    ofc_fingerprint_colon(CA_SHA, colon);
    CHECK_STR(colon, CA_COLON);
}

static void test_configured_ca_makes_everything_https(void)
{
    int i;
    setup();
    cfg.ca_pem = CA_PEM;
    fake_reply(&f, 200, TOKEN_REPLY);
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_ENROLLED, 20));
    CHECK_INT(f.set_ca_calls, 1);
    CHECK(f.set_ca_pem == CA_PEM);
    CHECK_STR(f.posts[0].url, "https://10.0.0.2:8080/api/v1/device/checkin");
    CHECK_INT(ofc_client_report(&client, "info", "hi", NULL), 200);
    for (i = 0; i < f.nposts; i++) CHECK(strncmp(f.posts[i].url, "https://", 8) == 0);
    CHECK_STR(f.posts[f.nposts - 1].bearer, "tok1");
    CHECK_INT(f.ca_gets, 0); /* nothing to fetch */
}

static void test_token_never_goes_over_plain_http_once_ca_known(void)
{
    int posts;
    setup();
    cfg.ca_pem = CA_PEM;
    fake_kv_put(&f, "token", "tok1");
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_CHECKIN, 20));
    posts = f.nposts;
    /* Whatever puts a plain http:// server URL back, the token stays home. */
    strcpy(client.base_url, "http://10.0.0.2:8080");
    CHECK_INT(ofc_client_report(&client, "info", "leak?", NULL), OFC_HTTP_EINSECURE);
    CHECK_INT(f.nposts, posts); /* the platform saw nothing */
    ofc_client_checkin_now(&client);
    ofc_client_poll(&client);
    CHECK_INT(f.nposts, posts);
    CHECK(fake_count_events(&f, OFC_EV_CHECKIN_FAILED) >= 1);
}

static void test_tofu_from_mdns(void)
{
    int i;
    setup();
    fake_kv_put(&f, "token", "tok1"); /* even with a token, the CA is fetched without it */
    f.discover_result = "http://10.0.0.9:8080";
    f.discover_tls = 1;
    f.discover_ca = CA_SHA;
    f.ca_served = CA_PEM;
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_CHECKIN, 20));
    CHECK_INT(f.ca_gets, 1);
    CHECK_STR(f.ca_get_bearer, "");
    CHECK_INT(ca_events(1), 1);
    CHECK_STR(fake_kv(&f, "ca_pem"), CA_PEM);
    CHECK_INT(f.set_ca_calls, 1);
    CHECK_STR(f.set_ca_pem, CA_PEM);
    CHECK_STR(f.posts[0].url, "https://10.0.0.9:8080/api/v1/device/checkin");
    CHECK_STR(f.posts[0].bearer, "tok1");
    for (i = 0; i < f.nevents; i++)
        if (f.events[i] == OFC_EV_CA) CHECK_STR(f.event_text[i], CA_COLON);

    /* After a restart the stored CA is used: no fetch, https:// from the start. */
    f.discover_result = NULL;
    f.ca_gets = 0;
    f.nposts = 0;
    f.nevents = 0;
    f.checkin_i = f.checkin_n = 0;
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_CHECKIN, 20));
    CHECK_INT(f.ca_gets, 0);
    CHECK_STR(f.posts[0].url, "https://10.0.0.2:8080/api/v1/device/checkin");
}

static void test_tofu_mismatch_refuses_and_sends_nothing(void)
{
    setup();
    fake_kv_put(&f, "token", "tok1");
    f.discover_result = "http://10.0.0.9:8080";
    f.discover_tls = 1;
    f.discover_ca = CA_SHA;
    f.ca_served = OTHER_PEM; /* someone else answers */
    fake_reply(&f, 200, PLAIN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_CHECKIN_FAILED, 20));
    CHECK_INT(f.nposts, 0);
    CHECK_STR(f.ca_get_bearer, "");
    CHECK_INT(ca_events(0), 1);
    CHECK(fake_kv(&f, "ca_pem") == NULL);
    CHECK_INT(f.set_ca_calls, 0);
    /* It keeps refusing (and looking again), never falls back to plain http. */
    fake_run(&client, &f, OFC_EV_ENROLLED, 15);
    CHECK_INT(f.nposts, 0);
    CHECK(f.ca_gets >= 2);
}

static void test_pin_wins_over_mdns(void)
{
    setup();
    cfg.ca_sha256 = CA_COLON; /* the colon form from Settings works too */
    f.discover_result = "http://10.0.0.9:8080";
    f.discover_tls = 1;
    f.discover_ca = OTHER_SHA;
    f.ca_served = OTHER_PEM; /* matches mDNS, not the pin */
    start();
    CHECK(fake_run(&client, &f, OFC_EV_CHECKIN_FAILED, 20));
    CHECK_INT(f.nposts, 0);
    CHECK(fake_kv(&f, "ca_pem") == NULL);

    /* The right CA behind the configured URL, no mDNS: fetched, checked against the pin, used. */
    setup();
    cfg.ca_sha256 = CA_SHA;
    f.ca_served = CA_PEM;
    fake_reply(&f, 200, TOKEN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_ENROLLED, 20));
    CHECK_STR(fake_kv(&f, "ca_pem"), CA_PEM);
    CHECK_STR(f.posts[0].url, "https://10.0.0.2:8080/api/v1/device/checkin");

    /* A stored CA that does not match the pin is forgotten. */
    setup();
    cfg.ca_sha256 = CA_SHA;
    fake_kv_put(&f, "ca_pem", OTHER_PEM);
    start();
    fake_run(&client, &f, OFC_EV_CHECKIN_FAILED, 20);
    CHECK(fake_kv(&f, "ca_pem") == NULL);
    CHECK_INT(f.nposts, 0);

    /* A configured PEM that does not match the pin is not used. */
    setup();
    cfg.ca_sha256 = CA_SHA;
    cfg.ca_pem = OTHER_PEM;
    start();
    fake_run(&client, &f, OFC_EV_CHECKIN_FAILED, 20);
    CHECK_INT(f.set_ca_calls, 0);
    CHECK_INT(f.nposts, 0);
}

static void test_no_ca_stays_plain_http(void)
{
    setup();
    f.discover_result = "http://10.0.0.9:8080";
    f.discover_tls = 1; /* no ca= advertised: nothing to check a CA against */
    fake_reply(&f, 200, TOKEN_REPLY);
    start();
    CHECK(fake_run(&client, &f, OFC_EV_ENROLLED, 20));
    CHECK_INT(f.ca_gets, 0);
    CHECK_STR(f.posts[0].url, "http://10.0.0.9:8080/api/v1/device/checkin");
}

static void test_firmware_url_upgraded_with_ca(void)
{
    static uint8_t img[64];
    char reply[600];
    setup();
    cfg.ca_pem = CA_PEM;
    fake_kv_put(&f, "token", "tok1");
    memset(img, 0xE9, sizeof img);
    f.image = img;
    f.image_len = sizeof img;
    snprintf(reply, sizeof reply,
             "{\"update\":{\"id\":1,\"version\":\"2\",\"url\":\"http://10.0.0.2:8080/api/v1/device/firmware/x\","
             "\"size\":%u,\"sha256\":\"%s\"}}", (unsigned)sizeof img, CA_SHA);
    fake_reply(&f, 200, reply);
    start();
    fake_run(&client, &f, OFC_EV_UPDATE_FAILED, 30); /* the digest does not match: fine here */
    CHECK_STR(f.get_url, "https://10.0.0.2:8080/api/v1/device/firmware/x");
    CHECK_STR(f.get_bearer, "tok1");
}

void suite_trust(void)
{
    RUN(test_pem_fingerprint);
    RUN(test_configured_ca_makes_everything_https);
    RUN(test_token_never_goes_over_plain_http_once_ca_known);
    RUN(test_tofu_from_mdns);
    RUN(test_tofu_mismatch_refuses_and_sends_nothing);
    RUN(test_pin_wins_over_mdns);
    RUN(test_no_ca_stays_plain_http);
    RUN(test_firmware_url_upgraded_with_ca);
}
