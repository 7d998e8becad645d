#include "window.h"

#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing over an array of entries; a slot is
 * free when its post_id is 0 (ids are always positive). */
struct window {
    window_entry *slots;
    size_t capacity; /* a power of two */
    size_t count;
    window_entry *sorted;
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

window *window_new(void)
{
    window *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;

    w->slots = calloc(INITIAL_CAPACITY, sizeof(*w->slots));
    if (w->slots == NULL) {
        free(w);
        return NULL;
    }
    w->capacity = INITIAL_CAPACITY;
    return w;
}

void window_free(window *w)
{
    if (w == NULL)
        return;
    free(w->slots);
    free(w->sorted);
    free(w);
}

static window_entry *find_slot(window_entry *slots, size_t capacity, int64_t post_id,
                               int64_t user_id)
{
    size_t i = pair_hash(post_id, user_id) & (capacity - 1);
    while (slots[i].post_id != 0 &&
           (slots[i].post_id != post_id || slots[i].user_id != user_id))
        i = (i + 1) & (capacity - 1);
    return &slots[i];
}

static int grow(window *w)
{
    size_t capacity = w->capacity * 2;
    window_entry *slots = calloc(capacity, sizeof(*slots));
    if (slots == NULL)
        return -1;

    for (size_t i = 0; i < w->capacity; i++) {
        if (w->slots[i].post_id != 0)
            *find_slot(slots, capacity, w->slots[i].post_id, w->slots[i].user_id) = w->slots[i];
    }
    free(w->slots);
    w->slots = slots;
    w->capacity = capacity;
    return 0;
}

int window_add(window *w, const lk_like_event *ev, int32_t partition, int64_t offset)
{
    /* Keep the table at most half full so that probes stay short. */
    if ((w->count + 1) * 2 > w->capacity && grow(w) != 0)
        return -1;

    window_entry *slot = find_slot(w->slots, w->capacity, ev->post_id, ev->user_id);
    if (slot->post_id == 0)
        w->count++;

    slot->post_id = ev->post_id;
    slot->user_id = ev->user_id;
    slot->action = ev->action;
    slot->partition = partition;
    slot->offset = offset;
    return 0;
}

size_t window_size(const window *w)
{
    return w->count;
}

static int by_position(const void *a, const void *b)
{
    const window_entry *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return 0;
}

const window_entry *window_sorted(window *w)
{
    if (w->count == 0)
        return w->slots; /* any valid pointer: there is nothing to read */

    if (w->sorted_capacity < w->count) {
        window_entry *sorted = realloc(w->sorted, w->count * sizeof(*sorted));
        if (sorted == NULL)
            return NULL;
        w->sorted = sorted;
        w->sorted_capacity = w->count;
    }

    size_t n = 0;
    for (size_t i = 0; i < w->capacity; i++) {
        if (w->slots[i].post_id != 0)
            w->sorted[n++] = w->slots[i];
    }
    qsort(w->sorted, n, sizeof(*w->sorted), by_position);
    return w->sorted;
}

void window_clear(window *w)
{
    /* A window that grew large keeps its table: the next one under the same
     * load will need it again. */
    memset(w->slots, 0, w->capacity * sizeof(*w->slots));
    w->count = 0;
}
