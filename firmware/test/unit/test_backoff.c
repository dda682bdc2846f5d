/* test_backoff.c - exponential back-off with equal jitter, and interval
 * jitter, driven by injected random sources. */
#include <stdint.h>

#include "../../src/core/ofc_backoff.h"
#include "check.h"

static uint32_t rng_zero(void *ctx) { (void)ctx; return 0; }
static uint32_t rng_max(void *ctx) { (void)ctx; return 0xFFFFFFFFu; }
static uint32_t rng_lcg(void *ctx)
{
    uint32_t *s = (uint32_t *)ctx;
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static void test_growth_and_cap(void)
{
    ofc_backoff lo, hi;
    uint32_t expect = 2000;
    int i;
    ofc_backoff_init(&lo, 2000, 60000, rng_zero, NULL);
    ofc_backoff_init(&hi, 2000, 60000, rng_max, NULL);
    for (i = 0; i < 10; i++) {
        uint32_t a = ofc_backoff_next(&lo), b = ofc_backoff_next(&hi);
        CHECK_INT(a, expect / 2); /* lowest draw: half the ceiling */
        CHECK_INT(b, expect);     /* highest draw: the ceiling */
        expect = expect * 2 > 60000 ? 60000 : expect * 2;
    }
    ofc_backoff_reset(&lo);
    CHECK_INT(ofc_backoff_next(&lo), 1000);
}

static void test_random_within_bounds_and_spread(void)
{
    ofc_backoff b;
    uint32_t seed = 1, min = 0xFFFFFFFFu, max = 0;
    int i;
    ofc_backoff_init(&b, 1000, 8000, rng_lcg, &seed);
    for (i = 0; i < 2000; i++) {
        uint32_t d;
        b.attempt = 3; /* ceiling 8000 */
        d = ofc_backoff_next(&b);
        CHECK(d >= 4000 && d <= 8000);
        if (d < min) min = d;
        if (d > max) max = d;
    }
    CHECK(max - min > 3000); /* actually jittered, not one value */
}

static void test_many_failures_no_overflow(void)
{
    ofc_backoff b;
    int i;
    uint32_t d = 0;
    ofc_backoff_init(&b, 0xF0000000u, 0xFFFFFFFFu, rng_max, NULL);
    for (i = 0; i < 200; i++) d = ofc_backoff_next(&b);
    CHECK(d == 0xFFFFFFFFu);
    ofc_backoff_init(&b, 0, 0, rng_max, NULL); /* degenerate config still sane */
    CHECK(ofc_backoff_next(&b) >= 1);
    ofc_backoff_init(&b, 500, 100, NULL, NULL); /* max below base; no rng */
    CHECK_INT(ofc_backoff_next(&b), 250);
}

static void test_interval_jitter(void)
{
    uint32_t seed = 7;
    int i;
    CHECK_INT(ofc_jitter(60000, 10, rng_zero, NULL), 54000);
    CHECK_INT(ofc_jitter(60000, 10, rng_max, NULL), 66000);
    CHECK_INT(ofc_jitter(60000, 0, rng_max, NULL), 60000);
    CHECK_INT(ofc_jitter(0xFFFFFFFFu, 100, rng_max, NULL), 0xFFFFFFFFu);
    for (i = 0; i < 1000; i++) {
        uint32_t v = ofc_jitter(1000, 10, rng_lcg, &seed);
        CHECK(v >= 900 && v <= 1100);
    }
}

void suite_backoff(void)
{
    RUN(test_growth_and_cap);
    RUN(test_random_within_bounds_and_spread);
    RUN(test_many_failures_no_overflow);
    RUN(test_interval_jitter);
}
