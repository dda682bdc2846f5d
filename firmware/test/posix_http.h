/* posix_http.h - a minimal HTTP/1.1 client over POSIX sockets.
 *
 * Why it exists: the host device must talk to a real `otafleet serve` the
 * way an ESP32's HTTPClient does: one request per connection
 * (Connection: close), request bodies with Content-Length, responses read by
 * Content-Length (or chunked, or until close), the body streamed to a sink in
 * small pieces; timeouts on every socket operation. https:// goes through
 * mbedTLS 2.28 (Debian's libmbedtls-dev, the TLS library of ESP-IDF 4.x),
 * verifying the server against the given CA only: chain and host name
 * (for an IP address, the certificate's DNS:<ip> name; mbedTLS 2.x does not
 * read IP SANs), as WiFiClientSecure::setCACert does on the device.
 */
#ifndef POSIX_HTTP_H
#define POSIX_HTTP_H

#include <stddef.h>

#include "../src/core/ofc_platform.h"

typedef struct posix_http_headers {
    char x_sha256[80]; /* the response's x-SHA256 header, "" if absent */
    char x_md5[80];    /* the response's x-MD5 header, "" if absent */
} posix_http_headers;

/* Perform one request. `body` may be NULL. `ca_pem` is the CA an https://
 * server must chain to (NULL: https:// is refused). The response body goes to `sink`
 * in pieces of at most `chunk` bytes. Returns the HTTP status once the whole
 * body was delivered, OFC_HTTP_EABORTED if the sink stopped, or another
 * negative value on a transport or protocol error (message on stderr). */
int posix_http_request(const char *method, const char *url, const char *bearer, const char *body,
                       size_t body_len, const ofc_body_sink *sink, size_t chunk, int timeout_ms,
                       posix_http_headers *headers, const char *ca_pem);

#endif /* POSIX_HTTP_H */
