/* Tests of aggregator/counts.c against a real redis-server. */
#include <inttypes.h>

#include "check.h"
#include "counts.h"
#include "log.h"
#include "redis.h"
#include "redis_server.h"

static server srv;
static lk_redis *redis;

static lk_pair pair(int32_t partition, int64_t offset, int64_t post_id, int64_t user_id,
                    lk_action action)
{
    return (lk_pair){.partition = partition,
                     .offset = offset,
                     .post_id = post_id,
                     .user_id = user_id,
                     .action = action};
}

static long long get_number(const char *key)
{
    redisReply *reply = lk_redis_command(redis, "GET %s", key);
    long long value = -1;
    if (reply != NULL && reply->type == REDIS_REPLY_STRING)
        value = strtoll(reply->str, NULL, 10);
    else if (reply != NULL && reply->type == REDIS_REPLY_NIL)
        value = -2;
    freeReplyObject(reply);
    return value;
}

static long long post_count(int64_t post_id)
{
    char key[64];
    lk_redis_key_count(post_id, key, sizeof(key));
    return get_number(key);
}

static long long post_members(int64_t post_id)
{
    char key[64];
    lk_redis_key_users(post_id, key, sizeof(key));
    redisReply *reply = lk_redis_command(redis, "SCARD %s", key);
    long long value = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    freeReplyObject(reply);
    return value;
}

/* A Redis that holds the pipeline's state, and nothing else. */
static void flush_all(void)
{
    freeReplyObject(lk_redis_command(redis, "FLUSHALL"));
    freeReplyObject(lk_redis_command(redis, "SET likes:state test"));
}

static char last_why[256];

static counts_result apply(counts *c, const lk_pair *pairs, size_t n, size_t *changed)
{
    last_why[0] = '\0';
    return counts_apply(c, pairs, n, changed, last_why, sizeof(last_why));
}

/* 5,000 pairs, more than two script calls' worth: users 1..5000 on posts
 * 1..3 (user % 3 + 1) over partitions 0 and 1, every seventh user an
 * unlike. Post p gets the users u with u % 3 + 1 == p and u % 7 != 0. */
#define MANY 5000

static size_t many_pairs(lk_pair *pairs)
{
    size_t n = 0;
    for (int32_t partition = 0; partition < 2; partition++) {
        for (int64_t user = 1 + partition; user <= MANY; user += 2)
            pairs[n++] = pair(partition, user, user % 3 + 1, user,
                              user % 7 == 0 ? LK_ACTION_UNLIKE : LK_ACTION_LIKE);
    }
    return n;
}

static long long expected_likes(int64_t post_id)
{
    long long count = 0;
    for (int64_t user = 1; user <= MANY; user++)
        count += user % 3 + 1 == post_id && user % 7 != 0;
    return count;
}

static void check_many_pairs_over_chunks(counts *c)
{
    static lk_pair pairs[MANY];
    size_t n = many_pairs(pairs);
    CHECK_INT_EQ(MANY, n);

    size_t changed = 0;
    CHECK_INT_EQ(0, apply(c, pairs, n, &changed));
    /* Each of the three chunks changes all three posts. */
    CHECK_INT_EQ(9, changed);
    for (int64_t post = 1; post <= 3; post++) {
        CHECK_CONTEXT("post %" PRId64, post);
        CHECK_INT_EQ(expected_likes(post), post_count(post));
        CHECK_INT_EQ(expected_likes(post), post_members(post));
    }
    CHECK_CONTEXT("guards");
    CHECK_INT_EQ(MANY - 1, get_number("likes:applied:likes:0"));
    CHECK_INT_EQ(MANY, get_number("likes:applied:likes:1"));
}

static void with_counts(void (*check)(counts *c))
{
    flush_all();
    counts *c = counts_new(redis, "likes");
    check(c);
    counts_free(c);
}

static void test_many_pairs_over_chunks(void)
{
    with_counts(check_many_pairs_over_chunks);
}

