/*
 * A Redis connection that reconnects by itself, and the key names every
 * process agrees on.
 *
 * Keys:
 *   likes:post:<id>:count    the like count of a post (string integer)
 *   likes:post:<id>:users    the users who like a post (set)
 *   likes:applied:<topic>:<partition>   highest offset of `topic` whose
 *                            effect is in Redis, kept by the aggregator
 *
 * Channel:
 *   likes:counts             new counts as the aggregator applies them,
 *                            JSON [[post id, count], ...]
 *
 * A handle is used by one thread at a time.
 */
#ifndef LK_REDIS_H
#define LK_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lk_redis lk_redis;

/* Creates a handle; nothing is connected until lk_redis_get(). Commands
 * time out after `timeout_ms`. Returns NULL when out of memory. */
lk_redis *lk_redis_new(const char *host, int port, int timeout_ms);

void lk_redis_free(lk_redis *redis);

/* Returns the live context, connecting first when needed, or NULL when
 * Redis cannot be reached. A change between reachable and unreachable is
 * logged once, not on every attempt. The context stays owned by `redis`. */
redisContext *lk_redis_get(lk_redis *redis);

/* Drops the context after an I/O or protocol error, so that the next
 * lk_redis_get() reconnects. `why` is logged if this is a state change; it
 * may point into the context being dropped (its errstr). */
void lk_redis_broken(lk_redis *redis, const char *why);

/* Runs one command (printf-like, as redisCommand). Returns the reply, which
 * the caller frees with freeReplyObject(), or NULL when Redis is
 * unreachable or the connection failed; an error reply is returned as is. */
redisReply *lk_redis_command(lk_redis *redis, const char *fmt, ...);

/* Reads the like count of a post. Returns 0 with `*count` (0 when Redis has
 * no count for it), or -1 when Redis is unreachable. */
int lk_redis_get_count(lk_redis *redis, int64_t post_id, int64_t *count);

/* Reads, in one round trip and one consistent snapshot (MULTI/EXEC), the
 * like counts of the `count` posts of `post_ids` into `counts` (0 for a post
 * Redis has no count for) and, when `user_id` is positive, whether that user
 * is in each post's set of likers into `liked` (1 or 0; `liked` is not
 * touched, and may be NULL, when `user_id` is 0). At most
 * LK_REDIS_MAX_POSTS_READ posts. Returns 0, or -1 when Redis is unreachable
 * or answered anything else (logged); the arrays are then left partly
 * written. The arrays stay the caller's. */
int lk_redis_get_post_likes(lk_redis *redis, const int64_t *post_ids, size_t count, int64_t user_id,
                            int64_t *counts, int *liked);

#define LK_REDIS_MAX_POSTS_READ 128

#define LK_REDIS_COUNTS_CHANNEL "likes:counts"

int lk_redis_key_count(int64_t post_id, char *buf, size_t buflen);
int lk_redis_key_users(int64_t post_id, char *buf, size_t buflen);

#endif
