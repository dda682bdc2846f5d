/* ofc_backoff.c - back-off and jitter; the policy is described in ofc_backoff.h. */
#include "ofc_backoff.h"

/* A uniform draw from [0, n] without modulo bias worth caring about: the
 * 64-bit product maps a 32-bit random value onto the range. */
static uint32_t draw(ofc_rng_fn rng, void *ctx, uint32_t n)
{
    uint64_t r = rng ? rng(ctx) : 0;
    return (uint32_t)((r * ((uint64_t)n + 1)) >> 32);
}

void ofc_backoff_init(ofc_backoff *b, uint32_t base_ms, uint32_t max_ms, ofc_rng_fn rng, void *rng_ctx)
{
    b->base_ms = base_ms ? base_ms : 1;
    b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
    b->attempt = 0;
    b->rng = rng;
    b->rng_ctx = rng_ctx;
}

uint32_t ofc_backoff_next(ofc_backoff *b)
{
    uint64_t ceiling = b->base_ms;
    uint32_t i, half;
    for (i = 0; i < b->attempt && ceiling < b->max_ms; i++) ceiling *= 2;
    if (ceiling > b->max_ms) ceiling = b->max_ms;
    if (b->attempt < 64) b->attempt++;
    half = (uint32_t)(ceiling / 2);
    return half + draw(b->rng, b->rng_ctx, (uint32_t)ceiling - half);
}

void ofc_backoff_reset(ofc_backoff *b)
{
    b->attempt = 0;
}

uint32_t ofc_jitter(uint32_t value, uint32_t pct, ofc_rng_fn rng, void *rng_ctx)
{
    uint64_t spread;
    if (pct > 100) pct = 100;
    spread = (uint64_t)value * pct / 100;
    /* value - spread + draw(2 * spread) lies in [value - spread, value + spread] */
    {
        uint64_t v = (uint64_t)value - spread + draw(rng, rng_ctx, (uint32_t)(spread * 2 > 0xFFFFFFFFu ? 0xFFFFFFFFu : spread * 2));
        return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)v;
    }
}