static void check_replay_changes_nothing(counts *c)
{
    static lk_pair pairs[MANY];
    size_t n = many_pairs(pairs);
    size_t changed = 0;
    CHECK_INT_EQ(0, apply(c, pairs, n, &changed));

    /* The same window again, as after a crash before the commit, now with
     * every action reversed: Redis already holds these offsets. */
    for (size_t i = 0; i < n; i++)
        pairs[i].action = pairs[i].action == LK_ACTION_LIKE ? LK_ACTION_UNLIKE : LK_ACTION_LIKE;
    CHECK_INT_EQ(0, apply(c, pairs, n, &changed));
    CHECK_INT_EQ(0, changed);
    for (int64_t post = 1; post <= 3; post++) {
        CHECK_CONTEXT("post %" PRId64, post);
        CHECK_INT_EQ(expected_likes(post), post_count(post));
    }
}

static void test_replay_changes_nothing(void)
{
    with_counts(check_replay_changes_nothing);
}

static void check_only_newer_offsets_apply(counts *c)
{
    lk_pair first[] = {pair(0, 10, 5, 1, LK_ACTION_LIKE), pair(0, 11, 5, 2, LK_ACTION_LIKE)};
    size_t changed = 0;
    CHECK_INT_EQ(0, apply(c, first, 2, &changed));
    CHECK_INT_EQ(2, post_count(5));

    /* Offsets 10 and 11 are in Redis; 12 is new. */
    lk_pair again[] = {pair(0, 10, 5, 1, LK_ACTION_UNLIKE), pair(0, 11, 5, 2, LK_ACTION_UNLIKE),
                       pair(0, 12, 5, 3, LK_ACTION_LIKE)};
    CHECK_INT_EQ(0, apply(c, again, 3, &changed));
    CHECK_INT_EQ(1, changed);
    CHECK_INT_EQ(3, post_count(5));
    CHECK_INT_EQ(12, get_number("likes:applied:likes:0"));
}

static void test_only_newer_offsets_apply(void)
{
    with_counts(check_only_newer_offsets_apply);
}

static void check_unlike_without_like(counts *c)
{
    lk_pair pairs[] = {pair(3, 0, 9, 1, LK_ACTION_UNLIKE), pair(3, 1, 9, 2, LK_ACTION_UNLIKE)};
    size_t changed = 7;
    CHECK_INT_EQ(0, apply(c, pairs, 2, &changed));
    CHECK_INT_EQ(0, changed);
    /* Nothing changed, so no count was written at all. */
    CHECK_INT_EQ(-2, post_count(9));

    lk_pair like[] = {pair(3, 2, 9, 1, LK_ACTION_LIKE)};
    CHECK_INT_EQ(0, apply(c, like, 1, &changed));
    lk_pair unlikes[] = {pair(3, 3, 9, 1, LK_ACTION_UNLIKE), pair(3, 4, 9, 5, LK_ACTION_UNLIKE)};
    CHECK_INT_EQ(0, apply(c, unlikes, 2, &changed));
    CHECK_INT_EQ(0, post_count(9));
}

static void test_unlike_without_like(void)
{
    with_counts(check_unlike_without_like);
}

static void check_counts_are_published(counts *c, redisContext *listener)
{
    redisReply *reply = redisCommand(listener, "SUBSCRIBE %s", LK_REDIS_COUNTS_CHANNEL);
    CHECK(reply != NULL);
    freeReplyObject(reply);

    lk_pair pairs[] = {pair(0, 0, 4, 1, LK_ACTION_LIKE), pair(0, 1, 4, 2, LK_ACTION_LIKE),
                       pair(0, 2, 6, 1, LK_ACTION_LIKE)};
    size_t changed = 0;
    CHECK_INT_EQ(0, apply(c, pairs, 3, &changed));

    void *message = NULL;
    CHECK_INT_EQ(REDIS_OK, redisGetReply(listener, &message));
    redisReply *pushed = message;
    CHECK_INT_EQ(REDIS_REPLY_ARRAY, pushed->type);
    CHECK_INT_EQ(3, pushed->elements);
    CHECK_STR_EQ("message", pushed->element[0]->str);
    CHECK_STR_EQ("likes:counts", pushed->element[1]->str);
    CHECK_STR_EQ("[[4,2],[6,1]]", pushed->element[2]->str);
    freeReplyObject(pushed);
}

