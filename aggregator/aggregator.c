#include "aggregator.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "counts.h"
#include "deadletter.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "redis.h"
#include "pairs.h"

/* A window closes after cfg->window_ms or at this many distinct pairs,
 * whichever comes first, to bound its memory. */
#define WINDOW_MAX_PAIRS 200000

/* Offsets are kept in a plain array indexed by partition. */
#define MAX_PARTITIONS 1024

#define TXN_TIMEOUT_MS 30000

typedef struct aggregator {
    const lk_config *cfg;
    volatile sig_atomic_t *stop;
    int fatal;     /* these Kafka clients are beyond repair: replace them */
    int must_exit; /* and so is this process: another took its place */

    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* transactional */
    lk_redis *redis;
    counts *counts;
    lk_pairs *window;
    deadletters *deadletters;

    /* Next offset to commit per partition; -1 where the window read
     * nothing. */
    int64_t next_offset[MAX_PARTITIONS];
    int window_open;
    int64_t window_opened_ms;
} aggregator;

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void window_reset(aggregator *a)
{
    lk_pairs_clear(a->window);
    deadletters_clear(a->deadletters);
    for (int p = 0; p < MAX_PARTITIONS; p++)
        a->next_offset[p] = -1;
    a->window_open = 0;
}

/* Reads one message into the window; one that cannot be decoded is kept
 * for the dead-letter topic with the reason. */
static void window_take(aggregator *a, const rd_kafka_message_t *msg)
{
    if (msg->partition < 0 || msg->partition >= MAX_PARTITIONS) {
        lk_log_error("message from partition %" PRId32 " beyond the supported %d; exiting",
                     msg->partition, MAX_PARTITIONS);
        a->fatal = a->must_exit = 1;
        return;
    }

    if (!a->window_open) {
        a->window_open = 1;
        a->window_opened_ms = now_ms();
    }
    a->next_offset[msg->partition] = msg->offset + 1;

    lk_like_event ev;
    char reason[256];
    if (lk_event_decode(msg->payload, msg->len, &ev, reason, sizeof(reason)) != 0) {
        deadletters_add(a->deadletters, msg, reason);
        return;
    }
    if (lk_pairs_set(a->window, &ev, msg->partition, msg->offset) != 0) {
        lk_log_error("out of memory growing the window; exiting");
        a->fatal = a->must_exit = 1;
    }
}

/* A newer instance with this member's name took over: this one must go,
 * or two would write the same transactions. */
