/* ofc_backoff.h - exponential back-off with jitter, and interval jitter.
 *
 * Why it exists: when the server is away, a whole fleet must not retry in
 * lock-step (and must not hammer it once it is back). Delays grow
 * exponentially up to a cap and are spread with "equal jitter": a delay is
 * uniformly drawn from [ceiling/2, ceiling]. The random source is injected so
 * tests are deterministic and devices can use their hardware RNG.
 */
#ifndef OFC_BACKOFF_H
#define OFC_BACKOFF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t (*ofc_rng_fn)(void *ctx);

typedef struct ofc_backoff {
    uint32_t base_ms;
    uint32_t max_ms;
    uint32_t attempt; /* failures since the last reset */
    ofc_rng_fn rng;
    void *rng_ctx;
} ofc_backoff;

void ofc_backoff_init(ofc_backoff *b, uint32_t base_ms, uint32_t max_ms, ofc_rng_fn rng, void *rng_ctx);

/* The delay before the next attempt (grows with every call until reset). */
uint32_t ofc_backoff_next(ofc_backoff *b);

/* Back to the first delay (after a success). */
void ofc_backoff_reset(ofc_backoff *b);

/* `value` spread uniformly over value +/- pct percent (pct <= 100). */
uint32_t ofc_jitter(uint32_t value, uint32_t pct, ofc_rng_fn rng, void *rng_ctx);

#ifdef __cplusplus
}
#endif

#endif /* OFC_BACKOFF_H */
