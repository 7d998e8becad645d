/*
 * likesctl rebuild-redis: restores the counts in Redis after Redis lost its
 * data, from what PostgreSQL holds plus the deltas the persister has not
 * applied yet, then hands over to the live pipeline.
 *
 * The hand-over works because the aggregator applies a window to Redis
 * before it commits the window's deltas and offsets to Kafka:
 *   1. likes:maintenance makes the aggregators' count script refuse every
 *      window; they hold their windows, commit nothing, and retry.
 *   2. Once no transaction on the deltas topic is open, every window that
 *      was ever committed has its deltas in that topic, and no other will
 *      be committed until the flag goes.
 *   3. PostgreSQL's likes, plus the deltas from the persister's stored
 *      offsets to the end, are exactly the committed windows.
 *   4. Removing the flag lets the aggregators apply their held windows,
 *      which start right after the committed ones: nothing is lost, nothing
 *      counted twice.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "event.h"
#include "kafka.h"
#include "likesctl.h"
#include "progress.h"
#include "stores.h"
#include "topic.h"

#define WHO            "likesctl rebuild-redis"
#define MAX_PARTITIONS 1024
#define PAGE_ROWS      20000
#define SETTLE_WAIT_MS 30000

typedef struct rebuild {
    const lk_config *cfg;
    redisContext *redis;
    PGconn *pg;
    rd_kafka_t *consumer; /* read_committed */
    progress progress;

    int partition_count;
    int64_t start_offset[MAX_PARTITIONS]; /* the persister's stored position */
    int64_t end_offset[MAX_PARTITIONS];   /* the end once transactions settled */

    uint64_t rows_loaded;
    uint64_t deltas_replayed;
    uint64_t posts_counted;
} rebuild;

/* Checks and frees the reply of a command that names `what`. */
static int redis_ok(rebuild *r, redisReply *reply, const char *what)
{
    int ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    if (!ok) {
        fprintf(stderr, "%s: redis %s failed\n", WHO, what);
        stores_redis_failed(r->cfg, WHO, r->redis, reply);
    }
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* Reads every pipelined reply; returns -1 if any failed. */
static int drain_replies(rebuild *r, size_t count)
{
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        void *reply = NULL;
        if (redisGetReply(r->redis, &reply) != REDIS_OK) {
            stores_redis_failed(r->cfg, WHO, r->redis, NULL);
            return -1;
        }
        if (((redisReply *)reply)->type == REDIS_REPLY_ERROR)
            rc = -1;
        freeReplyObject(reply);
    }
    return rc;
}

static int unlink_keys(rebuild *r, const redisReply *keys)
{
    const char **argv = malloc((keys->elements + 1) * sizeof(*argv));
    if (argv == NULL)
        return -1;
    argv[0] = "UNLINK";
    for (size_t i = 0; i < keys->elements; i++)
        argv[i + 1] = keys->element[i]->str;

    redisReply *deleted = redisCommandArgv(r->redis, (int)keys->elements + 1, argv, NULL);
    free(argv);
    return redis_ok(r, deleted, "UNLINK");
}

