/* test_hash.c - SHA-256 (FIPS 180-4 vectors) and MD5 (RFC 1321 suite),
 * one-shot and streamed in uneven pieces, as the download does. */
#include <stdint.h>

#include "../../src/core/ofc_hash.h"
#include "check.h"

static void sha_hex(const char *msg, size_t len, char out[65])
{
    ofc_sha256 c;
    uint8_t d[32];
    ofc_sha256_init(&c);
    ofc_sha256_update(&c, (const uint8_t *)msg, len);
    ofc_sha256_final(&c, d);
    ofc_hex(d, 32, out);
}

static void md5_hex(const char *msg, char out[33])
{
    ofc_md5 c;
    uint8_t d[16];
    ofc_md5_init(&c);
    ofc_md5_update(&c, (const uint8_t *)msg, strlen(msg));
    ofc_md5_final(&c, d);
    ofc_hex(d, 16, out);
}

static void test_sha256_vectors(void)
{
    char h[65];
    sha_hex("", 0, h);
    CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, h);
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
    CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
            "qrsmnopqrstnopqrstu", 112, h);
    CHECK_STR(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_sha256_million_a_streamed(void)
{
    static char chunk[997];
    ofc_sha256 c;
    uint8_t d[32];
    char h[65];
    size_t left = 1000000;
    memset(chunk, 'a', sizeof chunk);
    ofc_sha256_init(&c);
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        ofc_sha256_update(&c, (const uint8_t *)chunk, n);
        left -= n;
    }
    ofc_sha256_final(&c, d);
    ofc_hex(d, 32, h);
    CHECK_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_sha256_chunking_equivalence(void)
{
    uint8_t data[300], a[32], b[32];
    size_t i, step;
    for (i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + 3);
    for (step = 1; step < 130; step += 7) {
        ofc_sha256 c1, c2;
        ofc_sha256_init(&c1);
        ofc_sha256_update(&c1, data, sizeof data);
        ofc_sha256_final(&c1, a);
        ofc_sha256_init(&c2);
        for (i = 0; i < sizeof data; i += step)
            ofc_sha256_update(&c2, data + i, (sizeof data - i) < step ? sizeof data - i : step);
        ofc_sha256_final(&c2, b);
        CHECK(memcmp(a, b, 32) == 0);
    }
}

static void test_md5_vectors(void)
{
    char h[33];
    md5_hex("", h);
    CHECK_STR(h, "d41d8cd98f00b204e9800998ecf8427e");
    md5_hex("a", h);
    CHECK_STR(h, "0cc175b9c0f1b6a831c399e269772661");
    md5_hex("abc", h);
    CHECK_STR(h, "900150983cd24fb0d6963f7d28e17f72");
    md5_hex("message digest", h);
    CHECK_STR(h, "f96b697d7cb7938d525a2f31aaf161d0");
    md5_hex("abcdefghijklmnopqrstuvwxyz", h);
    CHECK_STR(h, "c3fcd3d76192e4007dfb496cca67e13b");
    md5_hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", h);
    CHECK_STR(h, "d174ab98d277d9f5a5611c2c9f419d9f");
    md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890", h);
    CHECK_STR(h, "57edf4a22be3c955ac49da2e2107b67a");
}

void suite_hash(void)
{
    RUN(test_sha256_vectors);
    RUN(test_sha256_million_a_streamed);
    RUN(test_sha256_chunking_equivalence);
    RUN(test_md5_vectors);
}
