#include "persister.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pairs.h"
#include "pg.h"
#include "store.h"

/* A batch is committed after this long or this many messages. Larger
 * batches cost PostgreSQL far less per row; the delay only holds back the
 * durable copy, never the live count. */
#define BATCH_MAX_MS       200
#define BATCH_MAX_MESSAGES 5000

#define MAX_PARTITIONS       1024
#define STATEMENT_TIMEOUT_MS 10000

typedef struct persister {
    const lk_config *cfg;
    volatile sig_atomic_t *stop;
    int fatal;

    rd_kafka_t *consumer;
    lk_pg *pg;
    store *store;
    lk_pairs *batch;

    /* Per partition: owned now, its position known from the table, the
     * offset this member believes the table holds, and the next offset
     * the open batch moves it to (-1 when the batch has nothing from it). */
    unsigned char assigned[MAX_PARTITIONS];
    unsigned char positioned[MAX_PARTITIONS];
    int64_t stored[MAX_PARTITIONS];
    int64_t next_offset[MAX_PARTITIONS];
    int need_positions;
    int64_t positions_tried_ms;

    int batch_open;
    int64_t batch_opened_ms;
    size_t batch_messages;
} persister;

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void batch_reset(persister *p)
{
    lk_pairs_clear(p->batch);
    for (int i = 0; i < MAX_PARTITIONS; i++)
        p->next_offset[i] = -1;
    p->batch_open = 0;
    p->batch_messages = 0;
}

static void add_users(persister *p, const lk_delta *delta, const int64_t *users, size_t count,
                      lk_action action, const rd_kafka_message_t *msg)
{
    for (size_t i = 0; i < count; i++) {
        lk_like_event ev = {.action = action, .user_id = users[i], .post_id = delta->post_id};
        if (lk_pairs_set(p->batch, &ev, msg->partition, msg->offset) != 0) {
            lk_log_error("out of memory growing the batch; exiting");
            p->fatal = 1;
            return;
        }
    }
}

static void batch_take(persister *p, const rd_kafka_message_t *msg)
{
    if (msg->partition < 0 || msg->partition >= MAX_PARTITIONS) {
        lk_log_error("message from partition %" PRId32 " beyond the supported %d; exiting",
                     msg->partition, MAX_PARTITIONS);
        p->fatal = 1;
        return;
    }
    /* Fetched before the position was known (postgres was down at
     * assignment): it will be read again after the seek. */
    if (!p->positioned[msg->partition])
        return;

    if (!p->batch_open) {
        p->batch_open = 1;
        p->batch_opened_ms = now_ms();
    }
    p->next_offset[msg->partition] = msg->offset + 1;
    p->batch_messages++;

    lk_delta delta;
    char reason[256];
    if (lk_delta_decode(msg->payload, msg->len, &delta, reason, sizeof(reason)) != 0) {
        lk_log_error("undecodable delta at %s [%" PRId32 "] offset %" PRId64 " skipped: %s",
                     rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, reason);
        return;
    }
    add_users(p, &delta, delta.liked, delta.liked_count, LK_ACTION_LIKE, msg);
    add_users(p, &delta, delta.unliked, delta.unliked_count, LK_ACTION_UNLIKE, msg);
    lk_delta_clear(&delta);
}

static size_t batch_positions(persister *p, store_position *positions)
{
    size_t count = 0;
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        if (p->next_offset[i] >= 0)
            positions[count++] = (store_position){
                .partition = i, .stored = p->stored[i], .next_offset = p->next_offset[i]};
    }
    return count;
}

/* Reads the stored offsets of every assigned partition and seeks there.
 * Until it succeeds the partitions stay paused. */
