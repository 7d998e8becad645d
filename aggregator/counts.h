/*
 * Applying a window to the counts in Redis.
 *
 * Each post has a set of the users who like it and a count kept equal to
 * that set's size, so a like can never be counted twice nor a count go
 * below zero. The update runs as one Lua script per chunk of the window,
 * which Redis executes atomically together with a record of the highest
 * offset applied per partition: when a window is read again after a crash
 * or an aborted transaction, the events Redis already holds are skipped.
 *
 * Used by the consumer thread only.
 */
#ifndef AGGREGATOR_COUNTS_H
#define AGGREGATOR_COUNTS_H

#include <stddef.h>

#include "redis.h"
#include "pairs.h"

typedef struct counts counts;

counts *counts_new(lk_redis *redis, const char *topic);
void counts_free(counts *c);

typedef enum counts_result {
    COUNTS_APPLIED = 0,
    COUNTS_FAILED = -1,      /* Redis unreachable or erring: retry later */
    COUNTS_MAINTENANCE = -2, /* likesctl rebuild-redis is at work: retry later */
    COUNTS_NO_STATE = -3,    /* Redis holds no pipeline state: new, or lost */
} counts_result;

/* Applies `n` entries sorted by (partition, offset). On anything but
 * COUNTS_APPLIED the reason is in `why`, and a retry of the same entries is
 * safe, since what was applied is skipped. `*changed_posts` is the number
 * of posts whose count changed. */
counts_result counts_apply(counts *c, const lk_pair *entries, size_t n, size_t *changed_posts,
                           char *why, size_t whylen);

/* Marks Redis as holding the pipeline's state, so that windows apply: for
 * a new Redis of a pipeline that never committed anything, or one whose
 * applied offsets show it kept its data. Returns 0, or -1 when Redis
 * failed. */
int counts_adopt_state(counts *c);

/* Returns 1 when Redis holds applied offsets (likes:applied:*): it kept
 * the data windows wrote. 0 when it holds none, -1 when Redis failed. */
int counts_has_applied_offsets(counts *c);

#endif
