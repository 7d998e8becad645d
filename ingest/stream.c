/*
 * GET /v1/stream?posts=1,2,3: live like counts as server-sent events.
 *
 * A stream is a subscriber: for each of its posts, the count last sent and
 * the latest count not yet sent. Nothing else is queued, so a client that
 * reads slowly only ever skips to the newest count, and a stream's memory
 * is fixed by its number of posts.
 *
 * Three threads meet here:
 *   - the libmicrohttpd thread opens a stream (the handler), writes it (the
 *     content reader, stream_read) and frees it (the response's free
 *     callback, stream_free);
 *   - the feed thread (stream_feed.c) hands in new counts from Redis;
 *   - the ticker thread below asks for heartbeats and looks for clients
 *     that left while their connection was suspended.
 *
 * A stream with nothing to send has its connection suspended by the
 * reader; whoever gives it something to send resumes it. `suspended` is
 * read and changed only under the stream's lock, and the thread that
 * clears it resumes the connection, so a connection is resumed once per
 * suspension and never before it.
 *
 * Locks: `registry_lock` (posts to streams, the list of all streams), then
 * a stream's `lock`, never the other way round. A stream stays in the
 * registry until its free callback, which takes `registry_lock`: whoever
 * holds that lock may touch any stream in the registry and its connection.
 */
#include "ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "backoff.h"
#include "log.h"

#define STREAM_MAX_POSTS 100

_Static_assert(STREAM_MAX_POSTS <= INGEST_FEED_MAX_LIMIT,
               "the first counts of a stream are read at once");

/* A comment line goes out after this long without anything else. */
#define HEARTBEAT_MS 15000

/* How often the ticker looks at every stream. */
#define TICK_MS 1000

/* What a client waits before it reconnects after losing the stream. */
#define RETRY_LINE "retry: 2000\n\n"

#define HEARTBEAT_LINE ": keep-alive\n\n"

/* Time a stream may spend unable to write before libmicrohttpd drops it.
 * Suspended time does not count and a resume restarts the clock, so an
 * idle stream, woken by a heartbeat every HEARTBEAT_MS, never gets near it:
 * only a client that stops reading does. Set per connection so that the
 * daemon's timeout for ordinary requests can change without cutting
 * streams. */
#define STREAM_TIMEOUT_S 60

/* Buffer of the content reader when libmicrohttpd cannot use chunks
 * (HTTP/1.0); every stream carries one. */
#define STREAM_BLOCK_SIZE 1024

#define INITIAL_BUCKETS 256

#define STREAMS_QUERY "posts"

typedef struct stream_post {
    int64_t post_id;
    int64_t pending_count; /* the newest count, valid when has_pending */
    int64_t sent_count;    /* -1 until the first event */
    int has_pending;
    size_t entry_pos; /* index in the registry entry; under registry_lock */
} stream_post;

typedef struct stream stream;

struct stream {
    ingest_streams *streams;
    struct MHD_Connection *conn;
    int fd;
    uint64_t request_id;
    stream *prev; /* the list of all streams; under registry_lock */
    stream *next;
    size_t registered_posts; /* under registry_lock */

    pthread_mutex_t lock; /* guards everything below */
    int suspended;
    int closing;   /* end the stream cleanly at the next read */
    int peer_gone; /* the client left: end the stream */
    int heartbeat_due;
    int greeted; /* the retry line went out */
    int64_t last_write_ms;

    size_t post_count;
    stream_post posts[];
};

/* One post with streams, and where each has it among its posts. */
typedef struct stream_ref {
    stream *stream;
    size_t slot;
} stream_ref;

typedef struct post_entry {
    int64_t post_id;
    struct post_entry *next;
    stream_ref *refs;
    size_t ref_count;
    size_t ref_cap;
} post_entry;

struct ingest_streams {
    pthread_mutex_t registry_lock;
    post_entry **buckets;
    size_t bucket_count; /* a power of two */
    size_t entry_count;
    stream *all;
    size_t open;
    int closing;

    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    int stopping;
    pthread_t ticker;
    int ticker_running;
    ingest_stream_feed *feed;
};

/* The registry: post id -> streams, chained buckets */

static size_t bucket_of(int64_t post_id, size_t bucket_count)
{
    uint64_t x = (uint64_t)post_id;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (size_t)(x & (bucket_count - 1));
}

