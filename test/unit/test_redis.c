/*
 * The Redis handle: key names, a port where nothing listens, and a real
 * redis-server started here as a child process on a free port of
 * 127.0.0.1, killed and restarted on the same port to watch the handle
 * reconnect. The tests that need the server are skipped when redis-server
 * is not on PATH.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "check.h"
#include "redis_server.h"
#include "log.h"
#include "redis.h"

/* A failed connect spaces the next attempt by the first backoff step, 50 ms
 * with up to a quarter of jitter. */
static void wait_out_reconnect_backoff(void)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
    nanosleep(&pause, NULL);
}

static long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

/* ---- the tests ---- */

static void test_key_names(void)
{
    char key[64];

    CHECK_INT_EQ(19, lk_redis_key_count(42, key, sizeof(key)));
    CHECK_STR_EQ("likes:post:42:count", key);
    CHECK_INT_EQ(19, lk_redis_key_users(42, key, sizeof(key)));
    CHECK_STR_EQ("likes:post:42:users", key);
    CHECK_INT_EQ(36, lk_redis_key_count(INT64_MAX, key, sizeof(key)));
    CHECK_STR_EQ("likes:post:9223372036854775807:count", key);
    CHECK_INT_EQ(36, lk_redis_key_users(INT64_MAX, key, sizeof(key)));
    CHECK_STR_EQ("likes:post:9223372036854775807:users", key);
}

static void check_dead_port(lk_redis *redis, int port)
{
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    long long start = now_ms();
    int64_t count = 42;
    int first = lk_redis_get_count(redis, 7, &count);
    int second = lk_redis_get_count(redis, 7, &count);
    redisContext *context = lk_redis_get(redis);
    redisReply *reply = lk_redis_command(redis, "PING");
    long long took = now_ms() - start;

    char log[4096], lines[4096];
    capture_end(&cap, log, sizeof(log));
    capture_strip_times(log, lines, sizeof(lines));

    CHECK_INT_EQ(-1, first);
    CHECK_INT_EQ(-1, second);
    CHECK_INT_EQ(42, count);
    CHECK(context == NULL);
    CHECK(reply == NULL);
    /* Refused at once, not after the 1 s timeout. */
    CHECK_INT_RANGE(0, 900, took);

    /* Four failed attempts, one line: the change to unreachable. */
    char expected[512];
    snprintf(expected, sizeof(expected),
             "test_redis[%d] WARN redis 127.0.0.1:%d unreachable (Connection refused), retrying "
             "until it answers\n",
             (int)getpid(), port);
    CHECK_STR_EQ(expected, lines);
}

static void test_dead_port(void)
{
    int port = free_port();
    CHECK(port > 0);
    lk_redis *redis = lk_redis_new("127.0.0.1", port, 1000);
    CHECK(redis != NULL);

    check_dead_port(redis, port);
    lk_redis_free(redis);
}

static void check_silent_server(lk_redis *redis)
{
    long long start = now_ms();
    int64_t count = 42;
    int rc = lk_redis_get_count(redis, 7, &count);
    long long took = now_ms() - start;

    CHECK_INT_EQ(-1, rc);
    CHECK_INT_EQ(42, count);
    /* The command gives up after the 300 ms timeout. */
    CHECK_INT_RANGE(250, 2000, took);
}

static void test_silent_server(void)
{
    int port = 0;
    int listener = silent_listener(&port);
    CHECK(listener >= 0);
    lk_redis *redis = lk_redis_new("127.0.0.1", port, 300);

    capture cap;
    if (capture_start(&cap) == 0) {
        check_silent_server(redis);
        char log[4096];
        capture_end(&cap, log, sizeof(log));
    }
    lk_redis_free(redis);
    close(listener);
}

