#include "pairs.h"

#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing over an array of entries; a slot is
 * free when its post_id is 0 (ids are always positive). */
struct lk_pairs {
    lk_pair *slots;
    size_t capacity; /* a power of two */
    size_t count;
    lk_pair *sorted;
    size_t sorted_capacity;
};

#define INITIAL_CAPACITY 1024

static uint64_t pair_hash(int64_t post_id, int64_t user_id)
{
    uint64_t h = (uint64_t)post_id * 0x9E3779B97F4A7C15ULL;
    h ^= (uint64_t)user_id + 0x632BE59BD9B4E019ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 29);
}

lk_pairs *lk_pairs_new(void)
{
    lk_pairs *pairs = calloc(1, sizeof(*pairs));
    if (pairs == NULL)
        return NULL;

    pairs->slots = calloc(INITIAL_CAPACITY, sizeof(*pairs->slots));
    if (pairs->slots == NULL) {
        free(pairs);
        return NULL;
    }
    pairs->capacity = INITIAL_CAPACITY;
    return pairs;
}

void lk_pairs_free(lk_pairs *pairs)
{
    if (pairs == NULL)
        return;
    free(pairs->slots);
    free(pairs->sorted);
    free(pairs);
}

static lk_pair *find_slot(lk_pair *slots, size_t capacity, int64_t post_id, int64_t user_id)
{
    size_t i = pair_hash(post_id, user_id) & (capacity - 1);
    while (slots[i].post_id != 0 && (slots[i].post_id != post_id || slots[i].user_id != user_id))
        i = (i + 1) & (capacity - 1);
    return &slots[i];
}

static int grow(lk_pairs *pairs)
{
    size_t capacity = pairs->capacity * 2;
    lk_pair *slots = calloc(capacity, sizeof(*slots));
    if (slots == NULL)
        return -1;

    for (size_t i = 0; i < pairs->capacity; i++) {
        if (pairs->slots[i].post_id != 0)
            *find_slot(slots, capacity, pairs->slots[i].post_id, pairs->slots[i].user_id) =
                pairs->slots[i];
    }
    free(pairs->slots);
    pairs->slots = slots;
    pairs->capacity = capacity;
    return 0;
}

int lk_pairs_set(lk_pairs *pairs, const lk_like_event *ev, int32_t partition, int64_t offset)
{
    /* Keep the table at most half full so that probes stay short. */
    if ((pairs->count + 1) * 2 > pairs->capacity && grow(pairs) != 0)
        return -1;

    lk_pair *slot = find_slot(pairs->slots, pairs->capacity, ev->post_id, ev->user_id);
    if (slot->post_id == 0)
        pairs->count++;

    slot->post_id = ev->post_id;
    slot->user_id = ev->user_id;
    slot->action = ev->action;
    slot->partition = partition;
    slot->offset = offset;
    return 0;
}

size_t lk_pairs_count(const lk_pairs *pairs)
{
    return pairs->count;
}

static int by_position(const void *a, const void *b)
{
    const lk_pair *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return 0;
}

const lk_pair *lk_pairs_sorted(lk_pairs *pairs)
{
    if (pairs->count == 0)
        return pairs->slots; /* any valid pointer: there is nothing to read */

    if (pairs->sorted_capacity < pairs->count) {
        lk_pair *sorted = realloc(pairs->sorted, pairs->count * sizeof(*sorted));
        if (sorted == NULL)
            return NULL;
        pairs->sorted = sorted;
        pairs->sorted_capacity = pairs->count;
    }

    size_t n = 0;
    for (size_t i = 0; i < pairs->capacity; i++) {
        if (pairs->slots[i].post_id != 0)
            pairs->sorted[n++] = pairs->slots[i];
    }
    qsort(pairs->sorted, n, sizeof(*pairs->sorted), by_position);
    return pairs->sorted;
}

void lk_pairs_clear(lk_pairs *pairs)
{
    /* A set that grew large keeps its table: the next batch under the same
     * load will need it again. */
    memset(pairs->slots, 0, pairs->capacity * sizeof(*pairs->slots));
    pairs->count = 0;
}
