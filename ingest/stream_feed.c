/*
 * The feed of live counts: a thread subscribed to the Redis channel where
 * the aggregator publishes each window's new counts, handing them to the
 * streams of stream.c.
 *
 * A subscribed connection can do nothing else, so the feed has one of its
 * own, and a second, ordinary one to read counts. Messages published while
 * the subscription is down are gone for good: when Redis drops, the feed
 * reconnects with backoff and, once subscribed again, re-reads the count of
 * every post that has a stream.
 */
#include "ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "json.h"
#include "log.h"

#define CONNECT_TIMEOUT_MS 1000

/* How long a wait for the next message lasts before the thread checks
 * whether it should stop. */
#define POLL_MS 200

/* A PING goes out this often; a connection silent for SILENCE_MS, PING
 * answers included, is taken for dead: a Redis host that vanished without
 * closing the connection would otherwise leave the feed waiting forever. */
#define PING_MS    10000
#define SILENCE_MS 30000

/* After a failed re-read of the counts, the next try waits this long. */
#define REFRESH_RETRY_MS 1000

enum feed_state {
    FEED_STARTING,
    FEED_SUBSCRIBED,
    FEED_LOST,
};

struct ingest_stream_feed {
    ingest_streams *streams;
    char host[128];
    int port;
    lk_redis *reader; /* reads counts back; used by the feed thread only */
    pthread_t thread;
    int running;
    enum feed_state state; /* for logging changes only */
};

/* State changes, logged once each */

static void note_subscribed(ingest_stream_feed *feed)
{
    if (feed->state == FEED_STARTING)
        lk_log_info("redis %s:%d: subscribed to %s for live counts", feed->host, feed->port,
                    LK_REDIS_COUNTS_CHANNEL);
    else if (feed->state == FEED_LOST)
        lk_log_info("redis %s:%d: subscribed to %s again, re-reading the counts of open streams",
                    feed->host, feed->port, LK_REDIS_COUNTS_CHANNEL);
    feed->state = FEED_SUBSCRIBED;
}

static void note_lost(ingest_stream_feed *feed, const char *why)
{
    if (feed->state != FEED_LOST)
        lk_log_warn("redis %s:%d: no subscription to %s (%s), live counts pause; retrying until "
                    "it is back",
                    feed->host, feed->port, LK_REDIS_COUNTS_CHANNEL, why);
    feed->state = FEED_LOST;
}

/* Messages */

/* Hands the counts of one message, [[post id, count], ...], to the streams. */
static void take_counts(ingest_stream_feed *feed, const char *text, size_t len)
{
    char err[128];
    json_object *doc = lk_json_parse(text, len, err, sizeof(err));
    if (doc == NULL || !json_object_is_type(doc, json_type_array)) {
        lk_log_warn("redis %s: a message that is not an array of counts (%s), ignored",
                    LK_REDIS_COUNTS_CHANNEL, doc == NULL ? err : "not an array");
        json_object_put(doc);
        return;
    }

    size_t count = json_object_array_length(doc);
    int64_t *post_ids = malloc((count + 1) * sizeof(*post_ids));
    int64_t *counts = malloc((count + 1) * sizeof(*counts));
    size_t used = 0;
    for (size_t i = 0; post_ids != NULL && counts != NULL && i < count; i++) {
        json_object *pair = json_object_array_get_idx(doc, i);
        json_object *post = json_object_array_get_idx(pair, 0);
        json_object *value = json_object_array_get_idx(pair, 1);
        if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2 ||
            !json_object_is_type(post, json_type_int) ||
            !json_object_is_type(value, json_type_int) || json_object_get_int64(post) <= 0 ||
            json_object_get_int64(value) < 0)
            continue;
        post_ids[used] = json_object_get_int64(post);
        counts[used++] = json_object_get_int64(value);
    }

    if (post_ids == NULL || counts == NULL)
        lk_log_error("no memory for a message of %zu counts, ignored", count);
    else if (used < count)
        lk_log_warn("redis %s: %zu of %zu entries are not [post id, count], ignored",
                    LK_REDIS_COUNTS_CHANNEL, count - used, count);
    if (used > 0)
        ingest_streams_offer(feed->streams, post_ids, counts, used);
    free(post_ids);
    free(counts);
    json_object_put(doc);
}

/* A subscribed connection receives ["message", channel, payload] and the
 * ["pong", ""] answers to PING; anything else is ignored. */
static void take_reply(ingest_stream_feed *feed, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    const redisReply *kind = reply->element[0];
    const redisReply *payload = reply->element[2];
    if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "message") == 0 &&
        payload->type == REDIS_REPLY_STRING)
        take_counts(feed, payload->str, payload->len);
}

/* The connection */

static void copy_context_error(const redisContext *context, const char *fallback, char *why,
                               size_t whylen)
{
    snprintf(why, whylen, "%s",
             context != NULL && context->errstr[0] != '\0' ? context->errstr : fallback);
}

/* Connects and subscribes. Returns the context, or NULL with the reason in
 * `why`. */
static redisContext *subscribe(ingest_stream_feed *feed, char *why, size_t whylen)
{
    struct timeval timeout = {
        .tv_sec = CONNECT_TIMEOUT_MS / 1000,
        .tv_usec = (CONNECT_TIMEOUT_MS % 1000) * 1000,
    };
    redisContext *context = redisConnectWithTimeout(feed->host, feed->port, timeout);
    if (context == NULL || context->err != 0) {
        copy_context_error(context, "out of memory", why, whylen);
        goto failed;
    }
    redisSetTimeout(context, timeout);

    redisReply *reply = redisCommand(context, "SUBSCRIBE %s", LK_REDIS_COUNTS_CHANNEL);
    if (reply == NULL) {
        copy_context_error(context, "connection lost", why, whylen);
        goto failed;
    }
    int subscribed = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
                     reply->element[0]->type == REDIS_REPLY_STRING &&
                     strcmp(reply->element[0]->str, "subscribe") == 0;
    snprintf(why, whylen, "SUBSCRIBE answered %s",
             reply->type == REDIS_REPLY_ERROR ? reply->str : "an unexpected reply");
    freeReplyObject(reply);
    if (subscribed)
        return context;

failed:
    if (context != NULL)
        redisFree(context);
    return NULL;
}

