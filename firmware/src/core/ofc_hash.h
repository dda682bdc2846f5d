/* ofc_hash.h - streaming SHA-256 and MD5 for verifying a download.
 *
 * Why it exists: the image is hashed while it streams into the OTA slot and
 * compared with the server's offer before the slot is made bootable. On ESP32
 * builds (ESP_PLATFORM defined, unless OFC_HASH_SOFT is) SHA-256 goes through
 * mbedtls, which uses the hardware accelerator; everywhere else, and for MD5,
 * the small software implementations in ofc_sha256.c / ofc_md5.c are used.
 */
#ifndef OFC_HASH_H
#define OFC_HASH_H

#include <stddef.h>
#include <stdint.h>

#if defined(ESP_PLATFORM) && !defined(OFC_HASH_SOFT)
#define OFC_SHA256_MBEDTLS 1
#include "mbedtls/sha256.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ofc_sha256 {
#ifdef OFC_SHA256_MBEDTLS
    mbedtls_sha256_context mb;
#else
    uint32_t state[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
#endif
} ofc_sha256;

void ofc_sha256_init(ofc_sha256 *c);
void ofc_sha256_update(ofc_sha256 *c, const uint8_t *data, size_t len);
void ofc_sha256_final(ofc_sha256 *c, uint8_t out[32]);

typedef struct ofc_md5 {
    uint32_t state[4];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} ofc_md5;

void ofc_md5_init(ofc_md5 *c);
void ofc_md5_update(ofc_md5 *c, const uint8_t *data, size_t len);
void ofc_md5_final(ofc_md5 *c, uint8_t out[16]);

/* Lower-case hex of `n` bytes into out (2n+1 bytes, NUL-terminated). */
void ofc_hex(const uint8_t *bytes, size_t n, char *out);

#ifdef __cplusplus
}
#endif

#endif /* OFC_HASH_H */
