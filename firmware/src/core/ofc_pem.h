/* ofc_pem.h - fingerprints of a CA certificate given as PEM.
 *
 * Why it exists: the client trusts the otafleet server's CA by its SHA-256
 * fingerprint (over the certificate's DER bytes), as the server advertises it
 * in mDNS (TXT ca=<64 hex>) and shows it in Settings (AA:BB:... form). The
 * PEM's base64 is decoded straight into the hash, so no DER buffer is needed.
 */
#ifndef OFC_PEM_H
#define OFC_PEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OFC_FP_HEX 65   /* 64 lower-case hex digits and a NUL */
#define OFC_FP_COLON 96 /* "AB:CD:...": 32 pairs, 31 colons and a NUL */

/* SHA-256 of the DER of the first "CERTIFICATE" block in `pem` as lower-case
 * hex. Returns 0, or -1 when there is no well-formed block. */
int ofc_pem_cert_sha256_hex(const char *pem, char out[OFC_FP_HEX]);

/* A fingerprint as written by a person or a server (64 hex digits, any case,
 * optionally separated by ':' or spaces) into 64 lower-case hex digits.
 * Returns 0, or -1 when it is not one. */
int ofc_fingerprint_normalize(const char *in, char out[OFC_FP_HEX]);

/* 64 hex digits into the "AB:CD:..." form otafleet shows. */
void ofc_fingerprint_colon(const char *hex, char out[OFC_FP_COLON]);

#ifdef __cplusplus
}
#endif

#endif /* OFC_PEM_H */
