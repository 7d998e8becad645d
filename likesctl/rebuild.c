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
#include <unistd.h>

#include "backoff.h"
#include "event.h"
#include "kafka.h"
#include "likesctl.h"
#include "log.h"
#include "pg.h"
#include "redis.h"

#define MAX_PARTITIONS 1024
#define PAGE_ROWS      20000
#define SETTLE_WAIT_MS 30000

typedef struct rebuild {
    const lk_config *cfg;
    lk_redis *redis;
    lk_pg *pg;
    int tty;

    int32_t partition_count;
    int64_t start_offset[MAX_PARTITIONS]; /* the persister's stored position */
    int64_t end_offset[MAX_PARTITIONS];   /* the end once transactions settled */

    uint64_t rows_loaded;
    uint64_t deltas_replayed;
    uint64_t posts_counted;
} rebuild;

static void progress(rebuild *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* On a terminal one line is rewritten in place; elsewhere nothing is shown
 * until the step's summary line. */
static void progress(rebuild *r, const char *fmt, ...)
{
    if (!r->tty)
        return;
    va_list args;
    va_start(args, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, args);
    va_end(args);
}

static void step_done(rebuild *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void step_done(rebuild *r, const char *fmt, ...)
{
    if (r->tty)
        fputs("\r\033[K", stderr);
    va_list args;
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
}

/* Checks and frees the reply of a command that names `what`. */
static int redis_ok(redisReply *reply, const char *what)
{
    int ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    if (!ok)
        fprintf(stderr, "likesctl: redis %s failed: %s\n", what,
                reply != NULL ? reply->str : "redis unreachable");
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* Reads every pipelined reply; returns -1 if any failed. */
static int drain_replies(rebuild *r, redisContext *context, size_t count)
{
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        void *reply = NULL;
        if (redisGetReply(context, &reply) != REDIS_OK) {
            lk_redis_broken(r->redis, context->errstr);
            return -1;
        }
        if (((redisReply *)reply)->type == REDIS_REPLY_ERROR)
            rc = -1;
        freeReplyObject(reply);
    }
    return rc;
}

/* Deletes every key matching `pattern`, a page of SCAN at a time. */
static int delete_matching(rebuild *r, const char *pattern)
{
    char cursor[32] = "0";
    do {
        redisReply *page =
            lk_redis_command(r->redis, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (page == NULL || page->type != REDIS_REPLY_ARRAY || page->elements != 2) {
            freeReplyObject(page);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", page->element[0]->str);

        redisReply *keys = page->element[1];
        int rc = 0;
        if (keys->elements > 0) {
            const char **argv = malloc((keys->elements + 1) * sizeof(*argv));
            if (argv == NULL) {
                freeReplyObject(page);
                return -1;
            }
            argv[0] = "UNLINK";
            for (size_t i = 0; i < keys->elements; i++)
                argv[i + 1] = keys->element[i]->str;
            redisContext *context = lk_redis_get(r->redis);
            redisReply *deleted =
                context ? redisCommandArgv(context, (int)keys->elements + 1, argv, NULL) : NULL;
            rc = deleted != NULL && deleted->type == REDIS_REPLY_INTEGER ? 0 : -1;
            freeReplyObject(deleted);
            free(argv);
        }
        freeReplyObject(page);
        if (rc != 0)
            return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static rd_kafka_t *kafka_client(rebuild *r, const char *isolation)
{
    rd_kafka_conf_t *conf = lk_kafka_conf_new(r->cfg, "likesctl");
    char group[64];
    snprintf(group, sizeof(group), "likesctl-rebuild-%d", (int)getpid());
    if (conf == NULL || lk_kafka_conf_set(conf, "isolation.level", isolation) != 0 ||
        lk_kafka_conf_set(conf, "group.id", group) != 0 ||
        lk_kafka_conf_set(conf, "enable.auto.commit", "false") != 0 ||
        lk_kafka_conf_set(conf, "enable.partition.eof", "true") != 0) {
        if (conf != NULL)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }

    char err[256];
    rd_kafka_t *client = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (client == NULL) {
        fprintf(stderr, "likesctl: kafka client: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return client;
}

static int count_partitions(rebuild *r, rd_kafka_t *client)
{
    const struct rd_kafka_metadata *metadata = NULL;
    rd_kafka_topic_t *topic = rd_kafka_topic_new(client, r->cfg->topic_deltas, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(client, 0, topic, &metadata, 10000);
    rd_kafka_topic_destroy(topic);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || metadata->topic_cnt != 1 ||
        metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "likesctl: reading the partitions of %s failed: %s\n", r->cfg->topic_deltas,
                rd_kafka_err2str(err        ? err
                                 : metadata ? metadata->topics[0].err
                                            : err));
        if (metadata != NULL)
            rd_kafka_metadata_destroy(metadata);
        return -1;
    }
    r->partition_count = metadata->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(metadata);
    return r->partition_count <= MAX_PARTITIONS ? 0 : -1;
}

/* Returns 1 when no transaction is open on any partition of the deltas
 * topic (the last stable offset has reached the high watermark), filling
 * end_offset; 0 when one still is; -1 on failure. */
static int deltas_settled(rebuild *r, rd_kafka_t *committed, rd_kafka_t *uncommitted)
{
    int settled = 1;
    for (int32_t p = 0; p < r->partition_count; p++) {
        int64_t low, stable, high;
        if (rd_kafka_query_watermark_offsets(committed, r->cfg->topic_deltas, p, &low, &stable,
                                             5000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            rd_kafka_query_watermark_offsets(uncommitted, r->cfg->topic_deltas, p, &low, &high,
                                             5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            return -1;
        r->end_offset[p] = stable;
        if (stable != high)
            settled = 0;
    }
    return settled;
}

/* Waits until the windows that passed Redis before the flag was set have
 * committed or aborted their transactions. */
static int wait_for_settled_deltas(rebuild *r)
{
    rd_kafka_t *committed = kafka_client(r, "read_committed");
    rd_kafka_t *uncommitted = kafka_client(r, "read_uncommitted");
    int rc = -1;
    if (committed == NULL || uncommitted == NULL || count_partitions(r, committed) != 0)
        goto done;

    for (int waited = 0; waited <= SETTLE_WAIT_MS; waited += 200) {
        rc = deltas_settled(r, committed, uncommitted);
        if (rc != 0)
            break;
        progress(r, "waiting for open transactions on %s to end (%d ms)", r->cfg->topic_deltas,
                 waited);
        lk_sleep_ms(200, NULL);
    }
    if (rc == 0)
        fprintf(stderr, "likesctl: transactions on %s stayed open for %d s\n", r->cfg->topic_deltas,
                SETTLE_WAIT_MS / 1000);

done:
    if (committed != NULL)
        rd_kafka_destroy(committed);
    if (uncommitted != NULL)
        rd_kafka_destroy(uncommitted);
    return rc == 1 ? 0 : -1;
}

/* Adds every row of post_likes to the users sets, a page at a time. */
static int load_likes(rebuild *r)
{
    char after_post[24] = "0", after_user[24] = "0";
    for (;;) {
        const char *params[] = {after_post, after_user};
        PGconn *conn = lk_pg_get(r->pg);
        PGresult *page = conn ? PQexecParams(conn,
                                             "SELECT post_id, user_id FROM post_likes "
                                             "WHERE (post_id, user_id) > ($1::bigint, $2::bigint) "
                                             "ORDER BY post_id, user_id LIMIT 20000",
                                             2, NULL, params, NULL, NULL, 0)
                              : NULL;
        if (PQresultStatus(page) != PGRES_TUPLES_OK) {
            fprintf(stderr, "likesctl: reading post_likes failed: %s",
                    conn ? PQresultErrorMessage(page) : "postgres unreachable\n");
            PQclear(page);
            return -1;
        }

        int rows = PQntuples(page);
        redisContext *context = lk_redis_get(r->redis);
        if (context == NULL) {
            PQclear(page);
            return -1;
        }
        for (int i = 0; i < rows; i++)
            redisAppendCommand(context, "SADD likes:post:%s:users %s", PQgetvalue(page, i, 0),
                               PQgetvalue(page, i, 1));
        if (rows > 0) {
            snprintf(after_post, sizeof(after_post), "%s", PQgetvalue(page, rows - 1, 0));
            snprintf(after_user, sizeof(after_user), "%s", PQgetvalue(page, rows - 1, 1));
        }
        PQclear(page);

        if (drain_replies(r, context, (size_t)rows) != 0)
            return -1;
        r->rows_loaded += (uint64_t)rows;
        progress(r, "loading likes from postgres: %" PRIu64 " rows", r->rows_loaded);
        if (rows < PAGE_ROWS)
            return 0;
    }
}

static int load_start_offsets(rebuild *r)
{
    for (int32_t p = 0; p < r->partition_count; p++)
        r->start_offset[p] = RD_KAFKA_OFFSET_BEGINNING;

    const char *params[] = {r->cfg->persister_group, r->cfg->topic_deltas};
    PGconn *conn = lk_pg_get(r->pg);
    PGresult *rows = conn ? PQexecParams(conn,
                                         "SELECT partition, next_offset FROM consumer_offsets "
                                         "WHERE consumer_group = $1 AND topic = $2",
                                         2, NULL, params, NULL, NULL, 0)
                          : NULL;
    if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
        fprintf(stderr, "likesctl: reading consumer_offsets failed\n");
        PQclear(rows);
        return -1;
    }
    for (int i = 0; i < PQntuples(rows); i++) {
        long partition = strtol(PQgetvalue(rows, i, 0), NULL, 10);
        if (partition >= 0 && partition < r->partition_count)
            r->start_offset[partition] = strtoll(PQgetvalue(rows, i, 1), NULL, 10);
    }
    PQclear(rows);
    return 0;
}

static void append_delta(redisContext *context, const lk_delta *delta, size_t *commands)
{
    for (size_t i = 0; i < delta->liked_count; i++, (*commands)++)
        redisAppendCommand(context, "SADD likes:post:%" PRId64 ":users %" PRId64, delta->post_id,
                           delta->liked[i]);
    for (size_t i = 0; i < delta->unliked_count; i++, (*commands)++)
        redisAppendCommand(context, "SREM likes:post:%" PRId64 ":users %" PRId64, delta->post_id,
                           delta->unliked[i]);
}

static int apply_delta_message(rebuild *r, const rd_kafka_message_t *msg)
{
    lk_delta delta;
    char why[256];
    if (lk_delta_decode(msg->payload, msg->len, &delta, why, sizeof(why)) != 0) {
        /* The persister skips such a delta too. */
        fprintf(stderr,
                "likesctl: undecodable delta at partition %" PRId32 " offset %" PRId64
                " skipped: %s\n",
                msg->partition, msg->offset, why);
        return 0;
    }

    redisContext *context = lk_redis_get(r->redis);
    size_t commands = 0;
    if (context != NULL)
        append_delta(context, &delta, &commands);
    lk_delta_clear(&delta);
    if (context == NULL || drain_replies(r, context, commands) != 0)
        return -1;
    r->deltas_replayed++;
    return 0;
}

/* Number of partitions whose replay has not reached its end offset. */
static int partitions_left(rebuild *r, const int64_t *position)
{
    int left = 0;
    for (int32_t p = 0; p < r->partition_count; p++)
        left += position[p] < r->end_offset[p];
    return left;
}

/* Applies, in order, the deltas the persister has not stored yet. Set
 * operations make a delta applied twice (it may already be in PostgreSQL's
 * rows) harmless. */
static int replay_deltas(rebuild *r)
{
    rd_kafka_t *consumer = kafka_client(r, "read_committed");
    if (consumer == NULL)
        return -1;

    int64_t position[MAX_PARTITIONS];
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(8);
    for (int32_t p = 0; p < r->partition_count; p++) {
        rd_kafka_topic_partition_list_add(assignment, r->cfg->topic_deltas, p)->offset =
            r->start_offset[p];
        position[p] = r->start_offset[p] < 0 ? 0 : r->start_offset[p];
    }
    rd_kafka_assign(consumer, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);

    int rc = 0;
    while (rc == 0 && partitions_left(r, position) > 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 1000);
        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* Only transaction markers were left before the end. */
            position[msg->partition] = r->end_offset[msg->partition];
        } else if (msg->err) {
            fprintf(stderr, "likesctl: reading %s failed: %s\n", r->cfg->topic_deltas,
                    rd_kafka_message_errstr(msg));
            rc = -1;
        } else if (msg->offset < r->end_offset[msg->partition]) {
            position[msg->partition] = msg->offset + 1;
            rc = apply_delta_message(r, msg);
        }
        rd_kafka_message_destroy(msg);
        progress(r, "replaying deltas: %" PRIu64 " applied, %d partitions to go",
                 r->deltas_replayed, partitions_left(r, position));
    }

    rd_kafka_destroy(consumer);
    return rc;
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

    redisContext *context = lk_redis_get(r->redis);
    redisReply *reply = context ? redisCommandArgv(context, rows + 3, argv, NULL) : NULL;
    int rc = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? 0 : -1;
    freeReplyObject(reply);
    free(argv);
    return rc;
}

static int set_counts(rebuild *r)
{
    char after[24] = "0";
    for (;;) {
        const char *params[] = {after};
        PGconn *conn = lk_pg_get(r->pg);
        PGresult *page = conn ? PQexecParams(conn,
                                             "SELECT id FROM posts WHERE id > $1::bigint "
                                             "ORDER BY id LIMIT 20000",
                                             1, NULL, params, NULL, NULL, 0)
                              : NULL;
        if (PQresultStatus(page) != PGRES_TUPLES_OK) {
            fprintf(stderr, "likesctl: reading posts failed\n");
            PQclear(page);
            return -1;
        }

        int rows = PQntuples(page);
        int rc = rows > 0 ? count_page(r, page, rows) : 0;
        if (rows > 0)
            snprintf(after, sizeof(after), "%s", PQgetvalue(page, rows - 1, 0));
        PQclear(page);
        if (rc != 0)
            return -1;

        r->posts_counted += (uint64_t)rows;
        progress(r, "setting counts: %" PRIu64 " posts", r->posts_counted);
        if (rows < PAGE_ROWS)
            return 0;
    }
}

static int run_steps(rebuild *r)
{
    char when[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &utc);

    if (redis_ok(lk_redis_command(r->redis, "SET likes:maintenance rebuild-%s", when),
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

    if (redis_ok(lk_redis_command(r->redis, "SET likes:state rebuilt-%s", when),
                 "SET likes:state") != 0 ||
        redis_ok(lk_redis_command(r->redis, "DEL likes:maintenance"), "DEL likes:maintenance") != 0)
        return -1;
    step_done(r, "count updates resumed: redis is rebuilt");
    return 0;
}

int likesctl_rebuild_redis(const lk_config *cfg, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "likesctl rebuild-redis takes no arguments\n");
        return 2;
    }

    rebuild r = {.cfg = cfg, .tty = isatty(STDERR_FILENO)};
    r.redis = lk_redis_new(cfg->redis_host, cfg->redis_port, 30000);
    r.pg = lk_pg_new(cfg->pg_dsn);
    if (r.redis == NULL || r.pg == NULL || lk_redis_get(r.redis) == NULL ||
        lk_pg_get(r.pg) == NULL) {
        fprintf(stderr, "likesctl: redis %s:%d or postgres unreachable; nothing changed\n",
                cfg->redis_host, cfg->redis_port);
        lk_redis_free(r.redis);
        lk_pg_free(r.pg);
        return 2;
    }

    int rc = run_steps(&r);
    if (rc != 0)
        fprintf(stderr, "likesctl: the rebuild stopped half-way; count updates stay paused "
                        "until a run of likesctl rebuild-redis completes\n");

    lk_redis_free(r.redis);
    lk_pg_free(r.pg);
    return rc == 0 ? 0 : 2;
}
