/* host_image.c - image identity and verification for the host device; see
 * host_image.h. Layouts as in ESP-IDF esp_app_format.h / esp_app_desc.h. */
#include "host_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/ofc_hash.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static const char *chip_name(unsigned id)
{
    switch (id) {
    case 0: return "esp32";
    case 2: return "esp32s2";
    case 5: return "esp32c3";
    case 9: return "esp32s3";
    case 12: return "esp32c2";
    case 13: return "esp32c6";
    case 16: return "esp32h2";
    case 18: return "esp32p4";
    case 20: return "esp32c61";
    case 23: return "esp32c5";
    default: return "unknown";
    }
}

/* End of the checksummed part (checksum byte included), or 0 if malformed. */
static size_t image_body_end(const uint8_t *d, size_t len, uint8_t *checksum)
{
    size_t off = 24, i;
    unsigned seg;
    uint8_t x = 0xEF;
    if (len < 24 || d[0] != 0xE9 || d[1] == 0 || d[1] > 16) return 0;
    for (seg = 0; seg < d[1]; seg++) {
        uint32_t n;
        if (off + 8 > len) return 0;
        n = le32(d + off + 4);
        off += 8;
        if (n > len - off) return 0;
        for (i = 0; i < n; i++) x ^= d[off + i];
        off += n;
    }
    off = (off + 1 + 15) & ~(size_t)15;
    if (off > len) return 0;
    *checksum = x;
    return off;
}

int host_image_verify(const uint8_t *data, size_t len, char *why, size_t why_cap)
{
    uint8_t x, digest[32];
    size_t end = image_body_end(data, len, &x);
    ofc_sha256 s;
    if (end == 0) {
        snprintf(why, why_cap, "not an app image (bad header or segments)");
        return -1;
    }
    if (data[end - 1] != x) {
        snprintf(why, why_cap, "checksum mismatch");
        return -1;
    }
    if (data[23] == 1) {
        if (end + 32 > len) {
            snprintf(why, why_cap, "appended SHA-256 missing");
            return -1;
        }
        ofc_sha256_init(&s);
        ofc_sha256_update(&s, data, end);
        ofc_sha256_final(&s, digest);
        if (memcmp(digest, data + end, 32) != 0) {
            snprintf(why, why_cap, "appended SHA-256 mismatch");
            return -1;
        }
    }
    return 0;
}

int host_image_read(const char *path, host_image *out)
{
    FILE *f = fopen(path, "rb");
    uint8_t *d = NULL, x, digest[32];
    long len;
    size_t end;
    ofc_sha256 s;
    char why[80];
    memset(out, 0, sizeof *out);
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "hostdevice: cannot read %s\n", path);
        if (f) fclose(f);
        return -1;
    }
    d = malloc((size_t)len + 1);
    if (d == NULL || fread(d, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(d);
        return -1;
    }
    fclose(f);
    out->size = (size_t)len;
    if (host_image_verify(d, (size_t)len, why, sizeof why) != 0 || len < 32 + 256 ||
        le32(d + 32) != 0xABCD5432u) {
        fprintf(stderr, "hostdevice: %s is not a valid app image (%s)\n", path, why);
        free(d);
        return -1;
    }
    snprintf(out->chip, sizeof out->chip, "%s", chip_name((unsigned)(d[12] | (d[13] << 8))));
    snprintf(out->version, sizeof out->version, "%.31s", (const char *)d + 32 + 16);
    snprintf(out->project, sizeof out->project, "%.31s", (const char *)d + 32 + 48);
    ofc_sha256_init(&s);
    ofc_sha256_update(&s, d, (size_t)len);
    ofc_sha256_final(&s, digest);
    ofc_hex(digest, 32, out->file_sha256);
    /* esp_partition_get_sha256: the appended digest when hash_appended=1,
     * otherwise the SHA-256 of the image. */
    end = image_body_end(d, (size_t)len, &x);
    if (d[23] == 1)
        ofc_hex(d + end, 32, out->sha256);
    else
        memcpy(out->sha256, out->file_sha256, sizeof out->sha256);
    free(d);
    return 0;
}