static int send_ping(redisContext *context)
{
    if (redisAppendCommand(context, "PING") != REDIS_OK)
        return -1;
    int done = 0;
    while (!done) {
        if (redisBufferWrite(context, &done) != REDIS_OK)
            return -1;
    }
    return 0;
}

/* Takes every complete reply already read. */
static int take_replies(ingest_stream_feed *feed, redisContext *context)
{
    while (1) {
        void *reply = NULL;
        if (redisGetReplyFromReader(context, &reply) != REDIS_OK)
            return -1;
        if (reply == NULL)
            return 0;
        take_reply(feed, reply);
        freeReplyObject(reply);
    }
}

/* Re-reads the count of every post with a stream and offers it: whatever
 * was published while the feed was not listening is lost. A stream sends
 * only the counts that differ from what it last sent. */
static int refresh(ingest_stream_feed *feed)
{
    int64_t *post_ids;
    size_t count = ingest_streams_posts(feed->streams, &post_ids);

    int rc = 0;
    for (size_t start = 0; start < count; start += LK_REDIS_MAX_POSTS_READ) {
        size_t chunk =
            count - start < LK_REDIS_MAX_POSTS_READ ? count - start : LK_REDIS_MAX_POSTS_READ;
        int64_t counts[LK_REDIS_MAX_POSTS_READ];
        if (lk_redis_get_post_likes(feed->reader, post_ids + start, chunk, 0, counts, NULL) != 0) {
            rc = -1;
            break;
        }
        ingest_streams_offer(feed->streams, post_ids + start, counts, chunk);
    }
    free(post_ids);

    if (rc == 0 && count > 0)
        lk_log_info("re-read the counts of %zu posts with open streams", count);
    return rc;
}

/* Serves one subscribed connection until it fails (the reason in `why`)
 * or the streams stop. */
static void listen_on(ingest_stream_feed *feed, redisContext *context, char *why, size_t whylen)
{
    int64_t now = lk_monotonic_ms();
    int refresh_due = 1;
    int64_t refresh_at = now;
    int64_t heard_at = now;
    int64_t ping_at = now + PING_MS;

    while (!ingest_streams_wait_stop(feed->streams, 0)) {
        if (refresh_due && now >= refresh_at) {
            refresh_due = refresh(feed) != 0;
            refresh_at = now + REFRESH_RETRY_MS;
        }

        struct pollfd readable = {.fd = context->fd, .events = POLLIN};
        int ready = poll(&readable, 1, POLL_MS);
        now = lk_monotonic_ms();
        if (ready < 0 && errno != EINTR) {
            snprintf(why, whylen, "poll: %s", strerror(errno));
            return;
        }

        if (ready > 0) {
            if (redisBufferRead(context) != REDIS_OK || take_replies(feed, context) != 0) {
                copy_context_error(context, "connection lost", why, whylen);
                return;
            }
            heard_at = now;
        }

        if (now - heard_at > SILENCE_MS) {
            snprintf(why, whylen, "no answer for %d s", SILENCE_MS / 1000);
            return;
        }
        if (now >= ping_at) {
            if (send_ping(context) != 0) {
                copy_context_error(context, "connection lost", why, whylen);
                return;
            }
            ping_at = now + PING_MS;
        }
    }
}

static void *run_feed(void *arg)
{
    ingest_stream_feed *feed = arg;
    lk_backoff backoff;
    lk_backoff_init(&backoff, 50, 2000);

    while (!ingest_streams_wait_stop(feed->streams, 0)) {
        char why[256];
        redisContext *context = subscribe(feed, why, sizeof(why));
        if (context == NULL) {
            note_lost(feed, why);
            ingest_streams_wait_stop(feed->streams, lk_backoff_next(&backoff));
            continue;
        }

        lk_backoff_reset(&backoff);
        note_subscribed(feed);
        why[0] = '\0';
        listen_on(feed, context, why, sizeof(why));
        redisFree(context);
        if (why[0] != '\0')
            note_lost(feed, why);
    }
    return NULL;
}

ingest_stream_feed *ingest_stream_feed_start(const lk_config *cfg, ingest_streams *streams,
                                             char *err, size_t errlen)
{
    ingest_stream_feed *feed = calloc(1, sizeof(*feed));
    if (feed == NULL || (feed->reader = lk_redis_new(cfg->redis_host, cfg->redis_port,
                                                     CONNECT_TIMEOUT_MS)) == NULL) {
        free(feed);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    feed->streams = streams;
    snprintf(feed->host, sizeof(feed->host), "%s", cfg->redis_host);
    feed->port = cfg->redis_port;
    feed->state = FEED_STARTING;

    if (pthread_create(&feed->thread, NULL, run_feed, feed) != 0) {
        snprintf(err, errlen, "starting the live count feed thread failed");
        lk_redis_free(feed->reader);
        free(feed);
        return NULL;
    }
    feed->running = 1;
    return feed;
}

void ingest_stream_feed_stop(ingest_stream_feed *feed)
{
    if (feed == NULL)
        return;
    if (feed->running)
        pthread_join(feed->thread, NULL);
    lk_redis_free(feed->reader);
    free(feed);
}
