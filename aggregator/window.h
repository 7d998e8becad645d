/*
 * One aggregation window: the last action of each (post, user) pair seen
 * since the window opened, with the Kafka position it came from.
 *
 * Collapsing to the last action is what makes a window's effect the same
 * however many times an event was delivered: like, unlike, like from one
 * user on one post in a window is one like; like, like is one like.
 *
 * Used by the consumer thread only.
 */
#ifndef AGGREGATOR_WINDOW_H
#define AGGREGATOR_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

typedef struct window_entry {
    int64_t post_id;
    int64_t user_id;
    lk_action action;
    int32_t partition;
    int64_t offset; /* of the event that set `action` */
} window_entry;

typedef struct window window;

window *window_new(void);
void window_free(window *w);

/* Records an event read at (partition, offset); a later event for the same
 * pair replaces the earlier one. Returns 0, or -1 when out of memory. */
int window_add(window *w, const lk_like_event *ev, int32_t partition, int64_t offset);

/* Number of distinct (post, user) pairs. */
size_t window_size(const window *w);

/* Returns the entries sorted by (partition, offset), valid until the next
 * call that changes the window. Returns NULL when out of memory. */
const window_entry *window_sorted(window *w);

/* Empties the window, keeping its memory for the next one. */
void window_clear(window *w);

#endif
