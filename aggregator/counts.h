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

/* Applies `n` entries sorted by (partition, offset). Returns 0 once all
 * are in Redis, or -1 when Redis failed; a retry of the same entries is
 * then safe, since what was applied is skipped. `*changed_posts` is the
 * number of posts whose count changed. */
int counts_apply(counts *c, const lk_pair *entries, size_t n, size_t *changed_posts);

#endif
