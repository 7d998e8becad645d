/*
 * The two kinds of message the pipeline carries, as JSON that reads well in
 * kafka-console-consumer.
 *
 * A like event, on topic `likes`, keyed by the decimal post id:
 *   {"type":"like","user_id":17,"post_id":3,"ts":1764864000123}
 * `type` is "like" or "unlike"; `ts` is when ingest accepted it (ms since
 * the epoch), for people reading the topic: ordering comes from offsets.
 *
 * A delta, on topic `like-deltas`, keyed by the decimal post id, written by
 * the aggregator once per post per window:
 *   {"post_id":3,"liked":[17,18],"unliked":[4]}
 * `liked` holds the users whose last action in the window was a like,
 * `unliked` those whose last action was an unlike. Applying a delta twice
 * leaves the same state as applying it once.
 */
#ifndef LK_EVENT_H
#define LK_EVENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum lk_action {
    LK_ACTION_LIKE = 1,
    LK_ACTION_UNLIKE = 2,
} lk_action;

typedef struct lk_like_event {
    lk_action action;
    int64_t user_id;
    int64_t post_id;
    int64_t ts_ms;
} lk_like_event;

/* Longest encoded like event, terminating NUL included. */
#define LK_EVENT_MAX_LEN 128

/* Writes the event as JSON into `buf`. Returns its length (without NUL) or
 * -1 when `buf` is too small or the event is invalid. */
int lk_event_encode(const lk_like_event *ev, char *buf, size_t buflen);

/* Parses an event. Returns 0, or -1 with the reason in `err` for anything
 * that is not exactly a valid event (ids must be positive integers). */
int lk_event_decode(const char *buf, size_t len, lk_like_event *ev, char *err, size_t errlen);

/* Writes the decimal post id used as the message key; returns its length. */
int lk_event_key(int64_t post_id, char *buf, size_t buflen);

typedef struct lk_delta {
    int64_t post_id;
    int64_t *liked;
    size_t liked_count;
    int64_t *unliked;
    size_t unliked_count;
} lk_delta;

/* Encodes a delta. Returns a NUL-terminated string the caller frees with
 * free(), and its length in `*len`; NULL when out of memory. */
char *lk_delta_encode(const lk_delta *delta, size_t *len);

/* Parses a delta into `out`, whose arrays are then owned by the caller and
 * released with lk_delta_clear(). Returns 0, or -1 with `err` set and
 * nothing to release. */
int lk_delta_decode(const char *buf, size_t len, lk_delta *out, char *err, size_t errlen);

void lk_delta_clear(lk_delta *delta);

#endif
