/* ofc_url.c - URL parsing and resolution; see ofc_url.h. */
#include "ofc_url.h"

#include <stdio.h>
#include <string.h>

/* Bytes that may appear in a URL we pass on: printable ASCII except space. */
static int clean(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7F) return 0;
    }
    return 1;
}

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int has_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (lower((unsigned char)*s) != *prefix) return 0;
    return 1;
}

/* Does `s` start with "scheme://"? */
static int has_scheme(const char *s)
{
    const char *p = s;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) return 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    return strncmp(p, "://", 3) == 0;
}

int ofc_url_parse(const char *url, ofc_url *out)
{
    const char *h, *p, *host_end, *port_start = NULL;
    size_t hn;
    int https;
    if (url == NULL || !clean(url)) return OFC_URL_EINVAL;
    https = has_prefix_ci(url, "https://");
    if (!https && !has_prefix_ci(url, "http://")) {
        return has_scheme(url) ? OFC_URL_ESCHEME : OFC_URL_EINVAL;
    }
    h = url + (https ? 8 : 7);
    p = h + strcspn(h, "/?#");
    if (*h == '[') { /* IPv6 literal */
        const char *close = memchr(h, ']', (size_t)(p - h));
        if (close == NULL) return OFC_URL_EINVAL;
        host_end = close;
        h++;
        if (close + 1 < p) {
            if (close[1] != ':') return OFC_URL_EINVAL;
            port_start = close + 2;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(p - h));
        host_end = colon ? colon : p;
        if (colon) port_start = colon + 1;
    }
    if (memchr(h, '@', (size_t)(p - h))) return OFC_URL_EINVAL; /* no userinfo */
    hn = (size_t)(host_end - h);
    if (hn == 0) return OFC_URL_EINVAL;
    if (hn >= sizeof out->host) return OFC_URL_ETOOLONG;
    memcpy(out->host, h, hn);
    out->host[hn] = '\0';
    out->https = https;
    out->port = https ? 443 : 80;
    if (port_start) {
        unsigned long port = 0;
        const char *q;
        if (port_start == p) return OFC_URL_EINVAL;
        for (q = port_start; q < p; q++) {
            if (*q < '0' || *q > '9') return OFC_URL_EINVAL;
            port = port * 10 + (unsigned long)(*q - '0');
            if (port > 65535) return OFC_URL_EINVAL;
        }
        if (port == 0) return OFC_URL_EINVAL;
        out->port = (uint16_t)port;
    }
    out->path = *p ? p : "/";
    return 0;
}

int ofc_url_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    ofc_url tmp;
    size_t alen, keep = 0;
    const char *path;
    int r, n;
    if (ref == NULL || *ref == '\0' || !clean(ref)) return OFC_URL_EINVAL;
    if (has_scheme(ref)) { /* absolute */
        r = ofc_url_parse(ref, &tmp);
        if (r) return r;
        if (strlen(ref) >= cap) return OFC_URL_ETOOLONG;
        memcpy(out, ref, strlen(ref) + 1);
        return 0;
    }
    r = ofc_url_parse(base, &tmp);
    if (r) return r;
    if (ref[0] == '/' && ref[1] == '/') { /* scheme-relative: a new authority */
        n = snprintf(out, cap, "%s:%s", tmp.https ? "https" : "http", ref);
        if (n < 0 || (size_t)n >= cap) return OFC_URL_ETOOLONG;
        return ofc_url_parse(out, &tmp);
    }
    alen = (tmp.https ? 8u : 7u);
    alen += strcspn(base + alen, "/?#"); /* "http[s]://" + authority */
    path = base + alen;
    if (ref[0] != '/') {
        /* A relative path replaces the last segment of the base path. */
        size_t plen = strcspn(path, "?#"), i;
        for (i = 0; i < plen; i++)
            if (path[i] == '/') keep = i + 1;
    }
    if (ref[0] != '/' && keep == 0)
        n = snprintf(out, cap, "%.*s/%s", (int)alen, base, ref);
    else
        n = snprintf(out, cap, "%.*s%.*s%s", (int)alen, base, (int)keep, path, ref);
    if (n < 0 || (size_t)n >= cap) return OFC_URL_ETOOLONG;
    return 0;
}

int ofc_url_same_origin(const char *a, const char *b)
{
    ofc_url ua, ub;
    if (ofc_url_parse(a, &ua) || ofc_url_parse(b, &ub)) return 0;
    if (ua.https != ub.https) return 0;
    return ofc_url_same_host_port(a, b);
}

int ofc_url_same_host_port(const char *a, const char *b)
{
    ofc_url ua, ub;
    size_t i;
    if (ofc_url_parse(a, &ua) || ofc_url_parse(b, &ub)) return 0;
    if (ua.port != ub.port || strlen(ua.host) != strlen(ub.host)) return 0;
    for (i = 0; ua.host[i]; i++)
        if (lower((unsigned char)ua.host[i]) != lower((unsigned char)ub.host[i])) return 0;
    return 1;
}

int ofc_url_to_https(const char *url, char *out, size_t cap)
{
    ofc_url u;
    const char *auth, *rest, *host_end;
    int r = ofc_url_parse(url, &u), n;
    if (r) return r;
    if (u.https) {
        if (strlen(url) >= cap) return OFC_URL_ETOOLONG;
        memcpy(out, url, strlen(url) + 1);
        return 0;
    }
    auth = url + 7;
    rest = auth + strcspn(auth, "/?#");
    host_end = auth[0] == '[' ? (const char *)memchr(auth, ']', (size_t)(rest - auth)) : auth;
    /* An absent port stays the one the server listens on for both (80). */
    n = snprintf(out, cap, "https://%.*s%s%s", (int)(rest - auth), auth,
                 memchr(host_end, ':', (size_t)(rest - host_end)) ? "" : ":80", rest);
    if (n < 0 || (size_t)n >= cap) return OFC_URL_ETOOLONG;
    return ofc_url_parse(out, &u);
}