static void check_count_after_set(lk_redis *redis)
{
    char key[64];
    lk_redis_key_count(42, key, sizeof(key));

    int64_t count = 99;
    CHECK_INT_EQ(0, lk_redis_get_count(redis, 42, &count));
    CHECK_INT_EQ(0, count);

    redisReply *reply = lk_redis_command(redis, "SET %s %d", key, 17);
    CHECK(reply != NULL);
    int type = reply->type;
    char status[16];
    snprintf(status, sizeof(status), "%s", type == REDIS_REPLY_STATUS ? reply->str : "");
    freeReplyObject(reply);
    CHECK_INT_EQ(REDIS_REPLY_STATUS, type);
    CHECK_STR_EQ("OK", status);

    CHECK_INT_EQ(0, lk_redis_get_count(redis, 42, &count));
    CHECK_INT_EQ(17, count);

    /* Another post's count is its own. */
    CHECK_INT_EQ(0, lk_redis_get_count(redis, 43, &count));
    CHECK_INT_EQ(0, count);
}

static void test_count_after_set(void)
{
    if (!on_path("redis-server"))
        CHECK_SKIP("redis-server is not on PATH");

    server srv;
    CHECK_INT_EQ(0, server_prepare(&srv));
    int started = server_start(&srv);
    lk_redis *redis = lk_redis_new("127.0.0.1", srv.port, 1000);

    if (started == 0)
        check_count_after_set(redis);
    else
        CHECK_INT_EQ(0, started);

    lk_redis_free(redis);
    server_cleanup(&srv);
}

static void check_error_reply(lk_redis *redis)
{
    char key[64];
    lk_redis_key_count(5, key, sizeof(key));

    /* A count key of the wrong type: GET answers WRONGTYPE, the count is
     * unknown, and the connection itself stays good. */
    redisReply *reply = lk_redis_command(redis, "SADD %s 1", key);
    CHECK(reply != NULL);
    freeReplyObject(reply);

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    int64_t count = 42;
    int rc = lk_redis_get_count(redis, 5, &count);
    char log[4096], lines[4096];
    capture_end(&cap, log, sizeof(log));
    capture_strip_times(log, lines, sizeof(lines));

    CHECK_INT_EQ(-1, rc);
    CHECK_INT_EQ(42, count);
    char expected[512];
    snprintf(expected, sizeof(expected),
             "test_redis[%d] WARN redis GET likes:post:5:count answered WRONGTYPE Operation "
             "against a key holding the wrong kind of value, count unknown\n",
             (int)getpid());
    CHECK_STR_EQ(expected, lines);

    reply = lk_redis_command(redis, "PING");
    CHECK(reply != NULL);
    int type = reply->type;
    freeReplyObject(reply);
    CHECK_INT_EQ(REDIS_REPLY_STATUS, type);
}

static void test_error_reply(void)
{
    if (!on_path("redis-server"))
        CHECK_SKIP("redis-server is not on PATH");

    server srv;
    CHECK_INT_EQ(0, server_prepare(&srv));
    int started = server_start(&srv);
    lk_redis *redis = lk_redis_new("127.0.0.1", srv.port, 1000);

    if (started == 0)
        check_error_reply(redis);
    else
        CHECK_INT_EQ(0, started);

    lk_redis_free(redis);
    server_cleanup(&srv);
}

