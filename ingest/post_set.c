/*
 * The ids of posts known to exist, so that a like needs no query for a post
 * seen before. Open addressing with linear probing; 0 marks a free slot,
 * which no post id is. Posts are never deleted, so neither are entries.
 */
#include "ingest.h"

#include <stdlib.h>

#define INITIAL_SLOTS 1024

struct ingest_post_set {
    int64_t *slots;
    size_t slot_count; /* a power of two */
    size_t used;
};

/* Sequential ids would crowd one end of the table without a mix. */
static size_t slot_of(int64_t post_id, size_t slot_count)
{
    uint64_t x = (uint64_t)post_id;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (size_t)(x & (slot_count - 1));
}

ingest_post_set *ingest_post_set_new(void)
{
    ingest_post_set *set = calloc(1, sizeof(*set));
    if (set == NULL)
        return NULL;

    set->slots = calloc(INITIAL_SLOTS, sizeof(*set->slots));
    if (set->slots == NULL) {
        free(set);
        return NULL;
    }
    set->slot_count = INITIAL_SLOTS;
    return set;
}

void ingest_post_set_free(ingest_post_set *set)
{
    if (set == NULL)
        return;
    free(set->slots);
    free(set);
}

int ingest_post_set_contains(const ingest_post_set *set, int64_t post_id)
{
    size_t mask = set->slot_count - 1;
    for (size_t i = slot_of(post_id, set->slot_count);; i = (i + 1) & mask) {
        if (set->slots[i] == post_id)
            return 1;
        if (set->slots[i] == 0)
            return 0;
    }
}

static void insert_slot(int64_t *slots, size_t slot_count, int64_t post_id)
{
    size_t mask = slot_count - 1;
    size_t i = slot_of(post_id, slot_count);
    while (slots[i] != 0 && slots[i] != post_id)
        i = (i + 1) & mask;
    slots[i] = post_id;
}

static int grow(ingest_post_set *set)
{
    size_t slot_count = set->slot_count * 2;
    int64_t *slots = calloc(slot_count, sizeof(*slots));
    if (slots == NULL)
        return -1;

    for (size_t i = 0; i < set->slot_count; i++) {
        if (set->slots[i] != 0)
            insert_slot(slots, slot_count, set->slots[i]);
    }
    free(set->slots);
    set->slots = slots;
    set->slot_count = slot_count;
    return 0;
}

int ingest_post_set_add(ingest_post_set *set, int64_t post_id)
{
    if (post_id <= 0 || ingest_post_set_contains(set, post_id))
        return 0;

    /* Keep the table at most half full so that probes stay short. */
    if ((set->used + 1) * 2 > set->slot_count && grow(set) != 0)
        return -1;

    insert_slot(set->slots, set->slot_count, post_id);
    set->used++;
    return 0;
}
