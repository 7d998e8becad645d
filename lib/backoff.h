/*
 * Exponential backoff with jitter for retrying a dependency that is down.
 */
#ifndef LK_BACKOFF_H
#define LK_BACKOFF_H

#include <signal.h>
#include <stdint.h>

typedef struct lk_backoff {
    int min_ms;
    int max_ms;
    int current_ms;
} lk_backoff;

void lk_backoff_init(lk_backoff *backoff, int min_ms, int max_ms);

/* Returns the next delay in ms: doubling from min_ms up to max_ms, each
 * with up to a quarter of random jitter. */
int lk_backoff_next(lk_backoff *backoff);

void lk_backoff_reset(lk_backoff *backoff);

/* Milliseconds on the monotonic clock, for deadlines. */
int64_t lk_monotonic_ms(void);

/* Sleeps for `ms` milliseconds unless `*stop` becomes set, checking it
 * every 50 ms. `stop` may be NULL. */
void lk_sleep_ms(int ms, volatile sig_atomic_t *stop);

#endif