/* Sets `key` with a command that answers +OK or an integer. */
static int run_write(lk_redis *redis, const char *command, const char *key, const char *value)
{
    redisReply *reply = lk_redis_command(redis, "%s %s %s", command, key, value);
    int ok =
        reply != NULL && (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

static void check_post_likes(lk_redis *redis)
{
    char key[64];
    lk_redis_key_count(1, key, sizeof(key));
    CHECK_INT_EQ(0, run_write(redis, "SET", key, "5"));
    lk_redis_key_count(2, key, sizeof(key));
    CHECK_INT_EQ(0, run_write(redis, "SET", key, "2"));
    lk_redis_key_users(1, key, sizeof(key));
    CHECK_INT_EQ(0, run_write(redis, "SADD", key, "7"));
    lk_redis_key_users(2, key, sizeof(key));
    CHECK_INT_EQ(0, run_write(redis, "SADD", key, "8"));

    /* Post 3 has neither key: no like yet. */
    const int64_t posts[] = {1, 2, 3};
    int64_t counts[3] = {-1, -1, -1};
    int liked[3] = {-1, -1, -1};
    CHECK_INT_EQ(0, lk_redis_get_post_likes(redis, posts, 3, 7, counts, liked));
    CHECK_INT_EQ(5, counts[0]);
    CHECK_INT_EQ(2, counts[1]);
    CHECK_INT_EQ(0, counts[2]);
    CHECK_INT_EQ(1, liked[0]);
    CHECK_INT_EQ(0, liked[1]);
    CHECK_INT_EQ(0, liked[2]);

    /* No user: counts only, `liked` untouched. */
    int64_t anonymous_counts[3] = {-1, -1, -1};
    int untouched[3] = {-1, -1, -1};
    CHECK_INT_EQ(0, lk_redis_get_post_likes(redis, posts, 3, 0, anonymous_counts, untouched));
    CHECK_INT_EQ(5, anonymous_counts[0]);
    CHECK_INT_EQ(2, anonymous_counts[1]);
    CHECK_INT_EQ(0, anonymous_counts[2]);
    CHECK_INT_EQ(-1, untouched[0]);
    CHECK_INT_EQ(-1, untouched[2]);

    /* Nothing asked, nothing read; more than the most is refused. */
    CHECK_INT_EQ(0, lk_redis_get_post_likes(redis, posts, 0, 7, counts, liked));
    int64_t many[LK_REDIS_MAX_POSTS_READ + 1] = {0};
    int64_t many_counts[LK_REDIS_MAX_POSTS_READ + 1];
    CHECK_INT_EQ(-1, lk_redis_get_post_likes(redis, many, LK_REDIS_MAX_POSTS_READ + 1, 0,
                                             many_counts, NULL));
}

static void test_post_likes(void)
{
    if (!on_path("redis-server"))
        CHECK_SKIP("redis-server is not on PATH");

    server srv;
    CHECK_INT_EQ(0, server_prepare(&srv));
    int started = server_start(&srv);
    lk_redis *redis = lk_redis_new("127.0.0.1", srv.port, 1000);

    if (started == 0)
        check_post_likes(redis);
    else
        CHECK_INT_EQ(0, started);

    lk_redis_free(redis);
    server_cleanup(&srv);
}

/* A count that is not a number and a users key holding a string: the
 * whole read fails, once each, and the connection stays in step for the
 * next command. */
static void check_post_likes_wrong_types(lk_redis *redis)
{
    char key[64];
    lk_redis_key_count(5, key, sizeof(key));
    CHECK_INT_EQ(0, run_write(redis, "SET", key, "many"));
    lk_redis_key_users(6, key, sizeof(key));
    CHECK_INT_EQ(0, run_write(redis, "SET", key, "1"));

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    const int64_t post_five[] = {5};
    const int64_t post_six[] = {6};
    int64_t counts[1];
    int liked[1];
    int wrong_count = lk_redis_get_post_likes(redis, post_five, 1, 7, counts, liked);
    int wrong_users = lk_redis_get_post_likes(redis, post_six, 1, 7, counts, liked);
    char log[4096], lines[4096];
    capture_end(&cap, log, sizeof(log));
    capture_strip_times(log, lines, sizeof(lines));

    CHECK_INT_EQ(-1, wrong_count);
    CHECK_INT_EQ(-1, wrong_users);
    char expected[1024];
    snprintf(expected, sizeof(expected),
             "test_redis[%d] WARN redis: reading the likes of 1 posts failed (the count of post 5 "
             "is not a count), likes unknown\n"
             "test_redis[%d] WARN redis: reading the likes of 1 posts failed (SISMEMBER answered "
             "WRONGTYPE Operation against a key holding the wrong kind of value), likes unknown\n",
             (int)getpid(), (int)getpid());
    CHECK_STR_EQ(expected, lines);

    redisReply *reply = lk_redis_command(redis, "PING");
    CHECK(reply != NULL);
    int type = reply->type;
    char status[16];
    snprintf(status, sizeof(status), "%s", type == REDIS_REPLY_STATUS ? reply->str : "");
    freeReplyObject(reply);
    CHECK_STR_EQ("PONG", status);
}

static void test_post_likes_wrong_types(void)
{
    if (!on_path("redis-server"))
        CHECK_SKIP("redis-server is not on PATH");

    server srv;
    CHECK_INT_EQ(0, server_prepare(&srv));
    int started = server_start(&srv);
    lk_redis *redis = lk_redis_new("127.0.0.1", srv.port, 1000);

    if (started == 0)
        check_post_likes_wrong_types(redis);
    else
        CHECK_INT_EQ(0, started);

    lk_redis_free(redis);
    server_cleanup(&srv);
}

static void test_post_likes_dead_port(void)
{
    int port = free_port();
    CHECK(port > 0);
    lk_redis *redis = lk_redis_new("127.0.0.1", port, 1000);
    CHECK(redis != NULL);

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    const int64_t posts[] = {1};
    int64_t counts[1] = {42};
    int rc = lk_redis_get_post_likes(redis, posts, 1, 0, counts, NULL);
    char log[4096];
    capture_end(&cap, log, sizeof(log));
    lk_redis_free(redis);

    CHECK_INT_EQ(-1, rc);
    CHECK_INT_EQ(42, counts[0]);
}

/* Nothing listens on the port at first; the server comes up later and
 * the same handle reads from it. */
static void check_recovers_when_server_starts(lk_redis *redis, server *srv)
{
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    int64_t count = 42;
    int before = lk_redis_get_count(redis, 42, &count);
    int started = server_start(srv);
    wait_out_reconnect_backoff();
    int after = started == 0 ? lk_redis_get_count(redis, 42, &count) : -2;

    char log[4096], lines[4096];
    capture_end(&cap, log, sizeof(log));
    capture_strip_times(log, lines, sizeof(lines));

    CHECK_INT_EQ(-1, before);
    CHECK_INT_EQ(0, started);
    CHECK_INT_EQ(0, after);
    CHECK_INT_EQ(0, count);

    char expected[512];
    snprintf(expected, sizeof(expected),
             "test_redis[%d] WARN redis 127.0.0.1:%d unreachable (Connection refused), retrying "
             "until it answers\n"
             "test_redis[%d] INFO redis 127.0.0.1:%d reachable again\n",
             (int)getpid(), srv->port, (int)getpid(), srv->port);
    CHECK_STR_EQ(expected, lines);
}

static void test_recovers_when_server_starts(void)
{
    if (!on_path("redis-server"))
        CHECK_SKIP("redis-server is not on PATH");

    server srv;
    CHECK_INT_EQ(0, server_prepare(&srv));
    lk_redis *redis = lk_redis_new("127.0.0.1", srv.port, 1000);

    check_recovers_when_server_starts(redis, &srv);

    lk_redis_free(redis);
    server_cleanup(&srv);
}

static int set_count(lk_redis *redis, int64_t post_id, int value)
{
    char key[64];
    lk_redis_key_count(post_id, key, sizeof(key));
    redisReply *reply = lk_redis_command(redis, "SET %s %d", key, value);
    int ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;
    if (reply != NULL)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* The server is killed under a connected handle, then started again on
 * the same port: the handle notices, fails while it is down, and uses
 * the new server by itself. */
static void check_reconnects_after_restart(lk_redis *redis, server *srv)
{
    int64_t count = 0;
    CHECK_INT_EQ(0, set_count(redis, 42, 17));
    CHECK_INT_EQ(0, lk_redis_get_count(redis, 42, &count));
    CHECK_INT_EQ(17, count);

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    server_kill(srv);
    count = 42;
    int on_dead_connection = lk_redis_get_count(redis, 42, &count);
    int while_down = lk_redis_get_count(redis, 42, &count);
    int restarted = server_start(srv);
    wait_out_reconnect_backoff();
    int64_t count_after = -1;
    int after = restarted == 0 ? lk_redis_get_count(redis, 42, &count_after) : -2;

    char log[4096], lines[4096];
    capture_end(&cap, log, sizeof(log));
    capture_strip_times(log, lines, sizeof(lines));

    CHECK_INT_EQ(-1, on_dead_connection);
    CHECK_INT_EQ(-1, while_down);
    CHECK_INT_EQ(42, count);
    CHECK_INT_EQ(0, restarted);
    CHECK_INT_EQ(0, after);
    /* The new server runs without persistence: the count is gone. */
    CHECK_INT_EQ(0, count_after);

    CHECK_INT_EQ(0, set_count(redis, 42, 5));
    CHECK_INT_EQ(0, lk_redis_get_count(redis, 42, &count));
    CHECK_INT_EQ(5, count);

    /* One line when lost, one when back; the reason of the first is
     * hiredis's, so only its start and end are fixed. */
    char lost_start[128], back[256];
    snprintf(lost_start, sizeof(lost_start), "test_redis[%d] WARN redis 127.0.0.1:%d unreachable (",
             (int)getpid(), srv->port);
    snprintf(back, sizeof(back),
             "), retrying until it answers\ntest_redis[%d] INFO redis 127.0.0.1:%d reachable "
             "again\n",
             (int)getpid(), srv->port);
    char lines_start[sizeof(lost_start)];
    snprintf(lines_start, sizeof(lines_start), "%.*s", (int)strlen(lost_start), lines);
    CHECK_STR_EQ(lost_start, lines_start);
    CHECK_STR_EQ(back, strstr(lines, "), retrying"));
}

static void test_reconnects_after_restart(void)
{
    if (!on_path("redis-server"))
        CHECK_SKIP("redis-server is not on PATH");

    server srv;
    CHECK_INT_EQ(0, server_prepare(&srv));
    int started = server_start(&srv);
    lk_redis *redis = lk_redis_new("127.0.0.1", srv.port, 1000);

    if (started == 0)
        check_reconnects_after_restart(redis, &srv);
    else
        CHECK_INT_EQ(0, started);

    lk_redis_free(redis);
    server_cleanup(&srv);
}

static void check_broken_reconnects(lk_redis *redis, int port)
{
    CHECK(lk_redis_get(redis) != NULL);
    CHECK_INT_EQ(0, set_count(redis, 8, 3));

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    lk_redis_broken(redis, "protocol error");
    lk_redis_broken(redis, "protocol error");
    int64_t count = 0;
    int rc = lk_redis_get_count(redis, 8, &count);
    char log[4096], lines[4096];
    capture_end(&cap, log, sizeof(log));
    capture_strip_times(log, lines, sizeof(lines));

    CHECK_INT_EQ(0, rc);
    CHECK_INT_EQ(3, count);
    char expected[512];
    snprintf(expected, sizeof(expected),
             "test_redis[%d] WARN redis 127.0.0.1:%d unreachable (protocol error), retrying until "
             "it answers\n"
             "test_redis[%d] INFO redis 127.0.0.1:%d reachable again\n",
             (int)getpid(), port, (int)getpid(), port);
    CHECK_STR_EQ(expected, lines);
}

static void test_broken_reconnects(void)
{
    if (!on_path("redis-server"))
        CHECK_SKIP("redis-server is not on PATH");

    server srv;
    CHECK_INT_EQ(0, server_prepare(&srv));
    int started = server_start(&srv);
    lk_redis *redis = lk_redis_new("127.0.0.1", srv.port, 1000);

    if (started == 0)
        check_broken_reconnects(redis, srv.port);
    else
        CHECK_INT_EQ(0, started);

    lk_redis_free(redis);
    server_cleanup(&srv);
}

int main(void)
{
    /* The expected log lines are at warn and info: whatever threshold the
     * caller's environment asks for, use the default. */
    unsetenv("LIKES_LOG_LEVEL");
    lk_log_init("test_redis");

    static const check_case cases[] = {
        {"key names", test_key_names},
        {"a dead port fails at once and is logged once", test_dead_port},
        {"a server that never answers times out", test_silent_server},
        {"get count reads what SET wrote, 0 when absent", test_count_after_set},
        {"an error reply leaves the count unknown", test_error_reply},
        {"post likes read counts and membership in one go", test_post_likes},
        {"post likes of keys of the wrong type are unknown", test_post_likes_wrong_types},
        {"post likes fail at once on a dead port", test_post_likes_dead_port},
        {"a handle recovers when the server starts", test_recovers_when_server_starts},
        {"a handle reconnects after the server restarts", test_reconnects_after_restart},
        {"lk_redis_broken drops the connection, the next call reconnects", test_broken_reconnects},
    };
    return CHECK_RUN(cases);
}
