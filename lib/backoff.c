#include "backoff.h"

#include <stdlib.h>
#include <time.h>

void lk_backoff_init(lk_backoff *backoff, int min_ms, int max_ms)
{
    backoff->min_ms = min_ms;
    backoff->max_ms = max_ms;
    backoff->current_ms = 0;
}

int lk_backoff_next(lk_backoff *backoff)
{
    if (backoff->current_ms == 0)
        backoff->current_ms = backoff->min_ms;
    else if (backoff->current_ms < backoff->max_ms / 2)
        backoff->current_ms *= 2;
    else
        backoff->current_ms = backoff->max_ms;

    /* Jitter spreads the retries of many processes that lost the same
     * dependency at the same moment. rand() is good enough for that. */
    int jitter = backoff->current_ms / 4;
    return backoff->current_ms - jitter + (jitter > 0 ? rand() % (2 * jitter + 1) : 0);
}

void lk_backoff_reset(lk_backoff *backoff)
{
    backoff->current_ms = 0;
}

void lk_sleep_ms(int ms, volatile sig_atomic_t *stop)
{
    while (ms > 0 && (stop == NULL || !*stop)) {
        int step = ms < 50 ? ms : 50;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        nanosleep(&pause, NULL);
        ms -= step;
    }
}

int64_t lk_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
