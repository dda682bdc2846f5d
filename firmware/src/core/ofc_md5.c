/* ofc_md5.c - MD5 (RFC 1321) for checking a download against the offer's md5.
 *
 * MD5 is no security measure here (SHA-256 is); it is a second, independent
 * check that matches what stock Arduino HTTPUpdate devices verify. Written
 * for this project from the RFC; checked against its test suite.
 */
#include "ofc_hash.h"

#include <string.h>

static const uint32_t T[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

static const uint8_t S[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                              5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                              4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                              6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void compress(uint32_t s[4], const uint8_t b[64])
{
    uint32_t m[16], a = s[0], bb = s[1], c = s[2], d = s[3];
    int i;
    for (i = 0; i < 16; i++)
        m[i] = (uint32_t)b[4 * i] | ((uint32_t)b[4 * i + 1] << 8) |
               ((uint32_t)b[4 * i + 2] << 16) | ((uint32_t)b[4 * i + 3] << 24);
    for (i = 0; i < 64; i++) {
        uint32_t f, t;
        int g;
        if (i < 16) { f = (bb & c) | (~bb & d); g = i; }
        else if (i < 32) { f = (d & bb) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = bb ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (bb | ~d); g = (7 * i) % 16; }
        t = a + f + T[i] + m[g];
        a = d;
        d = c;
        c = bb;
        bb = bb + ((t << S[i]) | (t >> (32 - S[i])));
    }
    s[0] += a; s[1] += bb; s[2] += c; s[3] += d;
}

void ofc_md5_init(ofc_md5 *c)
{
    c->state[0] = 0x67452301;
    c->state[1] = 0xefcdab89;
    c->state[2] = 0x98badcfe;
    c->state[3] = 0x10325476;
    c->bytes = 0;
    c->fill = 0;
}

void ofc_md5_update(ofc_md5 *c, const uint8_t *data, size_t len)
{
    c->bytes += len;
    while (len > 0) {
        size_t take = 64 - c->fill;
        if (take > len) take = len;
        memcpy(c->block + c->fill, data, take);
        c->fill += take;
        data += take;
        len -= take;
        if (c->fill == 64) {
            compress(c->state, c->block);
            c->fill = 0;
        }
    }
}

void ofc_md5_final(ofc_md5 *c, uint8_t out[16])
{
    uint64_t bits = c->bytes * 8;
    int i;
    c->block[c->fill++] = 0x80;
    if (c->fill > 56) {
        memset(c->block + c->fill, 0, 64 - c->fill);
        compress(c->state, c->block);
        c->fill = 0;
    }
    memset(c->block + c->fill, 0, 56 - c->fill);
    for (i = 0; i < 8; i++) c->block[56 + i] = (uint8_t)(bits >> (8 * i));
    compress(c->state, c->block);
    for (i = 0; i < 4; i++) {
        out[4 * i] = (uint8_t)c->state[i];
        out[4 * i + 1] = (uint8_t)(c->state[i] >> 8);
        out[4 * i + 2] = (uint8_t)(c->state[i] >> 16);
        out[4 * i + 3] = (uint8_t)(c->state[i] >> 24);
    }
}
