/* ofc_url.h - the few URL operations the client needs, for http:// and https://.
 *
 * Why it exists: the update offer carries a URL chosen by the server, usually
 * a path ("/api/v1/device/firmware/<sha256>") to resolve against the server's
 * base URL, sometimes an absolute http(s):// URL. Once the client knows the
 * server's CA it upgrades http:// URLs of the server to https://. URLs from the network are
 * checked (no spaces or control bytes that could split an HTTP request line,
 * bounded lengths) before any adapter sees them.
 */
#ifndef OFC_URL_H
#define OFC_URL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OFC_URL_MAX 256
#define OFC_HOST_MAX 128

#define OFC_URL_EINVAL (-1)      /* malformed */
#define OFC_URL_ESCHEME (-2)     /* a scheme other than http and https (e.g. ftp) */
#define OFC_URL_ETOOLONG (-3)    /* does not fit the output buffer */

typedef struct ofc_url {
    char host[OFC_HOST_MAX]; /* without brackets for IPv6 literals */
    uint16_t port;           /* 80 (http) or 443 (https) when absent */
    int https;               /* 1 for https:// */
    const char *path;        /* points into the parsed string; "/" when absent */
} ofc_url;

/* Split "http[s]://host[:port][/path]". Returns 0 or OFC_URL_E*. */
int ofc_url_parse(const char *url, ofc_url *out);

/* Resolve `ref` (absolute http(s):// URL, "//authority/path", "/path", or a
 * relative path) against `base` (an http(s):// URL, path optional) into `out`.
 * Returns 0 or OFC_URL_E*. */
int ofc_url_resolve(const char *base, const char *ref, char *out, size_t cap);

/* 1 when both parse and share scheme, host and port (so a credential meant
 * for one may be sent to the other), else 0. Host names compare
 * case-insensitively. */
int ofc_url_same_origin(const char *a, const char *b);

/* 1 when both parse and share host and port, whatever their schemes. */
int ofc_url_same_host_port(const char *a, const char *b);

/* Rewrite an http:// URL as https:// on the same host and port (an absent
 * port becomes ":80", where the server listened) into `out`; an https://
 * URL is copied. Returns 0 or OFC_URL_E*. */
int ofc_url_to_https(const char *url, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* OFC_URL_H */