static post_entry *entry_find(const ingest_streams *streams, int64_t post_id)
{
    post_entry *entry = streams->buckets[bucket_of(post_id, streams->bucket_count)];
    while (entry != NULL && entry->post_id != post_id)
        entry = entry->next;
    return entry;
}

/* Doubles the buckets; when out of memory the chains just grow longer. */
static void buckets_grow(ingest_streams *streams)
{
    size_t bucket_count = streams->bucket_count * 2;
    post_entry **buckets = calloc(bucket_count, sizeof(*buckets));
    if (buckets == NULL)
        return;

    for (size_t i = 0; i < streams->bucket_count; i++) {
        post_entry *entry = streams->buckets[i];
        while (entry != NULL) {
            post_entry *next = entry->next;
            size_t b = bucket_of(entry->post_id, bucket_count);
            entry->next = buckets[b];
            buckets[b] = entry;
            entry = next;
        }
    }
    free(streams->buckets);
    streams->buckets = buckets;
    streams->bucket_count = bucket_count;
}

static post_entry *entry_get(ingest_streams *streams, int64_t post_id)
{
    post_entry *entry = entry_find(streams, post_id);
    if (entry != NULL)
        return entry;

    entry = calloc(1, sizeof(*entry));
    if (entry == NULL)
        return NULL;
    if (streams->entry_count >= streams->bucket_count)
        buckets_grow(streams);

    size_t b = bucket_of(post_id, streams->bucket_count);
    entry->post_id = post_id;
    entry->next = streams->buckets[b];
    streams->buckets[b] = entry;
    streams->entry_count++;
    return entry;
}

static void entry_drop(ingest_streams *streams, post_entry *entry)
{
    post_entry **link = &streams->buckets[bucket_of(entry->post_id, streams->bucket_count)];
    while (*link != entry)
        link = &(*link)->next;
    *link = entry->next;
    streams->entry_count--;
    free(entry->refs);
    free(entry);
}

static int entry_add(post_entry *entry, stream *s, size_t slot)
{
    if (entry->ref_count == entry->ref_cap) {
        size_t cap = entry->ref_cap > 0 ? entry->ref_cap * 2 : 4;
        stream_ref *refs = realloc(entry->refs, cap * sizeof(*refs));
        if (refs == NULL)
            return -1;
        entry->refs = refs;
        entry->ref_cap = cap;
    }
    entry->refs[entry->ref_count] = (stream_ref){.stream = s, .slot = slot};
    s->posts[slot].entry_pos = entry->ref_count++;
    return 0;
}

/* Swaps the last reference into the hole, so removal costs the same
 * whether a post has one stream or ten thousand. */
static void entry_remove(ingest_streams *streams, post_entry *entry, size_t pos)
{
    stream_ref last = entry->refs[--entry->ref_count];
    if (pos < entry->ref_count) {
        entry->refs[pos] = last;
        last.stream->posts[last.slot].entry_pos = pos;
    }
    if (entry->ref_count == 0)
        entry_drop(streams, entry);
}

static void registry_remove_locked(ingest_streams *streams, stream *s)
{
    for (size_t slot = 0; slot < s->registered_posts; slot++) {
        post_entry *entry = entry_find(streams, s->posts[slot].post_id);
        entry_remove(streams, entry, s->posts[slot].entry_pos);
    }
    s->registered_posts = 0;

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        streams->all = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    streams->open--;
}

/* Returns 0; 1 when the streams are closing for shutdown; -1 when out of
 * memory. Nothing is registered after a failure. */
static int registry_add(ingest_streams *streams, stream *s)
{
    pthread_mutex_lock(&streams->registry_lock);
    if (streams->closing) {
        pthread_mutex_unlock(&streams->registry_lock);
        return 1;
    }

    s->next = streams->all;
    if (s->next != NULL)
        s->next->prev = s;
    streams->all = s;
    streams->open++;

    int rc = 0;
    for (size_t slot = 0; slot < s->post_count; slot++) {
        post_entry *entry = entry_get(streams, s->posts[slot].post_id);
        if (entry == NULL || entry_add(entry, s, slot) != 0) {
            if (entry != NULL && entry->ref_count == 0)
                entry_drop(streams, entry);
            registry_remove_locked(streams, s);
            rc = -1;
            break;
        }
        s->registered_posts = slot + 1;
    }
    pthread_mutex_unlock(&streams->registry_lock);
    return rc;
}

