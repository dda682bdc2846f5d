/* posix_http.c - the HTTP/1.1 client of posix_http.h. */
#define _POSIX_C_SOURCE 200809L

#include "posix_http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/error.h"
#include "mbedtls/net_sockets.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

#include "../src/core/ofc_url.h"

#define HTTP_EPROTO (-3)
#define HTTP_ESHORT (-4)
#define HTTP_ETLS (-6)

typedef struct conn {
    int fd;
    mbedtls_ssl_context *ssl; /* NULL: plain http:// */
    unsigned char buf[8192];
    size_t start, end;
} conn;

/* ---- TLS (mbedTLS 2.28) ---- */

static int send_all(int fd, const char *p, size_t n);

typedef struct tls {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
} tls;

static mbedtls_entropy_context s_entropy;
static mbedtls_ctr_drbg_context s_drbg;
static int s_rng_ready;

/* The socket has SO_RCVTIMEO/SO_SNDTIMEO: a timeout is an error, not a retry. */
static int bio_send(void *ctx, const unsigned char *p, size_t n)
{
    ssize_t w;
    do {
        w = send(*(int *)ctx, p, n, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    return w < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)w;
}

static int bio_recv(void *ctx, unsigned char *p, size_t n)
{
    ssize_t r;
    do {
        r = recv(*(int *)ctx, p, n, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? MBEDTLS_ERR_SSL_TIMEOUT : MBEDTLS_ERR_NET_RECV_FAILED;
    return (int)r;
}

static void tls_error(const char *what, const ofc_url *u, int err)
{
    char msg[160];
    mbedtls_strerror(err, msg, sizeof msg);
    fprintf(stderr, "http: TLS %s with %s:%u failed: %s (-0x%04x)\n", what, u->host, (unsigned)u->port, msg,
            (unsigned)-err);
}

static void tls_free(tls *t)
{
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
}

/* Handshake on c->fd, verifying the server against ca_pem and u->host. */
static int tls_open(tls *t, conn *c, const ofc_url *u, const char *ca_pem, int timeout_ms)
{
    int r;
    uint32_t flags;
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->ca);
    if (!s_rng_ready) {
        mbedtls_entropy_init(&s_entropy);
        mbedtls_ctr_drbg_init(&s_drbg);
        if ((r = mbedtls_ctr_drbg_seed(&s_drbg, mbedtls_entropy_func, &s_entropy,
                                       (const unsigned char *)"otafleet-hostdevice", 19)) != 0) {
            tls_error("random seeding", u, r);
            return HTTP_ETLS;
        }
        s_rng_ready = 1;
    }
    if ((r = mbedtls_x509_crt_parse(&t->ca, (const unsigned char *)ca_pem, strlen(ca_pem) + 1)) != 0) {
        tls_error("CA parsing", u, r);
        return HTTP_ETLS;
    }
    if ((r = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        tls_error("configuration", u, r);
        return HTTP_ETLS;
    }
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL); /* the otafleet CA only */
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &s_drbg);
    mbedtls_ssl_conf_read_timeout(&t->conf, (uint32_t)timeout_ms);
    if ((r = mbedtls_ssl_setup(&t->ssl, &t->conf)) != 0 || (r = mbedtls_ssl_set_hostname(&t->ssl, u->host)) != 0) {
        tls_error("setup", u, r);
        return HTTP_ETLS;
    }
    mbedtls_ssl_set_bio(&t->ssl, &c->fd, bio_send, bio_recv, NULL);
    while ((r = mbedtls_ssl_handshake(&t->ssl)) != 0) {
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        tls_error("handshake", u, r);
        flags = mbedtls_ssl_get_verify_result(&t->ssl);
        if (flags != 0 && flags != (uint32_t)-1) {
            char why[256];
            mbedtls_x509_crt_verify_info(why, sizeof why, "  ", flags);
            fprintf(stderr, "http: the server's certificate is not trusted (CA given to the device):\n%s", why);
        }
        return HTTP_ETLS;
    }
    c->ssl = &t->ssl;
    return 0;
}

static int conn_send(conn *c, const char *p, size_t n)
{
    if (c->ssl == NULL) return send_all(c->fd, p, n);
    while (n > 0) {
        int w = mbedtls_ssl_write(c->ssl, (const unsigned char *)p, n);
        if (w == MBEDTLS_ERR_SSL_WANT_READ || w == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* recv() through TLS when on: > 0 bytes, 0 at the end, < 0 on error. */
static long conn_recv(conn *c, unsigned char *out, size_t max)
{
    if (c->ssl == NULL) {
        ssize_t r;
        do {
            r = recv(c->fd, out, max, 0);
        } while (r < 0 && errno == EINTR);
        return (long)r;
    }
    for (;;) {
        int r = mbedtls_ssl_read(c->ssl, out, max);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF) return 0;
        return r;
    }
}

static int connect_to(const ofc_url *u, int timeout_ms)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct timeval tv;
    char port[8];
    int fd = -1, r;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%u", (unsigned)u->port);
    r = getaddrinfo(u->host, port, &hints, &res);
    if (r != 0) {
        fprintf(stderr, "http: cannot resolve %s: %s\n", u->host, gai_strerror(r));
        return -1;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* also bounds connect() on Linux */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) fprintf(stderr, "http: cannot connect to %s:%u: %s\n", u->host, (unsigned)u->port, strerror(errno));
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Up to `max` bytes: buffered ones first. 0 at end of stream, < 0 on error. */
static long conn_read(conn *c, unsigned char *out, size_t max)
{
    long r;
    if (c->start < c->end) {
        size_t n = c->end - c->start < max ? c->end - c->start : max;
        memcpy(out, c->buf + c->start, n);
        c->start += n;
        return (long)n;
    }
    r = conn_recv(c, out, max);
    return (long)r;
}

static int conn_byte(conn *c)
{
    if (c->start == c->end) {
        long r = conn_recv(c, c->buf, sizeof c->buf);
        if (r <= 0) return -1;
        c->start = 0;
        c->end = (size_t)r;
    }
    return c->buf[c->start++];
}

/* One CRLF-terminated line without the CRLF; -1 if too long or cut off. */
static int read_line(conn *c, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        int b = conn_byte(c);
        if (b < 0) return -1;
        if (b == '\n') break;
        if (n + 1 >= cap) return -1;
        line[n++] = (char)b;
    }
    if (n > 0 && line[n - 1] == '\r') n--;
    line[n] = '\0';
    return (int)n;
}

/* Deliver exactly `n` bytes (or until end of stream when n < 0). */
static int pump(conn *c, const ofc_body_sink *sink, long n, size_t chunk)
{
    unsigned char piece[4096];
    if (chunk == 0 || chunk > sizeof piece) chunk = sizeof piece;
    while (n != 0) {
        size_t want = (n > 0 && (size_t)n < chunk) ? (size_t)n : chunk;
        long r = conn_read(c, piece, want);
        if (r < 0) return HTTP_ESHORT;
        if (r == 0) return n < 0 ? 0 : HTTP_ESHORT;
        if (sink->data(sink->sink_ctx, piece, (size_t)r) != 0) return OFC_HTTP_EABORTED;
        if (n > 0) n -= r;
    }
    return 0;
}

static int pump_chunked(conn *c, const ofc_body_sink *sink, size_t chunk)
{
    char line[256];
    for (;;) {
        char *end;
        unsigned long size;
        int r;
        if (read_line(c, line, sizeof line) < 0) return HTTP_ESHORT;
        size = strtoul(line, &end, 16);
        if (end == line || (*end != '\0' && *end != ';') || size > 0x7FFFFFFFul) return HTTP_EPROTO;
        if (size == 0) break;
        r = pump(c, sink, (long)size, chunk);
        if (r != 0) return r;
        if (read_line(c, line, sizeof line) != 0) return HTTP_EPROTO;
    }
    while (read_line(c, line, sizeof line) > 0) { /* trailers */
    }
    return 0;
}

static void conn_close(conn *c, tls *t)
{
    if (c->ssl) {
        mbedtls_ssl_close_notify(c->ssl);
        tls_free(t);
        c->ssl = NULL;
    }
    close(c->fd);
}

static void copy_value(char *dst, size_t cap, const char *v)
{
    while (*v == ' ' || *v == '\t') v++;
    snprintf(dst, cap, "%s", v);
}

int posix_http_request(const char *method, const char *url, const char *bearer, const char *body,
                       size_t body_len, const ofc_body_sink *sink, size_t chunk, int timeout_ms,
                       posix_http_headers *headers, const char *ca_pem)
{
    conn c; /* its own buffer: a progress POST runs while a GET is streaming */
    tls t;
    ofc_url u;
    char req[1024], line[8192], host[OFC_HOST_MAX + 16];
    long content_length = -1;
    int status, chunked = 0, n, nheaders = 0, r;
    if (headers) memset(headers, 0, sizeof *headers);
    if (ofc_url_parse(url, &u) != 0) {
        fprintf(stderr, "http: unusable URL %s\n", url);
        return HTTP_EPROTO;
    }
    snprintf(host, sizeof host, strchr(u.host, ':') ? "[%s]" : "%s", u.host);
    if (u.https && ca_pem == NULL) {
        fprintf(stderr, "http: %s: no CA to verify the server against; not connecting\n", url);
        return HTTP_ETLS;
    }
    if (u.port != (u.https ? 443 : 80)) snprintf(host + strlen(host), sizeof host - strlen(host), ":%u", (unsigned)u.port);
    n = snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: otafleet-hostdevice/1\r\nConnection: close\r\n"
                 "Accept: */*\r\n%s%s%s",
                 method, u.path, host, bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                 bearer ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req) return HTTP_EPROTO;
    if (body) {
        r = snprintf(req + n, sizeof req - (size_t)n,
                     "Content-Type: application/json\r\nContent-Length: %lu\r\n", (unsigned long)body_len);
        if (r < 0 || (size_t)r >= sizeof req - (size_t)n) return HTTP_EPROTO;
        n += r;
    }
    if ((size_t)n + 3 > sizeof req) return HTTP_EPROTO;
    memcpy(req + n, "\r\n", 3);
    n += 2;

    c.fd = connect_to(&u, timeout_ms);
    c.ssl = NULL;
    c.start = c.end = 0;
    if (c.fd < 0) return -1;
    if (u.https && (r = tls_open(&t, &c, &u, ca_pem, timeout_ms)) != 0) {
        tls_free(&t);
        conn_close(&c, &t);
        return r;
    }
    if (conn_send(&c, req, (size_t)n) != 0 || (body && conn_send(&c, body, body_len) != 0)) {
        fprintf(stderr, "http: sending the request to %s failed\n", url);
        conn_close(&c, &t);
        return -2;
    }
    if (read_line(&c, line, sizeof line) < 0 || sscanf(line, "HTTP/1.%*1d %3d", &status) != 1 ||
        status < 100 || status > 599) {
        fprintf(stderr, "http: no valid status line from %s\n", url);
        conn_close(&c, &t);
        return HTTP_EPROTO;
    }
    while ((r = read_line(&c, line, sizeof line)) > 0) {
        char *colon = strchr(line, ':');
        if (colon == NULL || ++nheaders > 100) { r = -1; break; }
        *colon = '\0';
        if (strcasecmp(line, "Content-Length") == 0) {
            char *end;
            long v = strtol(colon + 1, &end, 10);
            while (*end == ' ' || *end == '\t') end++;
            if (*end != '\0' || v < 0 || (content_length >= 0 && v != content_length)) { r = -1; break; }
            content_length = v;
        } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
            chunked = strstr(colon + 1, "chunked") != NULL;
        } else if (headers && strcasecmp(line, "x-SHA256") == 0) {
            copy_value(headers->x_sha256, sizeof headers->x_sha256, colon + 1);
        } else if (headers && strcasecmp(line, "x-MD5") == 0) {
            copy_value(headers->x_md5, sizeof headers->x_md5, colon + 1);
        }
    }
    if (r < 0) {
        fprintf(stderr, "http: malformed response headers from %s\n", url);
        conn_close(&c, &t);
        return HTTP_EPROTO;
    }
    if (chunked) content_length = -1;
    if (sink->begin(sink->sink_ctx, status, content_length) != 0) {
        conn_close(&c, &t);
        return OFC_HTTP_EABORTED;
    }
    if (strcmp(method, "HEAD") == 0 || status == 204 || status == 304 || status < 200)
        r = 0;
    else if (chunked)
        r = pump_chunked(&c, sink, chunk);
    else
        r = pump(&c, sink, content_length, chunk);
    conn_close(&c, &t);
    if (r == HTTP_ESHORT) fprintf(stderr, "http: response body from %s ended early\n", url);
    return r != 0 ? r : status;
}
