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

#include "../src/core/ofc_url.h"

#define HTTP_EPROTO (-3)
#define HTTP_ESHORT (-4)

typedef struct conn {
    int fd;
    unsigned char buf[8192];
    size_t start, end;
} conn;

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
    ssize_t r;
    if (c->start < c->end) {
        size_t n = c->end - c->start < max ? c->end - c->start : max;
        memcpy(out, c->buf + c->start, n);
        c->start += n;
        return (long)n;
    }
    do {
        r = recv(c->fd, out, max, 0);
    } while (r < 0 && errno == EINTR);
    return (long)r;
}

static int conn_byte(conn *c)
{
    if (c->start == c->end) {
        ssize_t r;
        do {
            r = recv(c->fd, c->buf, sizeof c->buf, 0);
        } while (r < 0 && errno == EINTR);
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

static void copy_value(char *dst, size_t cap, const char *v)
{
    while (*v == ' ' || *v == '\t') v++;
    snprintf(dst, cap, "%s", v);
}

int posix_http_request(const char *method, const char *url, const char *bearer, const char *body,
                       size_t body_len, const ofc_body_sink *sink, size_t chunk, int timeout_ms,
                       posix_http_headers *headers)
{
    conn c; /* its own buffer: a progress POST runs while a GET is streaming */
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
    if (u.port != 80) snprintf(host + strlen(host), sizeof host - strlen(host), ":%u", (unsigned)u.port);
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
    c.start = c.end = 0;
    if (c.fd < 0) return -1;
    if (send_all(c.fd, req, (size_t)n) != 0 || (body && send_all(c.fd, body, body_len) != 0)) {
        fprintf(stderr, "http: sending the request to %s failed\n", url);
        close(c.fd);
        return -2;
    }
    if (read_line(&c, line, sizeof line) < 0 || sscanf(line, "HTTP/1.%*1d %3d", &status) != 1 ||
        status < 100 || status > 599) {
        fprintf(stderr, "http: no valid status line from %s\n", url);
        close(c.fd);
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
        close(c.fd);
        return HTTP_EPROTO;
    }
    if (chunked) content_length = -1;
    if (sink->begin(sink->sink_ctx, status, content_length) != 0) {
        close(c.fd);
        return OFC_HTTP_EABORTED;
    }
    if (strcmp(method, "HEAD") == 0 || status == 204 || status == 304 || status < 200)
        r = 0;
    else if (chunked)
        r = pump_chunked(&c, sink, chunk);
    else
        r = pump(&c, sink, content_length, chunk);
    close(c.fd);
    if (r == HTTP_ESHORT) fprintf(stderr, "http: response body from %s ended early\n", url);
    return r != 0 ? r : status;
}