static void reposition(persister *p)
{
    int32_t partitions[MAX_PARTITIONS] = {0};
    int64_t offsets[MAX_PARTITIONS];
    size_t count = 0;
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        if (p->assigned[i])
            partitions[count++] = i;
    }

    p->positions_tried_ms = now_ms();
    if (store_load_offsets(p->store, partitions, offsets, count) != 0)
        return;

    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)count);
    for (size_t i = 0; i < count; i++) {
        int64_t offset = offsets[i] == STORE_NO_OFFSET ? RD_KAFKA_OFFSET_BEGINNING : offsets[i];
        rd_kafka_topic_partition_list_add(list, p->cfg->topic_deltas, partitions[i])->offset =
            offset;
    }

    /* The timeout is mis-scaled in librdkafka 2.0: -1 is safe. */
    rd_kafka_error_t *error = rd_kafka_seek_partitions(p->consumer, list, -1);
    if (error == NULL) {
        for (size_t i = 0; i < count; i++) {
            p->stored[partitions[i]] = offsets[i];
            p->positioned[partitions[i]] = 1;
        }
        rd_kafka_resume_partitions(p->consumer, list);
        p->need_positions = 0;
        lk_log_info("positions of %zu partitions read from postgres; consuming", count);
    } else {
        lk_log_warn("seeking to the stored offsets failed: %s; will retry",
                    rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void pause_all(persister *p)
{
    rd_kafka_topic_partition_list_t *assignment = NULL;
    if (rd_kafka_assignment(p->consumer, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(p->consumer, assignment);
        rd_kafka_topic_partition_list_destroy(assignment);
    }
    memset(p->positioned, 0, sizeof(p->positioned));
    p->need_positions = 1;
}

/* Commits the open batch, retrying while PostgreSQL is down when `patient`
 * (the consume loop); at revocation or shutdown it gives up after a few
 * tries, and the next reader starts from the stored offsets anyway. */
static void batch_flush(persister *p, int patient)
{
    if (!p->batch_open)
        return;

    store_position positions[MAX_PARTITIONS];
    size_t position_count = batch_positions(p, positions);
    size_t pair_count = lk_pairs_count(p->batch);
    const lk_pair *pairs = lk_pairs_sorted(p->batch);
    if (pairs == NULL) {
        lk_log_error("out of memory sorting the batch; exiting");
        p->fatal = 1;
        return;
    }

    lk_backoff backoff;
    lk_backoff_init(&backoff, 100, 5000);
    for (int attempt = 1;; attempt++) {
        size_t changed = 0;
        store_result verdict =
            store_commit(p->store, pairs, pair_count, positions, position_count, &changed);

        if (verdict == STORE_COMMITTED) {
            for (size_t i = 0; i < position_count; i++)
                p->stored[positions[i].partition] = positions[i].next_offset;
            lk_log_debug("batch of %zu messages, %zu pairs committed, %zu counts changed",
                         p->batch_messages, pair_count, changed);
            break;
        }
        if (verdict == STORE_FENCED) {
            pause_all(p);
            break;
        }
        if (*p->stop || (!patient && attempt >= 3)) {
            lk_log_warn("batch of %zu messages not committed; it will be read again",
                        p->batch_messages);
            break;
        }
        lk_sleep_ms(lk_backoff_next(&backoff), p->stop);
    }
    batch_reset(p);
}

/* Positions come from the table: on assignment the offsets stored there
 * are handed to rd_kafka_assign. While PostgreSQL is down the partitions
 * are assigned paused and positioned later by the consume loop. */
static void assign_from_table(persister *p, rd_kafka_topic_partition_list_t *partitions)
{
    int32_t ids[MAX_PARTITIONS] = {0};
    int64_t offsets[MAX_PARTITIONS];
    size_t count = 0;
    for (int i = 0; i < partitions->cnt && count < MAX_PARTITIONS; i++) {
        ids[count++] = partitions->elems[i].partition;
        p->assigned[partitions->elems[i].partition] = 1;
    }

    if (store_load_offsets(p->store, ids, offsets, count) != 0) {
        lk_log_warn("stored offsets unreadable; partitions stay paused until postgres answers");
        rd_kafka_assign(p->consumer, partitions);
        pause_all(p);
        return;
    }

    for (size_t i = 0; i < count; i++) {
        partitions->elems[i].offset =
            offsets[i] == STORE_NO_OFFSET ? RD_KAFKA_OFFSET_BEGINNING : offsets[i];
        p->stored[ids[i]] = offsets[i];
        p->positioned[ids[i]] = 1;
    }
    rd_kafka_assign(p->consumer, partitions);
}

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *partitions)
{
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < partitions->cnt && used < sizeof(list) - 48; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%" PRId32 "@%" PRId64,
                                 i ? "," : "", partitions->elems[i].partition,
                                 partitions->elems[i].offset);
    lk_log_info("%s partitions [%s]", what, list);
}

static void on_rebalance(rd_kafka_t *consumer, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    persister *p = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign_from_table(p, partitions);
        log_partitions("assigned", partitions);
        return;
    }

    log_partitions("revoked", partitions);
    batch_flush(p, 0);
    rd_kafka_assign(consumer, NULL);
    memset(p->assigned, 0, sizeof(p->assigned));
    memset(p->positioned, 0, sizeof(p->positioned));
    p->need_positions = 0;
}

