/*
 * Exponential backoff: the base delay starts at min_ms, doubles, stops at
 * max_ms and starts over after a reset; each returned delay is the base
 * plus or minus a quarter of it at most.
 */
#include <stdlib.h>
#include <time.h>

#include "backoff.h"
#include "check.h"

/* Calls lk_backoff_next and checks the base delay it moved to and the
 * returned delay against it: within [base - base/4, base + base/4]. */
static void expect_next(lk_backoff *backoff, int base)
{
    int delay = lk_backoff_next(backoff);

    CHECK_INT_EQ(base, backoff->current_ms);
    CHECK_INT_RANGE(base - base / 4, base + base / 4, delay);
}

static void test_init(void)
{
    lk_backoff backoff;

    lk_backoff_init(&backoff, 100, 1000);
    CHECK_INT_EQ(100, backoff.min_ms);
    CHECK_INT_EQ(1000, backoff.max_ms);
    CHECK_INT_EQ(0, backoff.current_ms);
}

static void test_doubling_to_cap(void)
{
    static const int bases[] = {100, 200, 400, 800, 1000, 1000, 1000};
    lk_backoff backoff;

    srand(1);
    lk_backoff_init(&backoff, 100, 1000);
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        expect_next(&backoff, bases[i]);
        if (check_failed)
            return;
    }
}

static void test_cap_not_a_power_of_two(void)
{
    /* 300, 600, then 1200 would pass the cap: 1000 instead. */
    static const int bases[] = {300, 600, 1000, 1000};
    lk_backoff backoff;

    srand(2);
    lk_backoff_init(&backoff, 300, 1000);
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        expect_next(&backoff, bases[i]);
        if (check_failed)
            return;
    }
}

static void test_small_delays_exact(void)
{
    /* Below 4 ms a quarter rounds down to nothing: the delay is exact. */
    lk_backoff backoff;

    lk_backoff_init(&backoff, 1, 8);
    CHECK_INT_EQ(1, lk_backoff_next(&backoff));
    CHECK_INT_EQ(2, lk_backoff_next(&backoff));
    expect_next(&backoff, 4);
    if (check_failed)
        return;
    expect_next(&backoff, 8);
}

static void test_jitter_spread(void)
{
    /* At a base of 1000 the delay is uniform over 750..1250: over 100000
     * draws every delay stays inside and both ends are reached. */
    lk_backoff backoff;
    int lowest = 1000000, highest = -1;
    long long sum = 0;

    srand(3);
    lk_backoff_init(&backoff, 1000, 1000);
    for (int i = 0; i < 100000; i++) {
        int delay = lk_backoff_next(&backoff);
        lowest = delay < lowest ? delay : lowest;
        highest = delay > highest ? delay : highest;
        sum += delay;
    }

    CHECK_INT_EQ(750, lowest);
    CHECK_INT_EQ(1250, highest);
    /* The mean of 100000 uniform draws is 1000 within 2 ms (about 4.4
     * standard deviations); the base itself carries no bias. */
    CHECK_INT_RANGE(998, 1002, sum / 100000);
}

static void test_reset(void)
{
    lk_backoff backoff;

    srand(4);
    lk_backoff_init(&backoff, 100, 1000);
    for (int i = 0; i < 6; i++)
        lk_backoff_next(&backoff);
    CHECK_INT_EQ(1000, backoff.current_ms);

    lk_backoff_reset(&backoff);
    CHECK_INT_EQ(0, backoff.current_ms);
    expect_next(&backoff, 100);
    if (check_failed)
        return;
    expect_next(&backoff, 200);
}

static long long elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000LL + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void test_sleep(void)
{
    struct timespec start;
    volatile sig_atomic_t stop = 0;

    clock_gettime(CLOCK_MONOTONIC, &start);
    /* The upper bounds only tell a sleep from a hang: a loaded machine may
     * run the test late, never early. */
    lk_sleep_ms(120, &stop);
    CHECK_INT_RANGE(120, 5000, elapsed_ms(&start));

    clock_gettime(CLOCK_MONOTONIC, &start);
    lk_sleep_ms(70, NULL);
    CHECK_INT_RANGE(70, 5000, elapsed_ms(&start));
}

static void test_sleep_stopped(void)
{
    struct timespec start;
    volatile sig_atomic_t stop = 1;

    clock_gettime(CLOCK_MONOTONIC, &start);
    lk_sleep_ms(10000, &stop);
    CHECK_INT_RANGE(0, 1000, elapsed_ms(&start));

    clock_gettime(CLOCK_MONOTONIC, &start);
    lk_sleep_ms(0, NULL);
    lk_sleep_ms(-5, NULL);
    CHECK_INT_RANGE(0, 1000, elapsed_ms(&start));
}

int main(void)
{
    static const check_case cases[] = {
        {"init sets the bounds and no delay yet", test_init},
        {"delays double from min to the cap", test_doubling_to_cap},
        {"doubling stops at a cap that is no power of two", test_cap_not_a_power_of_two},
        {"delays under 4 ms carry no jitter", test_small_delays_exact},
        {"jitter stays within a quarter and reaches both ends", test_jitter_spread},
        {"reset starts again from min", test_reset},
        {"lk_sleep_ms sleeps at least the time asked", test_sleep},
        {"lk_sleep_ms returns at once when stopped", test_sleep_stopped},
    };
    return CHECK_RUN(cases);
}