/* One stream */

static stream *stream_new(ingest_streams *streams, ingest_request *req, const int64_t *post_ids,
                          size_t count)
{
    stream *s = calloc(1, sizeof(*s) + count * sizeof(s->posts[0]));
    if (s == NULL)
        return NULL;

    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->streams = streams;
    s->conn = req->conn;
    s->fd = info != NULL ? info->connect_fd : -1;
    s->request_id = req->id;
    s->last_write_ms = lk_monotonic_ms();
    s->post_count = count;
    for (size_t i = 0; i < count; i++) {
        s->posts[i].post_id = post_ids[i];
        s->posts[i].sent_count = -1;
    }
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

static void stream_destroy(stream *s)
{
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Under the stream's lock: lets the reader run again if it is waiting. */
static void wake_locked(stream *s)
{
    if (!s->suspended)
        return;
    s->suspended = 0;
    MHD_resume_connection(s->conn);
}

static void offer_locked(stream *s, size_t slot, int64_t count)
{
    s->posts[slot].pending_count = count;
    s->posts[slot].has_pending = 1;
    wake_locked(s);
}

/* Appends `text` when it fits in the `max` bytes of `buf`. */
static int append(char *buf, size_t max, size_t *used, const char *text)
{
    size_t len = strlen(text);
    if (len > max - *used)
        return -1;
    memcpy(buf + *used, text, len);
    *used += len;
    return 0;
}

static int append_event(char *buf, size_t max, size_t *used, const stream_post *post)
{
    char event[128];
    snprintf(event, sizeof(event),
             "event: count\ndata: {\"post_id\":%" PRId64 ",\"like_count\":%" PRId64 "}\n\n",
             post->post_id, post->pending_count);
    return append(buf, max, used, event);
}

/* Writes what the stream has to say into `buf`: the retry line first,
 * then every count not sent yet, then a heartbeat if one is due and
 * nothing else went out. Counts that do not fit wait for the next call. */
static size_t drain_locked(stream *s, char *buf, size_t max)
{
    size_t used = 0;
    if (!s->greeted && append(buf, max, &used, RETRY_LINE) == 0)
        s->greeted = 1;

    for (size_t slot = 0; slot < s->post_count; slot++) {
        stream_post *post = &s->posts[slot];
        if (!post->has_pending)
            continue;
        if (post->pending_count != post->sent_count) {
            if (append_event(buf, max, &used, post) != 0)
                break;
            post->sent_count = post->pending_count;
        }
        post->has_pending = 0;
    }

    if (s->heartbeat_due && (used > 0 || append(buf, max, &used, HEARTBEAT_LINE) == 0))
        s->heartbeat_due = 0;
    if (used > 0)
        s->last_write_ms = lk_monotonic_ms();
    return used;
}

static int has_output_locked(const stream *s)
{
    if (s->heartbeat_due || !s->greeted)
        return 1;
    for (size_t slot = 0; slot < s->post_count; slot++) {
        if (s->posts[slot].has_pending)
            return 1;
    }
    return 0;
}

/* libmicrohttpd's content reader, on its thread, whenever the connection
 * can take more. Never returns 0 without having suspended the connection:
 * libmicrohttpd would call it again at once, forever. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    ssize_t result;

    pthread_mutex_lock(&s->lock);
    if (s->closing || s->peer_gone) {
        /* Ended as any stream, even for a client that left: an error
         * would have libmicrohttpd log a line per departed client. It
         * notices the closed socket when it writes or reads next. */
        result = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        size_t used = drain_locked(s, buf, max);
        if (used == 0 && has_output_locked(s)) {
            lk_log_error("request %" PRIu64 ": a %zu byte buffer cannot hold one event, "
                         "closing the stream",
                         s->request_id, max);
            result = MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (used == 0) {
            s->suspended = 1;
            MHD_suspend_connection(s->conn);
            result = 0;
        } else {
            result = (ssize_t)used;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return result;
}

/* The response's free callback: the connection is done with the stream,
 * whether it ended, failed or the client left. */
static void stream_free(void *cls)
{
    stream *s = cls;
    ingest_streams *streams = s->streams;

    pthread_mutex_lock(&streams->registry_lock);
    registry_remove_locked(streams, s);
    size_t open = streams->open;
    pthread_mutex_unlock(&streams->registry_lock);

    lk_log_debug("request %" PRIu64 ": stream of %zu posts closed, %zu still open", s->request_id,
                 s->post_count, open);
    stream_destroy(s);
}

/* Counts from the feed */

void ingest_streams_offer(ingest_streams *streams, const int64_t *post_ids, const int64_t *counts,
                          size_t count)
{
    pthread_mutex_lock(&streams->registry_lock);
    for (size_t i = 0; i < count; i++) {
        post_entry *entry = entry_find(streams, post_ids[i]);
        for (size_t r = 0; entry != NULL && r < entry->ref_count; r++) {
            stream *s = entry->refs[r].stream;
            pthread_mutex_lock(&s->lock);
            offer_locked(s, entry->refs[r].slot, counts[i]);
            pthread_mutex_unlock(&s->lock);
        }
    }
    pthread_mutex_unlock(&streams->registry_lock);
}

size_t ingest_streams_posts(ingest_streams *streams, int64_t **post_ids)
{
    *post_ids = NULL;
    pthread_mutex_lock(&streams->registry_lock);
    size_t count = streams->entry_count;
    int64_t *ids = count > 0 ? malloc(count * sizeof(*ids)) : NULL;
    size_t used = 0;
    for (size_t b = 0; ids != NULL && b < streams->bucket_count; b++) {
        for (post_entry *entry = streams->buckets[b]; entry != NULL; entry = entry->next)
            ids[used++] = entry->post_id;
    }
    pthread_mutex_unlock(&streams->registry_lock);

    *post_ids = ids;
    return ids != NULL ? used : 0;
}

/* The ticker: heartbeats, and clients gone while suspended */

/* A suspended connection is out of libmicrohttpd's sight, which would
 * notice a client that left only when a heartbeat fails to write, twice
 * over. A peek at the socket tells at once: end of file or an error. */
static int peer_left(int fd)
{
    if (fd < 0)
        return 0;
    char byte;
    ssize_t got = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void tick_stream_locked(stream *s, int64_t now)
{
    if (s->closing || s->peer_gone)
        return;

    if (s->suspended && peer_left(s->fd)) {
        s->peer_gone = 1;
        wake_locked(s);
    } else if (now - s->last_write_ms >= HEARTBEAT_MS) {
        s->heartbeat_due = 1;
        wake_locked(s);
    }
}

static void tick(ingest_streams *streams)
{
    int64_t now = lk_monotonic_ms();
    pthread_mutex_lock(&streams->registry_lock);
    for (stream *s = streams->all; s != NULL; s = s->next) {
        pthread_mutex_lock(&s->lock);
        tick_stream_locked(s, now);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&streams->registry_lock);
}

int ingest_streams_wait_stop(ingest_streams *streams, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&streams->stop_lock);
    while (!streams->stopping &&
           pthread_cond_timedwait(&streams->stop_cond, &streams->stop_lock, &until) == 0)
        ;
    int stopping = streams->stopping;
    pthread_mutex_unlock(&streams->stop_lock);
    return stopping;
}

static void *run_ticker(void *arg)
{
    ingest_streams *streams = arg;
    while (!ingest_streams_wait_stop(streams, TICK_MS))
        tick(streams);
    return NULL;
}

/* Life of the whole */

ingest_streams *ingest_streams_new(const lk_config *cfg, char *err, size_t errlen)
{
    ingest_streams *streams = calloc(1, sizeof(*streams));
    if (streams == NULL ||
        (streams->buckets = calloc(INITIAL_BUCKETS, sizeof(post_entry *))) == NULL) {
        free(streams);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    streams->bucket_count = INITIAL_BUCKETS;
    pthread_mutex_init(&streams->registry_lock, NULL);
    pthread_mutex_init(&streams->stop_lock, NULL);

    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&streams->stop_cond, &attr);
    pthread_condattr_destroy(&attr);

    if (pthread_create(&streams->ticker, NULL, run_ticker, streams) != 0) {
        snprintf(err, errlen, "starting the stream ticker thread failed");
        goto failed;
    }
    streams->ticker_running = 1;

    streams->feed = ingest_stream_feed_start(cfg, streams, err, errlen);
    if (streams->feed == NULL)
        goto failed;
    return streams;

failed:
    ingest_streams_free(streams);
    return NULL;
}

size_t ingest_streams_open(ingest_streams *streams)
{
    pthread_mutex_lock(&streams->registry_lock);
    size_t open = streams->open;
    pthread_mutex_unlock(&streams->registry_lock);
    return open;
}

void ingest_streams_close_all(ingest_streams *streams, int grace_ms)
{
    pthread_mutex_lock(&streams->registry_lock);
    streams->closing = 1;
    size_t open = streams->open;
    for (stream *s = streams->all; s != NULL; s = s->next) {
        pthread_mutex_lock(&s->lock);
        s->closing = 1;
        wake_locked(s);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&streams->registry_lock);

    int64_t deadline = lk_monotonic_ms() + grace_ms;
    size_t left = open;
    while ((left = ingest_streams_open(streams)) > 0 && lk_monotonic_ms() < deadline)
        lk_sleep_ms(10, NULL);

    if (left > 0)
        lk_log_warn("%zu of %zu live count streams still open after %d ms, the daemon drops them",
                    left, open, grace_ms);
    else
        lk_log_info("%zu live count streams ended", open);
}

void ingest_streams_free(ingest_streams *streams)
{
    if (streams == NULL)
        return;

    pthread_mutex_lock(&streams->stop_lock);
    streams->stopping = 1;
    pthread_cond_broadcast(&streams->stop_cond);
    pthread_mutex_unlock(&streams->stop_lock);

    ingest_stream_feed_stop(streams->feed);
    if (streams->ticker_running)
        pthread_join(streams->ticker, NULL);

    /* Only a stream whose connection outlived the daemon is left here, which
     * libmicrohttpd does not allow: nothing may point at it any more. */
    if (streams->open > 0)
        lk_log_error("%zu live count streams outlived the http daemon", streams->open);
    for (size_t b = 0; b < streams->bucket_count; b++) {
        while (streams->buckets[b] != NULL)
            entry_drop(streams, streams->buckets[b]);
    }

    pthread_cond_destroy(&streams->stop_cond);
    pthread_mutex_destroy(&streams->stop_lock);
    pthread_mutex_destroy(&streams->registry_lock);
    free(streams->buckets);
    free(streams);
}

/* The handler */

static int parse_post_ids(const char *text, int64_t *post_ids, size_t *count)
{
    *count = 0;
    while (1) {
        size_t len = strcspn(text, ",");
        char id[24];
        if (len == 0 || len >= sizeof(id) || *count == STREAM_MAX_POSTS)
            return -1;
        memcpy(id, text, len);
        id[len] = '\0';

        int64_t post_id;
        if (ingest_parse_positive_id(id, &post_id) != 0)
            return -1;
        for (size_t i = 0; i < *count; i++) {
            if (post_ids[i] == post_id)
                return -1;
        }
        post_ids[(*count)++] = post_id;

        if (text[len] == '\0')
            return 0;
        text += len + 1;
    }
}

static enum MHD_Result count_posts_argument(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    (void)value;
    if (strcmp(key, STREAMS_QUERY) == 0)
        (*(int *)cls)++;
    return MHD_YES;
}

static int parse_query_or_reply(ingest_request *req, int64_t *post_ids, size_t *count)
{
    int occurrences = 0;
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, count_posts_argument, &occurrences);
    const char *posts =
        MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, STREAMS_QUERY);

    if (occurrences != 1 || posts == NULL || parse_post_ids(posts, post_ids, count) != 0) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "posts must be 1 to 100 distinct positive post ids, separated by "
                           "commas, given once");
        return -1;
    }
    return 0;
}