static void handle_consumer_error(persister *p, const rd_kafka_message_t *msg)
{
    char fatal[256];
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(p->consumer, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        lk_log_error("kafka consumer failed fatally: %s; exiting", fatal);
        p->fatal = 1;
        return;
    }
    /* Transport errors are retried by librdkafka, which logs them too. */
    lk_log_debug("kafka consumer: %s", rd_kafka_message_errstr(msg));
}

static int batch_due(const persister *p)
{
    return p->batch_open && (now_ms() - p->batch_opened_ms >= BATCH_MAX_MS ||
                             p->batch_messages >= BATCH_MAX_MESSAGES);
}

static int poll_timeout_ms(const persister *p)
{
    if (!p->batch_open)
        return 100;
    int64_t left = p->batch_opened_ms + BATCH_MAX_MS - now_ms();
    return left < 1 ? 1 : (int)left;
}

static void consume_loop(persister *p)
{
    while (!*p->stop && !p->fatal) {
        if (p->need_positions && now_ms() - p->positions_tried_ms >= 1000)
            reposition(p);

        rd_kafka_message_t *msg = rd_kafka_consumer_poll(p->consumer, poll_timeout_ms(p));
        if (msg != NULL) {
            if (msg->err)
                handle_consumer_error(p, msg);
            else
                batch_take(p, msg);
            rd_kafka_message_destroy(msg);
        }

        if (batch_due(p))
            batch_flush(p, 1);
    }
}

int persister_run(const lk_config *cfg, volatile sig_atomic_t *stop)
{
    persister p = {.cfg = cfg, .stop = stop};
    int rc = -1;

    p.pg = lk_pg_new(cfg->pg_dsn);
    p.batch = lk_pairs_new();
    if (p.pg == NULL || p.batch == NULL)
        goto done;
    lk_pg_set_statement_timeout(p.pg, STATEMENT_TIMEOUT_MS);

    p.store = store_new(p.pg, cfg->persister_group, cfg->topic_deltas);
    if (p.store == NULL)
        goto done;
    batch_reset(&p);

    p.consumer = lk_kafka_consumer_new(cfg, "persister", cfg->persister_group, cfg->topic_deltas,
                                       on_rebalance, &p);
    if (p.consumer == NULL)
        goto done;

    lk_log_info("consuming %s in group %s as %s, batches of up to %d ms", cfg->topic_deltas,
                cfg->persister_group, cfg->instance_id, BATCH_MAX_MS);
    consume_loop(&p);
    if (!p.fatal)
        batch_flush(&p, 0);
    rc = p.fatal ? -1 : 0;

    /* Closing leaves the group; the revocation it triggers commits nothing
     * more, the batch being flushed already. */
    rd_kafka_consumer_close(p.consumer);
    rd_kafka_destroy(p.consumer);

done:
    store_free(p.store);
    lk_pairs_free(p.batch);
    lk_pg_free(p.pg);
    if (rc != 0 && !*stop && !p.fatal)
        lk_log_error("start-up failed; exiting");
    return rc;
}
