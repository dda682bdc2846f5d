/* ofc_pem.c - PEM certificate fingerprints; see ofc_pem.h. */
#include "ofc_pem.h"

#include <string.h>

#include "ofc_hash.h"

static int b64(int ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

int ofc_pem_cert_sha256_hex(const char *pem, char out[OFC_FP_HEX])
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    const char *p, *stop;
    ofc_sha256 sha;
    uint8_t digest[32], byte;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t total = 0;
    if (pem == NULL || (p = strstr(pem, begin)) == NULL) return -1;
    p += sizeof begin - 1;
    if ((stop = strstr(p, end)) == NULL) return -1;
    ofc_sha256_init(&sha);
    for (; p < stop; p++) {
        int v;
        if (*p == '\r' || *p == '\n' || *p == ' ' || *p == '\t') continue;
        if (*p == '=') {
            pad++;
            continue;
        }
        v = b64((unsigned char)*p);
        if (v < 0 || pad) { /* not base64, or data after the padding */
            ofc_sha256_final(&sha, digest);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            byte = (uint8_t)(acc >> bits);
            ofc_sha256_update(&sha, &byte, 1);
            total++;
        }
    }
    ofc_sha256_final(&sha, digest);
    if (total == 0 || pad > 2) return -1;
    ofc_hex(digest, 32, out);
    return 0;
}

int ofc_fingerprint_normalize(const char *in, char out[OFC_FP_HEX])
{
    size_t n = 0;
    if (in == NULL) return -1;
    for (; *in; in++) {
        char ch = *in;
        if (ch == ':' || ch == ' ') continue;
        if (ch >= 'A' && ch <= 'F') ch = (char)(ch + 32);
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) || n >= 64) return -1;
        out[n++] = ch;
    }
    out[n] = '\0';
    return n == 64 ? 0 : -1;
}

void ofc_fingerprint_colon(const char *hex, char out[OFC_FP_COLON])
{
    size_t i, o = 0;
    for (i = 0; i < 64 && hex[i] && hex[i + 1]; i += 2) {
        if (o) out[o++] = ':';
        out[o++] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
        out[o++] = (char)(hex[i + 1] >= 'a' && hex[i + 1] <= 'f' ? hex[i + 1] - 32 : hex[i + 1]);
    }
    out[o] = '\0';
}