static int is_fenced(rd_kafka_resp_err_t code)
{
    return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH ||
           code == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

/* After a fatal Kafka error the clients are not used again: the run loop
 * replaces them, or exits when this member was fenced. */
static void kafka_failed_fatally(aggregator *a, rd_kafka_resp_err_t code, const char *what)
{
    a->fatal = 1;
    a->must_exit = is_fenced(code);
    lk_log_error("%s; %s", what,
                 a->must_exit ? "another instance with this name took over: exiting"
                              : "replacing the kafka clients");
}

/* Returns 0 for no error, -1 for an error after which the transaction must
 * be aborted, with a->fatal set when the producer is beyond repair. */
static int txn_failed(aggregator *a, rd_kafka_error_t *error, const char *step)
{
    if (error == NULL)
        return 0;

    if (rd_kafka_error_is_fatal(error)) {
        char what[512];
        snprintf(what, sizeof(what), "kafka transaction %s failed fatally: %s", step,
                 rd_kafka_error_string(error));
        kafka_failed_fatally(a, rd_kafka_error_code(error), what);
    } else {
        lk_log_warn("kafka transaction %s failed: %s; aborting the window", step,
                    rd_kafka_error_string(error));
    }
    rd_kafka_error_destroy(error);
    return -1;
}

static int by_post(const void *left, const void *right)
{
    const lk_pair *x = left, *y = right;
    if (x->post_id != y->post_id)
        return x->post_id < y->post_id ? -1 : 1;
    return x->user_id < y->user_id ? -1 : x->user_id > y->user_id;
}

static int produce_delta(aggregator *a, const lk_delta *delta)
{
    size_t len;
    char *payload = lk_delta_encode(delta, &len);
    if (payload == NULL)
        return -1;

    char key[24];
    int key_len = lk_event_key(delta->post_id, key, sizeof(key));

    rd_kafka_resp_err_t err;
    do {
        err = rd_kafka_producev(a->producer, RD_KAFKA_V_TOPIC(a->cfg->topic_deltas),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                RD_KAFKA_V_KEY(key, (size_t)key_len),
                                RD_KAFKA_V_VALUE(payload, len), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(a->producer, 100);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(payload); /* still ours: librdkafka takes it only on success */
        lk_log_warn("producing a delta to %s failed: %s", a->cfg->topic_deltas,
                    rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Sorts the entries by post and produces one delta per post, with the users
 * who like it now and those who no longer do. */
static int produce_deltas(aggregator *a, lk_pair *entries, size_t n)
{
    qsort(entries, n, sizeof(*entries), by_post);

    int64_t *liked = malloc((n ? n : 1) * sizeof(*liked));
    int64_t *unliked = malloc((n ? n : 1) * sizeof(*unliked));
    int rc = liked != NULL && unliked != NULL ? 0 : -1;

    for (size_t start = 0; rc == 0 && start < n;) {
        lk_delta delta = {.post_id = entries[start].post_id, .liked = liked, .unliked = unliked};
        size_t i = start;
        for (; i < n && entries[i].post_id == delta.post_id; i++) {
            if (entries[i].action == LK_ACTION_LIKE)
                liked[delta.liked_count++] = entries[i].user_id;
            else
                unliked[delta.unliked_count++] = entries[i].user_id;
        }
        rc = produce_delta(a, &delta);
        start = i;
    }

    free(liked);
    free(unliked);
    return rc;
}

static rd_kafka_topic_partition_list_t *window_offsets(aggregator *a)
{
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < MAX_PARTITIONS; p++) {
        if (a->next_offset[p] >= 0)
            rd_kafka_topic_partition_list_add(offsets, a->cfg->topic_likes, p)->offset =
                a->next_offset[p];
    }
    return offsets;
}

static int send_offsets(aggregator *a)
{
    rd_kafka_topic_partition_list_t *offsets = window_offsets(a);
    rd_kafka_consumer_group_metadata_t *group = rd_kafka_consumer_group_metadata(a->consumer);

    rd_kafka_error_t *error =
        rd_kafka_send_offsets_to_transaction(a->producer, offsets, group, TXN_TIMEOUT_MS);

    rd_kafka_consumer_group_metadata_destroy(group);
    rd_kafka_topic_partition_list_destroy(offsets);
    return txn_failed(a, error, "send offsets");
}

static int commit_transaction(aggregator *a)
{
    for (;;) {
        rd_kafka_error_t *error = rd_kafka_commit_transaction(a->producer, TXN_TIMEOUT_MS);
        if (error == NULL)
            return 0;
        /* A retriable failure leaves the outcome unknown: committing again
         * is what librdkafka asks for, not aborting. */
        if (rd_kafka_error_is_retriable(error) && !*a->stop) {
            lk_log_warn("kafka transaction commit failed: %s; retrying",
                        rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            continue;
        }
        return txn_failed(a, error, "commit");
    }
}

static void abort_transaction(aggregator *a)
{
    rd_kafka_error_t *error = rd_kafka_abort_transaction(a->producer, TXN_TIMEOUT_MS);
    if (error != NULL) {
        char what[512];
        snprintf(what, sizeof(what), "kafka transaction abort failed: %s",
                 rd_kafka_error_string(error));
        kafka_failed_fatally(a, rd_kafka_error_code(error), what);
        rd_kafka_error_destroy(error);
    }
}

/* Produces the window's deltas and dead letters and commits them together
 * with the consumed offsets. Returns 0 when committed, -1 when aborted. */
static int commit_window(aggregator *a, lk_pair *entries, size_t n)
{
    if (txn_failed(a, rd_kafka_begin_transaction(a->producer), "begin") != 0)
        return -1;

    if (produce_deltas(a, entries, n) != 0 ||
        deadletters_produce(a->deadletters, a->producer, a->cfg->topic_dlq) != 0 ||
        send_offsets(a) != 0 || commit_transaction(a) != 0) {
        if (!a->fatal)
            abort_transaction(a);
        return -1;
    }
    deadletters_committed(a->deadletters, a->cfg->topic_dlq);
    return 0;
}

/* Moves the consumer back to the last committed offsets of its assignment,
 * so that an aborted window is read again. Until this succeeds the consumer
 * must not go on: it would skip the window. */
static void rewind_to_committed(aggregator *a)
{
    lk_backoff backoff;
    lk_backoff_init(&backoff, 100, 5000);

    while (!a->fatal) {
        rd_kafka_topic_partition_list_t *assignment = NULL;
        rd_kafka_resp_err_t err = rd_kafka_assignment(a->consumer, &assignment);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            err = rd_kafka_committed(a->consumer, assignment, 10000);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < assignment->cnt; i++) {
                if (assignment->elems[i].offset < 0)
                    assignment->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            }
            /* The timeout is mis-scaled in librdkafka 2.0: -1 is safe. */
            rd_kafka_error_t *error = rd_kafka_seek_partitions(a->consumer, assignment, -1);
            if (error != NULL) {
                err = rd_kafka_error_code(error);
                rd_kafka_error_destroy(error);
            }
        }
        if (assignment != NULL)
            rd_kafka_topic_partition_list_destroy(assignment);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return;
        if (*a->stop) {
            /* Nothing of the window was committed: exiting loses nothing. */
            a->fatal = 1;
            return;
        }
        lk_log_warn("rewinding to the committed offsets failed: %s; retrying",
                    rd_kafka_err2str(err));
        lk_sleep_ms(lk_backoff_next(&backoff), NULL);
    }
}

/* Returns 1 when this member's group has never committed an offset of its
 * assignment: a Redis without pipeline state is then simply new, not one
 * that lost its data. Returns 0 otherwise, and when Kafka cannot tell. */
static int group_never_committed(aggregator *a)
{
    rd_kafka_topic_partition_list_t *assignment = NULL;
    int never = 0;
    if (rd_kafka_assignment(a->consumer, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        assignment->cnt > 0 &&
        rd_kafka_committed(a->consumer, assignment, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        never = 1;
        for (int i = 0; i < assignment->cnt; i++) {
            if (assignment->elems[i].offset >= 0)
                never = 0;
        }
    }
    if (assignment != NULL)
        rd_kafka_topic_partition_list_destroy(assignment);
    return never;
}

/* A Redis without the state marker is sound when it kept what windows
 * wrote (it predates the marker), or when nothing was ever committed (it
 * is new). Otherwise it lost its data and must be rebuilt. */
static int redis_state_is_sound(aggregator *a)
{
    if (counts_has_applied_offsets(a->counts) == 1) {
        lk_log_info("redis holds applied offsets but no state marker: marking it");
        return 1;
    }
    if (group_never_committed(a)) {
        lk_log_info("redis is new and nothing was ever committed: counts start at zero");
        return 1;
    }
    return 0;
}

/* Says once what keeps the counts from Redis, instead of on every try. */
static void log_redis_failure(counts_result rc, const char *why, char *last, size_t lastlen)
{
    if (strcmp(why, last) == 0)
        return;
    snprintf(last, lastlen, "%s", why);

    if (rc == COUNTS_NO_STATE)
        lk_log_error("redis holds no pipeline state although offsets were committed: its data "
                     "was lost; holding windows until `likesctl rebuild-redis` restores it");
    else if (rc == COUNTS_MAINTENANCE)
        lk_log_warn("redis counts are being rebuilt; holding windows until it is done");
    else
        lk_log_warn("applying a window to redis failed (%s); holding it and retrying", why);
}

/* Applies the window to Redis, retrying with backoff while Redis is down or
 * being rebuilt. With `patient` unset (inside a rebalance, where waiting
 * stalls the whole group, or when stopping) it gives up after a few
 * tries. */
static int apply_to_redis(aggregator *a, const lk_pair *entries, size_t n, int patient)
{
    lk_backoff backoff;
    lk_backoff_init(&backoff, 100, 5000);
    char why[256], last_failure[256] = "";

    for (int attempt = 1;; attempt++) {
        size_t changed;
        counts_result rc = counts_apply(a->counts, entries, n, &changed, why, sizeof(why));
        if (rc == COUNTS_APPLIED) {
            if (last_failure[0] != '\0')
                lk_log_info("redis takes windows again, after %d failed tries", attempt - 1);
            lk_log_debug("window of %zu pairs applied, %zu counts changed", n, changed);
            return 0;
        }
        if (rc == COUNTS_NO_STATE && redis_state_is_sound(a) && counts_adopt_state(a->counts) == 0)
            continue;

        log_redis_failure(rc, why, last_failure, sizeof(last_failure));
        if (*a->stop || (!patient && attempt >= 3))
            return -1;
        lk_sleep_ms(lk_backoff_next(&backoff), a->stop);
    }
}

/* Closes the window: Redis first, then the transaction. Redis going first
 * is what makes a failure safe: the window is read again, Redis skips what
 * it holds, and the deltas are produced anew. `patient` is set in the
 * consume loop, which waits out a Redis outage. Returns 0 when committed. */
static int window_flush(aggregator *a, int patient)
{
    if (!a->window_open)
        return 0;

    size_t n = lk_pairs_count(a->window);
    lk_pair *entries = (lk_pair *)lk_pairs_sorted(a->window);
    if (entries == NULL) {
        lk_log_error("out of memory sorting the window; exiting");
        a->fatal = a->must_exit = 1;
        return -1;
    }

    int rc = apply_to_redis(a, entries, n, patient);
    if (rc == 0)
        rc = commit_window(a, entries, n);

    /* Only the consume loop reads on after a failure and must rewind; at
     * revocation or shutdown the next reader starts from the committed
     * offsets anyway. */
    if (rc != 0 && patient && !a->fatal) {
        lk_log_warn("window of %zu pairs not committed; reading it again", n);
        rewind_to_committed(a);
    }
    window_reset(a);
    return rc;
}

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *partitions)
{
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < partitions->cnt && used < sizeof(list) - 16; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%" PRId32, i ? "," : "",
                                 partitions->elems[i].partition);
    lk_log_info("%s partitions [%s]", what, list);
}

/* Called from rd_kafka_consumer_poll on this thread. On revocation the open
 * window is finished first, while its partitions are still ours: its
 * offsets can then only be committed by us. */
static void on_rebalance(rd_kafka_t *consumer, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    aggregator *a = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_partitions("assigned", partitions);
        rd_kafka_assign(consumer, partitions);
        return;
    }

    log_partitions("revoked", partitions);
    if (window_flush(a, 0) != 0)
        lk_log_warn("open window dropped at revocation; the next owner reads it again");
    rd_kafka_assign(consumer, NULL);
}

/* A transactional producer whose id is stable across restarts of this
 * member: a restarted instance then aborts what its predecessor left open
 * at once, instead of the persister waiting for the transaction timeout. */
static rd_kafka_t *producer_new(aggregator *a)
{
    char transactional_id[300];
    snprintf(transactional_id, sizeof(transactional_id), "%s-%s", a->cfg->aggregator_group,
             a->cfg->instance_id);

    rd_kafka_conf_t *conf = lk_kafka_conf_new(a->cfg, "aggregator");
    if (conf == NULL || lk_kafka_conf_set(conf, "transactional.id", transactional_id) != 0 ||
        lk_kafka_conf_set(conf, "transaction.timeout.ms", "10000") != 0 ||
        lk_kafka_conf_set(conf, "partitioner", "murmur2_random") != 0 ||
        lk_kafka_conf_set(conf, "linger.ms", "5") != 0) {
        if (conf != NULL)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }

    char err[512];
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (producer == NULL) {
        lk_log_error("creating the kafka producer failed: %s", err);
        rd_kafka_conf_destroy(conf);
    }
    return producer;
}

/* Waits for the transaction coordinator, retrying while Kafka is still
 * starting. Returns 0, or -1 when stopped or on a fatal error. */
static int init_transactions(aggregator *a)
{
    lk_backoff backoff;
    lk_backoff_init(&backoff, 500, 5000);

    while (!*a->stop) {
        rd_kafka_error_t *error = rd_kafka_init_transactions(a->producer, TXN_TIMEOUT_MS);
        if (error == NULL)
            return 0;

        int retriable = rd_kafka_error_is_retriable(error);
        lk_log_warn("kafka transactions not ready: %s; %s", rd_kafka_error_string(error),
                    retriable ? "retrying" : "exiting");
        rd_kafka_error_destroy(error);
        if (!retriable)
            return -1;
        lk_sleep_ms(lk_backoff_next(&backoff), a->stop);
    }
    return -1;
}

static void handle_consumer_error(aggregator *a, const rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;

    char reason[256], what[320];
    rd_kafka_resp_err_t code;
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL &&
        (code = rd_kafka_fatal_error(a->consumer, reason, sizeof(reason))) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(what, sizeof(what), "kafka consumer failed fatally: %s", reason);
        kafka_failed_fatally(a, code, what);
        return;
    }
    /* Transport errors are retried by librdkafka, which logs them too. */
    lk_log_debug("kafka consumer: %s", rd_kafka_message_errstr(msg));
}

static int window_due(const aggregator *a)
{
    if (!a->window_open)
        return 0;
    return now_ms() - a->window_opened_ms >= a->cfg->window_ms ||
           lk_pairs_count(a->window) >= WINDOW_MAX_PAIRS;
}

static int poll_timeout_ms(const aggregator *a)
{
    if (!a->window_open)
        return 100;
    int64_t left = a->window_opened_ms + a->cfg->window_ms - now_ms();
    return left < 1 ? 1 : (int)left;
}

static void consume_loop(aggregator *a)
{
    while (!*a->stop && !a->fatal) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(a->consumer, poll_timeout_ms(a));
        if (msg != NULL) {
            if (msg->err)
                handle_consumer_error(a, msg);
            else
                window_take(a, msg);
            rd_kafka_message_destroy(msg);
        }

        if (window_due(a))
            window_flush(a, 1);
        rd_kafka_poll(a->producer, 0);
    }
}