#define ID_ARRAY_LEN (STREAM_MAX_POSTS * 21 + 3)

static int64_t row_id(const PGresult *result, int row)
{
    return strtoll(PQgetvalue(result, row, 0), NULL, 10);
}

/* Asks PostgreSQL, in one query, about the posts not known to exist yet. */
static int check_posts_or_reply(ingest_request *req, const int64_t *post_ids, size_t count)
{
    int64_t unknown[STREAM_MAX_POSTS];
    size_t unknown_count = 0;
    for (size_t i = 0; i < count; i++) {
        if (!ingest_post_set_contains(req->app->known_posts, post_ids[i]))
            unknown[unknown_count++] = post_ids[i];
    }
    if (unknown_count == 0)
        return 0;

    char ids[ID_ARRAY_LEN];
    char err[256];
    ingest_db_id_array(unknown, unknown_count, ids, sizeof(ids));
    const char *params[] = {ids};
    PGresult *result =
        ingest_db_run(req->app->pg, "SELECT id FROM posts WHERE id = ANY($1::bigint[])", 1, params,
                      1, err, sizeof(err));
    if (result == NULL) {
        ingest_reply_unavailable(req, "postgres: looking up %zu posts failed (%s)", unknown_count,
                                 err);
        return -1;
    }

    for (int row = 0; row < PQntuples(result); row++) {
        if (ingest_post_set_add(req->app->known_posts, row_id(result, row)) != 0)
            lk_log_warn("no memory to remember post %" PRId64 ", it will be looked up again",
                        row_id(result, row));
    }
    PQclear(result);

    for (size_t i = 0; i < unknown_count; i++) {
        if (!ingest_post_set_contains(req->app->known_posts, unknown[i])) {
            char message[64];
            snprintf(message, sizeof(message), "no post with id %" PRId64, unknown[i]);
            ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", message);
            return -1;
        }
    }
    return 0;
}

