/* Tests of lib/pairs.c: the last action per (post, user) pair. */
#include "check.h"
#include "pairs.h"

static lk_like_event event(lk_action action, int64_t user_id, int64_t post_id)
{
    return (lk_like_event){.action = action, .user_id = user_id, .post_id = post_id};
}

static void add(lk_pairs *pairs, lk_action action, int64_t user_id, int64_t post_id,
                int32_t partition, int64_t offset)
{
    lk_like_event ev = event(action, user_id, post_id);
    lk_pairs_set(pairs, &ev, partition, offset);
}

static void check_last_action_wins(lk_pairs *pairs)
{
    add(pairs, LK_ACTION_LIKE, 7, 3, 1, 10);
    add(pairs, LK_ACTION_UNLIKE, 7, 3, 1, 11);
    add(pairs, LK_ACTION_LIKE, 7, 3, 1, 12);
    add(pairs, LK_ACTION_UNLIKE, 8, 3, 1, 13);

    CHECK_INT_EQ(2, lk_pairs_count(pairs));
    const lk_pair *sorted = lk_pairs_sorted(pairs);
    CHECK(sorted != NULL);
    CHECK_INT_EQ(7, sorted[0].user_id);
    CHECK_INT_EQ(LK_ACTION_LIKE, sorted[0].action);
    CHECK_INT_EQ(12, sorted[0].offset);
    CHECK_INT_EQ(8, sorted[1].user_id);
    CHECK_INT_EQ(LK_ACTION_UNLIKE, sorted[1].action);
    CHECK_INT_EQ(13, sorted[1].offset);
}

static void test_last_action_wins(void)
{
    lk_pairs *pairs = lk_pairs_new();
    check_last_action_wins(pairs);
    lk_pairs_free(pairs);
}

static void check_sorted_by_position(lk_pairs *pairs)
{
    add(pairs, LK_ACTION_LIKE, 1, 100, 2, 5);
    add(pairs, LK_ACTION_LIKE, 2, 100, 0, 9);
    add(pairs, LK_ACTION_LIKE, 3, 200, 2, 1);
    add(pairs, LK_ACTION_LIKE, 4, 300, 0, 3);

    const lk_pair *sorted = lk_pairs_sorted(pairs);
    CHECK(sorted != NULL);
    int32_t partitions[] = {0, 0, 2, 2};
    int64_t offsets[] = {3, 9, 1, 5};
    int64_t users[] = {4, 2, 3, 1};
    for (int i = 0; i < 4; i++) {
        CHECK_CONTEXT("entry %d", i);
        CHECK_INT_EQ(partitions[i], sorted[i].partition);
        CHECK_INT_EQ(offsets[i], sorted[i].offset);
        CHECK_INT_EQ(users[i], sorted[i].user_id);
    }
}

static void test_sorted_by_position(void)
{
    lk_pairs *pairs = lk_pairs_new();
    check_sorted_by_position(pairs);
    lk_pairs_free(pairs);
}

/* Enough pairs to make the table grow several times, each set twice. */
static void check_growth_keeps_every_pair(lk_pairs *pairs)
{
    for (int round = 0; round < 2; round++) {
        for (int64_t user = 1; user <= 5000; user++)
            add(pairs, round ? LK_ACTION_UNLIKE : LK_ACTION_LIKE, user, user % 7 + 1, 0,
                round * 5000 + user);
    }
    CHECK_INT_EQ(5000, lk_pairs_count(pairs));

    const lk_pair *sorted = lk_pairs_sorted(pairs);
    CHECK(sorted != NULL);
    for (int64_t i = 0; i < 5000; i++) {
        CHECK_CONTEXT("entry %" PRId64, i);
        CHECK_INT_EQ(5001 + i, sorted[i].offset);
        CHECK_INT_EQ(i + 1, sorted[i].user_id);
        CHECK_INT_EQ(LK_ACTION_UNLIKE, sorted[i].action);
    }
}

static void test_growth_keeps_every_pair(void)
{
    lk_pairs *pairs = lk_pairs_new();
    check_growth_keeps_every_pair(pairs);
    lk_pairs_free(pairs);
}

static void check_clear_empties(lk_pairs *pairs)
{
    add(pairs, LK_ACTION_LIKE, 1, 1, 0, 0);
    lk_pairs_clear(pairs);
    CHECK_INT_EQ(0, lk_pairs_count(pairs));
    CHECK(lk_pairs_sorted(pairs) != NULL);

    add(pairs, LK_ACTION_UNLIKE, 1, 1, 0, 1);
    CHECK_INT_EQ(1, lk_pairs_count(pairs));
    CHECK_INT_EQ(LK_ACTION_UNLIKE, lk_pairs_sorted(pairs)[0].action);
}

static void test_clear_empties(void)
{
    lk_pairs *pairs = lk_pairs_new();
    check_clear_empties(pairs);
    lk_pairs_free(pairs);
}

int main(void)
{
    static const check_case cases[] = {
        {"the last action of a pair replaces the earlier ones", test_last_action_wins},
        {"entries come sorted by partition then offset", test_sorted_by_position},
        {"growing the table keeps every pair", test_growth_keeps_every_pair},
        {"clear empties the set and it fills again", test_clear_empties},
    };
    return CHECK_RUN(cases);
}