static int aggregator_open(aggregator *a)
{
    a->redis = lk_redis_new(a->cfg->redis_host, a->cfg->redis_port, 2000);
    a->window = lk_pairs_new();
    a->deadletters = deadletters_new();
    if (a->redis == NULL || a->window == NULL || a->deadletters == NULL)
        return -1;

    a->counts = counts_new(a->redis, a->cfg->topic_likes);
    if (a->counts == NULL)
        return -1;
    window_reset(a);

    a->producer = producer_new(a);
    if (a->producer == NULL || init_transactions(a) != 0)
        return -1;

    a->consumer = lk_kafka_consumer_new(a->cfg, "aggregator", a->cfg->aggregator_group,
                                        a->cfg->topic_likes, on_rebalance, a);
    return a->consumer != NULL ? 0 : -1;
}

static void aggregator_close(aggregator *a)
{
    if (a->consumer != NULL) {
        /* Closing leaves the group; the revocation it triggers finishes
         * the open window. */
        rd_kafka_consumer_close(a->consumer);
        rd_kafka_destroy(a->consumer);
    }
    if (a->producer != NULL) {
        rd_kafka_flush(a->producer, 10000);
        rd_kafka_destroy(a->producer);
    }
    counts_free(a->counts);
    lk_pairs_free(a->window);
    deadletters_free(a->deadletters);
    lk_redis_free(a->redis);
}

