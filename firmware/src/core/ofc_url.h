/* ofc_url.h - the few URL operations the client needs, for plain http://.
 *
 * Why it exists: the update offer carries a URL chosen by the server, usually
 * a path ("/api/v1/device/firmware/<sha256>") to resolve against the server's
 * base URL, sometimes an absolute http:// URL. URLs from the network are
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
#define OFC_URL_ESCHEME (-2)     /* a scheme other than http (e.g. https) */
#define OFC_URL_ETOOLONG (-3)    /* does not fit the output buffer */

typedef struct ofc_url {
    char host[OFC_HOST_MAX]; /* without brackets for IPv6 literals */
    uint16_t port;           /* 80 when absent */
    const char *path;        /* points into the parsed string; "/" when absent */
} ofc_url;

/* Split "http://host[:port][/path]". Returns 0 or OFC_URL_E*. */
int ofc_url_parse(const char *url, ofc_url *out);

/* Resolve `ref` (absolute http:// URL, "//authority/path", "/path", or a
 * relative path) against `base` (an http:// URL, path optional) into `out`.
 * Returns 0 or OFC_URL_E*. */
int ofc_url_resolve(const char *base, const char *ref, char *out, size_t cap);

/* 1 when both parse and share host and port (so a credential meant for one
 * may be sent to the other), else 0. Host names compare case-insensitively. */
int ofc_url_same_origin(const char *a, const char *b);

#ifdef __cplusplus
}
#endif

#endif /* OFC_URL_H */
