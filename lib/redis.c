#include "redis.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"

struct lk_redis {
    char host[128];
    int port;
    int timeout_ms;
    redisContext *context;
    int reachable; /* last known state, for logging changes only */

    /* After a failed connect, the next waits for the backoff: a Redis that
     * does not answer would otherwise cost every caller a full timeout. A
     * connection lost while in use is retried at once. */
    lk_backoff reconnect;
    int64_t next_attempt_ms;
};

lk_redis *lk_redis_new(const char *host, int port, int timeout_ms)
{
    lk_redis *redis = calloc(1, sizeof(*redis));
    if (redis == NULL)
        return NULL;

    snprintf(redis->host, sizeof(redis->host), "%s", host);
    redis->port = port;
    redis->timeout_ms = timeout_ms;
    redis->reachable = 1;
    lk_backoff_init(&redis->reconnect, 50, 2000);
    return redis;
}

void lk_redis_free(lk_redis *redis)
{
    if (redis == NULL)
        return;
    if (redis->context != NULL)
        redisFree(redis->context);
    free(redis);
}

static void note_unreachable(lk_redis *redis, const char *why)
{
    if (redis->reachable)
        lk_log_warn("redis %s:%d unreachable (%s), retrying until it answers", redis->host,
                    redis->port, why);
    redis->reachable = 0;
}

static void note_reachable(lk_redis *redis)
{
    if (!redis->reachable)
        lk_log_info("redis %s:%d reachable again", redis->host, redis->port);
    redis->reachable = 1;
}

redisContext *lk_redis_get(lk_redis *redis)
{
    if (redis->context != NULL)
        return redis->context;
    if (lk_monotonic_ms() < redis->next_attempt_ms)
        return NULL;

    struct timeval timeout = {
        .tv_sec = redis->timeout_ms / 1000,
        .tv_usec = (redis->timeout_ms % 1000) * 1000,
    };
    redisContext *context = redisConnectWithTimeout(redis->host, redis->port, timeout);
    if (context == NULL || context->err != 0) {
        redis->next_attempt_ms = lk_monotonic_ms() + lk_backoff_next(&redis->reconnect);
        note_unreachable(redis, context != NULL ? context->errstr : "out of memory");
        if (context != NULL)
            redisFree(context);
        return NULL;
    }

    redisSetTimeout(context, timeout);
    redis->context = context;
    lk_backoff_reset(&redis->reconnect);
    note_reachable(redis);
    return context;
}

void lk_redis_broken(lk_redis *redis, const char *why)
{
    /* `why` is often the context's own error text, which goes away with
     * the context: keep a copy for the log. */
    char reason[128];
    snprintf(reason, sizeof(reason), "%s", why);

    if (redis->context != NULL) {
        redisFree(redis->context);
        redis->context = NULL;
    }
    note_unreachable(redis, reason);
}

redisReply *lk_redis_command(lk_redis *redis, const char *fmt, ...)
{
    redisContext *context = lk_redis_get(redis);
    if (context == NULL)
        return NULL;

    va_list args;
    va_start(args, fmt);
    redisReply *reply = redisvCommand(context, fmt, args);
    va_end(args);

    if (reply == NULL)
        lk_redis_broken(redis, context->errstr[0] ? context->errstr : "connection lost");
    return reply;
}

static int parse_count(const char *text, int64_t *count)
{
    char *end;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || value < 0)
        return -1;
    *count = value;
    return 0;
}

