/*
 * A minimal HTTPS client on mbedTLS 2.28, configured as an ESP32's esp-tls / Arduino
 * WiFiClientSecure is: TLS 1.2, the peer verified against one CA (required), the expected name
 * set with mbedtls_ssl_set_hostname. mbedTLS 2.x matches that name against DNS SANs only, never
 * IP SANs: connecting by address works only when the certificate carries DNS:<address>.
 *
 * usage: mbedtls_get HOST PORT CA_FILE SERVER_NAME PATH
 * Prints the HTTP status line and exits 0; on any connect, handshake or verify failure prints
 * the reason (mbedtls_strerror and the verify flags) to stderr and exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

static int fail(const char *what, int ret) {
    char buf[256];
    mbedtls_strerror(ret, buf, sizeof buf);
    fprintf(stderr, "mbedtls_get: %s failed: -0x%04x %s\n", what, (unsigned)-ret, buf);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT CA_FILE SERVER_NAME PATH\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *port = argv[2], *ca_file = argv[3], *name = argv[4],
               *path = argv[5];
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    int ret;
    if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                     (const unsigned char *)"otafleet", 8)) != 0)
        return fail("ctr_drbg_seed", ret);
    if ((ret = mbedtls_x509_crt_parse_file(&ca, ca_file)) != 0)
        return fail("x509_crt_parse_file", ret);
    if ((ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
                                           MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
        return fail("ssl_config_defaults", ret);
    /* TLS 1.2 only, as the ESP32's mbedTLS 2.x speaks. */
    mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0) return fail("ssl_setup", ret);
    if ((ret = mbedtls_ssl_set_hostname(&ssl, name)) != 0) return fail("ssl_set_hostname", ret);
    if ((ret = mbedtls_net_connect(&net, host, port, MBEDTLS_NET_PROTO_TCP)) != 0)
        return fail("net_connect", ret);
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
    while ((ret = mbedtls_ssl_handshake(&ssl)) != 0) {
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        uint32_t flags = mbedtls_ssl_get_verify_result(&ssl);
        if (flags != 0) {
            char vbuf[512];
            mbedtls_x509_crt_verify_info(vbuf, sizeof vbuf, "  ", flags);
            fprintf(stderr, "mbedtls_get: certificate verification failed:\n%s", vbuf);
        }
        return fail("ssl_handshake", ret);
    }
    /* VERIFY_REQUIRED already fails the handshake; check again so a config slip cannot pass. */
    if (mbedtls_ssl_get_verify_result(&ssl) != 0) {
        fprintf(stderr, "mbedtls_get: verify result not clean\n");
        return 1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", path, name,
                     port);
    if (n <= 0 || (size_t)n >= sizeof req) {
        fprintf(stderr, "mbedtls_get: request too long\n");
        return 2;
    }
    for (int off = 0; off < n;) {
        ret = mbedtls_ssl_write(&ssl, (const unsigned char *)req + off, (size_t)(n - off));
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        if (ret < 0) return fail("ssl_write", ret);
        off += ret;
    }
    unsigned char resp[4096];
    size_t got = 0;
    while (got < sizeof resp - 1) {
        ret = mbedtls_ssl_read(&ssl, resp + got, sizeof resp - 1 - got);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) break;
        if (ret < 0) return fail("ssl_read", ret);
        got += (size_t)ret;
        if (memchr(resp, '\n', got)) break;
    }
    resp[got] = 0;
    char *eol = strpbrk((char *)resp, "\r\n");
    if (eol) *eol = 0;
    if (strncmp((char *)resp, "HTTP/1.1 ", 9) != 0) {
        fprintf(stderr, "mbedtls_get: no HTTP status line in %zu bytes\n", got);
        return 1;
    }
    printf("%s\n", (char *)resp);
    mbedtls_ssl_close_notify(&ssl);
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return 0;
}
