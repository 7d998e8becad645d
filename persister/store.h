/*
 * The persister's PostgreSQL side: who likes what, a count per post, and
 * the next offset to read per partition of the deltas topic, all written in
 * one transaction so that a batch is applied exactly when its offsets
 * advance.
 *
 * Used by the consumer thread only.
 */
#ifndef PERSISTER_STORE_H
#define PERSISTER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "pairs.h"
#include "pg.h"

/* No offset stored yet for a partition. */
#define STORE_NO_OFFSET (-1)

typedef struct store_position {
    int32_t partition;
    int64_t stored;      /* what this member believes the table holds */
    int64_t next_offset; /* what the batch moves it to */
} store_position;

typedef struct store store;

store *store_new(lk_pg *pg, const char *group, const char *topic);
void store_free(store *s);

/* Reads the stored next offsets of `count` partitions into `offsets`
 * (STORE_NO_OFFSET where none is stored). Returns 0, or -1 when PostgreSQL
 * failed. */
int store_load_offsets(store *s, const int32_t *partitions, int64_t *offsets, size_t count);

typedef enum store_result {
    STORE_COMMITTED = 0,
    STORE_FAILED = -1, /* PostgreSQL failed; retrying the batch is safe */
    STORE_FENCED = -2, /* another member moved an offset: drop the batch */
} store_result;

/* Applies the pairs and moves the offsets in one transaction, after
 * checking that each partition's stored offset is still the one this
 * member last saw. Likes of posts that do not exist are ignored. On
 * success `*changed_posts` counts the posts whose count changed. */
store_result store_commit(store *s, const lk_pair *pairs, size_t pair_count,
                          const store_position *positions, size_t position_count,
                          size_t *changed_posts);

#endif