/* Every stream starts with the current count of each of its posts. The
 * stream is registered before they are read, so that a count published
 * meanwhile is not lost: at worst the same count is offered twice, and an
 * unchanged count is never sent again. */
static int initial_counts_or_reply(ingest_request *req, stream *s, const int64_t *post_ids,
                                   size_t count)
{
    int64_t counts[STREAM_MAX_POSTS];
    char err[256];
    if (ingest_post_likes_read(req->app, post_ids, count, 0, counts, NULL, err, sizeof(err)) != 0) {
        ingest_reply_unavailable(req, "reading the counts of %zu posts failed (%s)", count, err);
        return -1;
    }

    pthread_mutex_lock(&s->lock);
    for (size_t slot = 0; slot < count; slot++)
        offer_locked(s, slot, counts[slot]);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int add_stream_headers(struct MHD_Response *response)
{
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") !=
            MHD_YES ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
        MHD_add_response_header(response, "X-Accel-Buffering", "no") != MHD_YES)
        return -1;
    return 0;
}

static void stream_abandon(ingest_streams *streams, stream *s)
{
    pthread_mutex_lock(&streams->registry_lock);
    registry_remove_locked(streams, s);
    pthread_mutex_unlock(&streams->registry_lock);
    stream_destroy(s);
}