/* Deletes every key matching `pattern`, a page of SCAN at a time. */
static int delete_matching(rebuild *r, const char *pattern)
{
    char cursor[32] = "0";
    do {
        redisReply *page = redisCommand(r->redis, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (page == NULL || page->type != REDIS_REPLY_ARRAY || page->elements != 2) {
            redis_ok(r, page, "SCAN");
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", page->element[0]->str);
        int rc = page->element[1]->elements > 0 ? unlink_keys(r, page->element[1]) : 0;
        freeReplyObject(page);
        if (rc != 0)
            return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* The high watermark needs a handle that reads uncommitted records: for
 * one that reads committed records only, Kafka answers the last stable
 * offset instead. */
static rd_kafka_t *uncommitted_client(rebuild *r)
{
    rd_kafka_conf_t *conf = lk_kafka_conf_new(r->cfg, "likesctl");
    if (conf == NULL || lk_kafka_conf_set(conf, "isolation.level", "read_uncommitted") != 0) {
        if (conf != NULL)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char err[256];
    rd_kafka_t *client = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (client == NULL) {
        fprintf(stderr, "%s: cannot create a Kafka client: %s\n", WHO, err);
        rd_kafka_conf_destroy(conf);
    }
    return client;
}

/* Returns 1 when no transaction is open on any partition of the deltas
 * topic (the last stable offset has reached the high watermark), with
 * end_offset filled; 0 when one still is; -1 on failure. */
static int deltas_settled(rebuild *r, rd_kafka_t *uncommitted)
{
    int64_t first[MAX_PARTITIONS], high[MAX_PARTITIONS];
    const char *topic = r->cfg->topic_deltas;
    if (topic_offsets(r->consumer, r->cfg, topic, r->partition_count, first, r->end_offset, WHO) !=
            0 ||
        topic_offsets(uncommitted, r->cfg, topic, r->partition_count, first, high, WHO) != 0)
        return -1;

    for (int p = 0; p < r->partition_count; p++) {
        if (r->end_offset[p] != high[p])
            return 0;
    }
    return 1;
}

/* Waits until the windows that passed Redis before the flag was set have
 * committed or aborted their transactions. */
static int wait_for_settled_deltas(rebuild *r)
{
    r->partition_count = topic_partition_count(r->consumer, r->cfg, r->cfg->topic_deltas, WHO);
    if (r->partition_count < 0 || r->partition_count > MAX_PARTITIONS)
        return -1;

    rd_kafka_t *uncommitted = uncommitted_client(r);
    if (uncommitted == NULL)
        return -1;

    int rc = 0;
    for (int waited = 0; rc == 0 && waited <= SETTLE_WAIT_MS; waited += 200) {
        rc = deltas_settled(r, uncommitted);
        if (rc == 0) {
            progress_update(&r->progress, "waiting for open transactions on %s to end",
                            r->cfg->topic_deltas);
            lk_sleep_ms(200, NULL);
        }
    }
    rd_kafka_destroy(uncommitted);

    if (rc == 0)
        fprintf(stderr, "%s: transactions on %s stayed open for %d s\n", WHO, r->cfg->topic_deltas,
                SETTLE_WAIT_MS / 1000);
    return rc == 1 ? 0 : -1;
}

/* Adds every row of post_likes to the users sets, a page at a time. */
static int load_likes(rebuild *r)
{
    char after_post[24] = "0", after_user[24] = "0";
    for (;;) {
        const char *params[] = {after_post, after_user};
        PGresult *page = stores_pg_run(r->pg, WHO, "reading post_likes",
                                       "SELECT post_id, user_id FROM post_likes "
                                       "WHERE (post_id, user_id) > ($1::bigint, $2::bigint) "
                                       "ORDER BY post_id, user_id LIMIT 20000",
                                       2, params, PGRES_TUPLES_OK);
        if (page == NULL)
            return -1;

        int rows = PQntuples(page);
        for (int i = 0; i < rows; i++)
            redisAppendCommand(r->redis, "SADD likes:post:%s:users %s", PQgetvalue(page, i, 0),
                               PQgetvalue(page, i, 1));
        if (rows > 0) {
            snprintf(after_post, sizeof(after_post), "%s", PQgetvalue(page, rows - 1, 0));
            snprintf(after_user, sizeof(after_user), "%s", PQgetvalue(page, rows - 1, 1));
        }
        PQclear(page);

        if (drain_replies(r, (size_t)rows) != 0)
            return -1;
        r->rows_loaded += (uint64_t)rows;
        progress_update(&r->progress, "loading likes from postgres: %" PRIu64 " rows",
                        r->rows_loaded);
        if (rows < PAGE_ROWS)
            return 0;
    }
}

static int load_start_offsets(rebuild *r)
{
    for (int p = 0; p < r->partition_count; p++)
        r->start_offset[p] = 0;

    const char *params[] = {r->cfg->persister_group, r->cfg->topic_deltas};
    PGresult *rows = stores_pg_run(r->pg, WHO, "reading consumer_offsets",
                                   "SELECT partition, next_offset FROM consumer_offsets "
                                   "WHERE consumer_group = $1 AND topic = $2",
                                   2, params, PGRES_TUPLES_OK);
    if (rows == NULL)
        return -1;
    for (int i = 0; i < PQntuples(rows); i++) {
        long partition = strtol(PQgetvalue(rows, i, 0), NULL, 10);
        if (partition >= 0 && partition < r->partition_count)
            r->start_offset[partition] = strtoll(PQgetvalue(rows, i, 1), NULL, 10);
    }
    PQclear(rows);
    return 0;
}

/* Applies one delta as set operations: a delta applied twice (it may be in
 * PostgreSQL's rows already) changes nothing more. */
static int apply_delta(const rd_kafka_message_t *record, void *opaque)
{
    rebuild *r = opaque;
    lk_delta delta;
    char why[256];
    if (lk_delta_decode(record->payload, record->len, &delta, why, sizeof(why)) != 0) {
        /* The persister skips such a delta too. */
        progress_clear(&r->progress);
        fprintf(stderr,
                "%s: undecodable delta at partition %" PRId32 " offset %" PRId64 " skipped: %s\n",
                WHO, record->partition, record->offset, why);
        return 0;
    }

    for (size_t i = 0; i < delta.liked_count; i++)
        redisAppendCommand(r->redis, "SADD likes:post:%" PRId64 ":users %" PRId64, delta.post_id,
                           delta.liked[i]);
    for (size_t i = 0; i < delta.unliked_count; i++)
        redisAppendCommand(r->redis, "SREM likes:post:%" PRId64 ":users %" PRId64, delta.post_id,
                           delta.unliked[i]);
    size_t commands = delta.liked_count + delta.unliked_count;
    lk_delta_clear(&delta);
    if (drain_replies(r, commands) != 0)
        return -1;

    r->deltas_replayed++;
    progress_update(&r->progress, "replaying deltas: %" PRIu64 " applied", r->deltas_replayed);
    return 0;
}

/* Applies, in order, the deltas the persister has not stored yet. */
static int replay_deltas(rebuild *r)
{
    for (int p = 0; p < r->partition_count; p++) {
        if (topic_read(r->consumer, r->cfg->topic_deltas, p, r->start_offset[p], r->end_offset[p],
                       apply_delta, r, WHO) != 0)
            return -1;
    }
    return 0;
}

/* Sets every post's count to the size of its users set, a page of posts
 * at a time, in one script call per page. */
static const char count_script[] =
    "for _, post in ipairs(ARGV) do\n"
    "  local count = redis.call('SCARD', 'likes:post:' .. post .. ':users')\n"
    "  redis.call('SET', 'likes:post:' .. post .. ':count', count)\n"
    "end\n"
    "return #ARGV\n";

static int count_page(rebuild *r, PGresult *page, int rows)
{
    const char **argv = malloc(((size_t)rows + 3) * sizeof(*argv));
    if (argv == NULL)
        return -1;
    argv[0] = "EVAL";
    argv[1] = count_script;
    argv[2] = "0";
    for (int i = 0; i < rows; i++)
        argv[i + 3] = PQgetvalue(page, i, 0);

    redisReply *reply = redisCommandArgv(r->redis, rows + 3, argv, NULL);
    free(argv);
    return redis_ok(r, reply, "EVAL of the count script");
}

static int set_counts(rebuild *r)
{
    char after[24] = "0";
    for (;;) {
        const char *params[] = {after};
        PGresult *page = stores_pg_run(r->pg, WHO, "reading posts",
                                       "SELECT id FROM posts WHERE id > $1::bigint "
                                       "ORDER BY id LIMIT 20000",
                                       1, params, PGRES_TUPLES_OK);
        if (page == NULL)
            return -1;

        int rows = PQntuples(page);
        int rc = rows > 0 ? count_page(r, page, rows) : 0;
        if (rows > 0)
            snprintf(after, sizeof(after), "%s", PQgetvalue(page, rows - 1, 0));
        PQclear(page);
        if (rc != 0)
            return -1;

        r->posts_counted += (uint64_t)rows;
        progress_update(&r->progress, "setting counts: %" PRIu64 " posts", r->posts_counted);
        if (rows < PAGE_ROWS)
            return 0;
    }
}

static void step_done(rebuild *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A finished step: its line on stdout, the progress line cleared. */
static void step_done(rebuild *r, const char *fmt, ...)
{
    progress_clear(&r->progress);
    va_list args;
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
}

static int run_steps(rebuild *r)
{
    char when[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &utc);

    if (redis_ok(r, redisCommand(r->redis, "SET likes:maintenance rebuild-%s", when),
                 "SET likes:maintenance") != 0)
        return -1;
    step_done(r, "count updates paused: the aggregators hold their windows");

    if (wait_for_settled_deltas(r) != 0)
        return -1;
    step_done(r, "no transaction open on %s", r->cfg->topic_deltas);

    if (delete_matching(r, "likes:post:*") != 0 || delete_matching(r, "likes:applied:*") != 0)
        return -1;
    step_done(r, "old counts and applied offsets removed");

    if (load_likes(r) != 0)
        return -1;
    step_done(r, "%" PRIu64 " likes loaded from postgres", r->rows_loaded);

    if (load_start_offsets(r) != 0 || replay_deltas(r) != 0)
        return -1;
    step_done(r, "%" PRIu64 " deltas replayed from %s", r->deltas_replayed, r->cfg->topic_deltas);

    if (set_counts(r) != 0)
        return -1;
    step_done(r, "counts set for %" PRIu64 " posts", r->posts_counted);

    if (redis_ok(r, redisCommand(r->redis, "SET likes:state rebuilt-%s", when),
                 "SET likes:state") != 0 ||
        redis_ok(r, redisCommand(r->redis, "DEL likes:maintenance"), "DEL likes:maintenance") != 0)
        return -1;
    step_done(r, "count updates resumed: redis is rebuilt");
    return 0;
}

int likesctl_rebuild_redis(const lk_config *cfg, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "%s takes no arguments\n", WHO);
        return 2;
    }

    rebuild r = {.cfg = cfg};
    progress_start(&r.progress);
    r.redis = stores_redis_connect(cfg, WHO);
    r.pg = r.redis != NULL ? stores_pg_connect(cfg, WHO) : NULL;
    r.consumer = r.pg != NULL ? topic_consumer_new(cfg, NULL, WHO) : NULL;

    int rc = 2;
    if (r.consumer != NULL) {
        rc = run_steps(&r) == 0 ? 0 : 2;
        if (rc != 0)
            fprintf(stderr,
                    "%s: stopped half-way; count updates stay paused until a run "
                    "completes\n",
                    WHO);
    } else {
        fprintf(stderr, "%s: nothing changed\n", WHO);
    }

    if (r.consumer != NULL)
        topic_consumer_free(r.consumer);
    if (r.pg != NULL)
        PQfinish(r.pg);
    if (r.redis != NULL)
        redisFree(r.redis);
    return rc;
}