int lk_redis_get_count(lk_redis *redis, int64_t post_id, int64_t *count)
{
    char key[64];
    lk_redis_key_count(post_id, key, sizeof(key));

    redisReply *reply = lk_redis_command(redis, "GET %s", key);
    if (reply == NULL)
        return -1;

    int rc = 0;
    if (reply->type == REDIS_REPLY_NIL) {
        *count = 0;
    } else if (reply->type != REDIS_REPLY_STRING || parse_count(reply->str, count) != 0) {
        /* An error reply, such as LOADING while Redis reads its data back:
         * the count is not known yet. */
        lk_log_warn("redis GET %s answered %s, count unknown", key,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "something not a count");
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

/* Queues MULTI, one MGET of the count keys, a SISMEMBER per post when
 * `user_id` is set, and EXEC, without waiting for any answer. */
static int append_post_likes(redisContext *context, const int64_t *post_ids, size_t count,
                             int64_t user_id)
{
    const char *argv[LK_REDIS_MAX_POSTS_READ + 1];
    char keys[LK_REDIS_MAX_POSTS_READ][48];
    argv[0] = "MGET";
    for (size_t i = 0; i < count; i++) {
        lk_redis_key_count(post_ids[i], keys[i], sizeof(keys[i]));
        argv[i + 1] = keys[i];
    }

    if (redisAppendCommand(context, "MULTI") != REDIS_OK ||
        redisAppendCommandArgv(context, (int)count + 1, argv, NULL) != REDIS_OK)
        return -1;

    char member[24];
    snprintf(member, sizeof(member), "%" PRId64, user_id);
    for (size_t i = 0; user_id > 0 && i < count; i++) {
        char users_key[48];
        lk_redis_key_users(post_ids[i], users_key, sizeof(users_key));
        if (redisAppendCommand(context, "SISMEMBER %s %s", users_key, member) != REDIS_OK)
            return -1;
    }
    return redisAppendCommand(context, "EXEC") == REDIS_OK ? 0 : -1;
}

/* Takes the answers of EXEC: the MGET array, then one integer per
 * SISMEMBER. Returns 0, or -1 with what was wrong in `why`. */
static int take_post_likes(const redisReply *exec, const int64_t *post_ids, size_t count,
                           int64_t user_id, int64_t *counts, int *liked, char *why, size_t whylen)
{
    size_t expected = 1 + (user_id > 0 ? count : 0);
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != expected) {
        snprintf(why, whylen, "EXEC answered %s",
                 exec->type == REDIS_REPLY_ERROR ? exec->str : "an unexpected reply");
        return -1;
    }

    const redisReply *values = exec->element[0];
    if (values->type != REDIS_REPLY_ARRAY || values->elements != count) {
        snprintf(why, whylen, "MGET answered %s",
                 values->type == REDIS_REPLY_ERROR ? values->str : "an unexpected reply");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const redisReply *value = values->element[i];
        counts[i] = 0;
        if (value->type != REDIS_REPLY_NIL &&
            (value->type != REDIS_REPLY_STRING || parse_count(value->str, &counts[i]) != 0)) {
            snprintf(why, whylen, "the count of post %" PRId64 " is not a count", post_ids[i]);
            return -1;
        }
    }

    for (size_t i = 0; user_id > 0 && i < count; i++) {
        const redisReply *member = exec->element[i + 1];
        if (member->type != REDIS_REPLY_INTEGER) {
            snprintf(why, whylen, "SISMEMBER answered %s",
                     member->type == REDIS_REPLY_ERROR ? member->str : "an unexpected reply");
            return -1;
        }
        liked[i] = member->integer != 0;
    }
    return 0;
}

int lk_redis_get_post_likes(lk_redis *redis, const int64_t *post_ids, size_t count, int64_t user_id,
                            int64_t *counts, int *liked)
{
    if (count == 0)
        return 0;
    if (count > LK_REDIS_MAX_POSTS_READ)
        return -1;

    redisContext *context = lk_redis_get(redis);
    if (context == NULL)
        return -1;
    if (append_post_likes(context, post_ids, count, user_id) != 0) {
        lk_redis_broken(redis, "out of memory queueing the like reads");
        return -1;
    }

    /* Every answer is read, even after a bad one, so that the connection
     * stays in step: MULTI, one QUEUED per command, then EXEC's. */
    size_t answers = 3 + (user_id > 0 ? count : 0);
    redisReply *exec = NULL;
    for (size_t i = 0; i < answers; i++) {
        void *reply = NULL;
        if (redisGetReply(context, &reply) != REDIS_OK) {
            freeReplyObject(exec);
            lk_redis_broken(redis, context->errstr[0] ? context->errstr : "connection lost");
            return -1;
        }
        freeReplyObject(exec);
        exec = reply;
    }

    char why[256];
    int rc = take_post_likes(exec, post_ids, count, user_id, counts, liked, why, sizeof(why));
    if (rc != 0)
        lk_log_warn("redis: reading the likes of %zu posts failed (%s), likes unknown", count, why);
    freeReplyObject(exec);
    return rc;
}

int lk_redis_key_count(int64_t post_id, char *buf, size_t buflen)
{
    return snprintf(buf, buflen, "likes:post:%" PRId64 ":count", post_id);
}

int lk_redis_key_users(int64_t post_id, char *buf, size_t buflen)
{
    return snprintf(buf, buflen, "likes:post:%" PRId64 ":users", post_id);
}