enum MHD_Result ingest_stream_get(ingest_request *req)
{
    int64_t post_ids[STREAM_MAX_POSTS];
    size_t count;
    if (parse_query_or_reply(req, post_ids, &count) != 0 ||
        check_posts_or_reply(req, post_ids, count) != 0)
        return req->status != 0 ? MHD_YES : MHD_NO;

    ingest_streams *streams = req->app->streams;
    stream *s = stream_new(streams, req, post_ids, count);
    if (s == NULL)
        return ingest_reply_internal(req, "no memory for a stream");

    int registered = registry_add(streams, s);
    if (registered != 0) {
        stream_destroy(s);
        if (registered > 0)
            return ingest_reply_unavailable(req, "shutting down, no more streams opened");
        return ingest_reply_internal(req, "no memory to register a stream");
    }

    if (initial_counts_or_reply(req, s, post_ids, count) != 0) {
        stream_abandon(streams, s);
        return req->status != 0 ? MHD_YES : MHD_NO;
    }

    struct MHD_Response *response = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_BLOCK_SIZE, stream_read, s, stream_free);
    if (response == NULL) {
        stream_abandon(streams, s);
        return ingest_reply_internal(req, "building the stream response failed (out of memory)");
    }
    if (add_stream_headers(response) != 0) {
        MHD_destroy_response(response); /* calls stream_free */
        return ingest_reply_internal(req, "building the stream response failed (out of memory)");
    }

    MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned int)STREAM_TIMEOUT_S);
    lk_log_debug("request %" PRIu64 ": stream of %zu posts opened", req->id, count);
    return ingest_reply_response(req, MHD_HTTP_OK, response);
}
