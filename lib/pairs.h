/*
 * The last action of each (post, user) pair in a batch of events, with the
 * Kafka position it came from: the aggregator's window and the persister's
 * batch are both one of these.
 *
 * Collapsing to the last action is what makes a batch's effect the same
 * however many times an event was delivered: like, unlike, like from one
 * user on one post is one like; like, like is one like.
 *
 * A set is used by one thread at a time.
 */
#ifndef LK_PAIRS_H
#define LK_PAIRS_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

typedef struct lk_pair {
    int64_t post_id;
    int64_t user_id;
    lk_action action;
    int32_t partition;
    int64_t offset; /* of the event that set `action` */
} lk_pair;

typedef struct lk_pairs lk_pairs;

lk_pairs *lk_pairs_new(void);
void lk_pairs_free(lk_pairs *pairs);

/* Records an event read at (partition, offset); a later event for the same
 * pair replaces the earlier one. Returns 0, or -1 when out of memory. */
int lk_pairs_set(lk_pairs *pairs, const lk_like_event *ev, int32_t partition, int64_t offset);

/* Number of distinct (post, user) pairs. */
size_t lk_pairs_count(const lk_pairs *pairs);

/* Returns the entries sorted by (partition, offset), valid until the next
 * call that changes the set. Returns NULL when out of memory. */
const lk_pair *lk_pairs_sorted(lk_pairs *pairs);

/* Empties the set, keeping its memory for the next one. */
void lk_pairs_clear(lk_pairs *pairs);

#endif