static void test_counts_are_published(void)
{
    flush_all();
    redisContext *listener = redisConnect("127.0.0.1", srv.port);
    counts *c = counts_new(redis, "likes");
    check_counts_are_published(c, listener);
    counts_free(c);
    redisFree(listener);
}

static void check_redis_down_then_back(counts *c)
{
    lk_pair pairs[] = {pair(1, 40, 8, 1, LK_ACTION_LIKE)};
    size_t changed = 0;
    server_kill(&srv);
    CHECK_INT_EQ(COUNTS_FAILED, apply(c, pairs, 1, &changed));

    CHECK_INT_EQ(0, server_start(&srv));

    /* Reconnecting is spaced by backoff, and a loaded machine may take a
     * moment more: retry for up to 5 s, as the aggregator would. The
     * restarted server runs without persistence: it lost the state as well
     * as the script, and says so until the state is set again. */
    counts_result after_restart = COUNTS_FAILED;
    for (int tries = 0; after_restart == COUNTS_FAILED && tries < 50; tries++) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        nanosleep(&pause, NULL);
        after_restart = apply(c, pairs, 1, &changed);
    }
    CHECK_INT_EQ(COUNTS_NO_STATE, after_restart);
    CHECK_INT_EQ(0, counts_adopt_state(c));
    CHECK_INT_EQ(COUNTS_APPLIED, apply(c, pairs, 1, &changed));
    CHECK_INT_EQ(1, changed);
    CHECK_INT_EQ(1, post_count(8));
}

static void test_redis_down_then_back(void)
{
    with_counts(check_redis_down_then_back);
}

static void check_refusals(counts *c)
{
    lk_pair pairs[] = {pair(0, 0, 2, 1, LK_ACTION_LIKE)};
    size_t changed = 0;

    freeReplyObject(lk_redis_command(redis, "SET likes:maintenance 1"));
    CHECK_INT_EQ(COUNTS_MAINTENANCE, apply(c, pairs, 1, &changed));
    CHECK_STR_EQ("MAINTENANCE counts are being rebuilt", last_why);
    freeReplyObject(lk_redis_command(redis, "DEL likes:maintenance likes:state"));

    CHECK_INT_EQ(COUNTS_NO_STATE, apply(c, pairs, 1, &changed));
    CHECK_STR_EQ("NOSTATE redis holds no pipeline state", last_why);
    CHECK_INT_EQ(-2, post_count(2));
    CHECK_INT_EQ(0, counts_has_applied_offsets(c));

    CHECK_INT_EQ(0, counts_adopt_state(c));
    CHECK_INT_EQ(COUNTS_APPLIED, apply(c, pairs, 1, &changed));
    CHECK_INT_EQ(1, post_count(2));
    CHECK_INT_EQ(1, counts_has_applied_offsets(c));
}

static void test_refusals(void)
{
    with_counts(check_refusals);
}

int main(void)
{
    static const check_case cases[] = {
        {"5000 pairs over three script calls give exact counts and guards",
         test_many_pairs_over_chunks},
        {"a window applied again changes nothing", test_replay_changes_nothing},
        {"only offsets newer than the guard apply", test_only_newer_offsets_apply},
        {"an unlike without a like never goes below zero", test_unlike_without_like},
        {"new counts are published as JSON", test_counts_are_published},
        {"a rebuild in progress or a redis without state is refused", test_refusals},
        /* Last: each test runs in a child process, and the server this one
         * restarts ends with it. */
        {"a lost redis fails the call and a later one succeeds", test_redis_down_then_back},
    };

    lk_log_init("test_counts");
    if (!on_path("redis-server")) {
        printf("not ok - test_counts.c: redis-server is not on PATH\n");
        return 1;
    }
    if (server_prepare(&srv) != 0 || server_start(&srv) != 0) {
        printf("not ok - test_counts.c: redis-server did not start\n");
        return 1;
    }
    redis = lk_redis_new("127.0.0.1", srv.port, 2000);

    int rc = CHECK_RUN(cases);

    lk_redis_free(redis);
    server_cleanup(&srv);
    return rc;
}