/* One life of the Kafka clients: from their creation until a stop request
 * or a fatal error. Returns 0 when stopped, -1 on a fatal error, with
 * `*must_exit` set when replacing the clients would not help. */
static int run_clients(const lk_config *cfg, volatile sig_atomic_t *stop, int *must_exit)
{
    aggregator a = {.cfg = cfg, .stop = stop};

    int rc = aggregator_open(&a);
    if (rc == 0) {
        lk_log_info("consuming %s in group %s as %s, windows of %d ms, deltas to %s",
                    cfg->topic_likes, cfg->aggregator_group, cfg->instance_id, cfg->window_ms,
                    cfg->topic_deltas);
        consume_loop(&a);
        if (!a.fatal)
            window_flush(&a, 0);
        rc = a.fatal ? -1 : 0;
    } else if (!*stop) {
        lk_log_error("start-up failed; exiting");
        a.must_exit = 1;
    }

    aggregator_close(&a);
    *must_exit = a.must_exit;
    return rc;
}

int aggregator_run(const lk_config *cfg, volatile sig_atomic_t *stop)
{
    lk_backoff backoff;
    lk_backoff_init(&backoff, 1000, 30000);

    /* A fatal error ends the clients, not the process: nothing of an
     * uncommitted window is lost, and new clients start from the committed
     * offsets, exactly as a restarted process would. */
    for (;;) {
        int must_exit = 0;
        int rc = run_clients(cfg, stop, &must_exit);
        if (rc == 0 || must_exit || *stop)
            return rc;
        lk_sleep_ms(lk_backoff_next(&backoff), stop);
    }
}
