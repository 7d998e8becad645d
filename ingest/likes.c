/*
 * PUT and DELETE /v1/posts/{id}/like: each becomes one like event on the
 * likes topic, and the request is answered once Kafka has acknowledged it.
 *
 * No thread waits for Kafka. The handler produces the event and suspends
 * the connection; a poller thread serves the delivery reports; the report
 * stores the outcome in the request's like_call and resumes the connection;
 * libmicrohttpd then calls the handler again, which answers on its own
 * thread.
 *
 * The report can arrive before the handler has suspended the connection,
 * and resuming a connection that is not suspended is undefined. So the two
 * threads hand the call over through `phase`: whichever of them comes
 * second resumes the connection.
 */
#include "ingest.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "kafka.h"
#include "log.h"

/* Past this a down broker turns into an answer instead of a wait. A
 * message in flight when the broker went away takes a few seconds more to
 * be reported, so the answer comes within about ten seconds. */
#define MESSAGE_TIMEOUT_MS "5000"

#define POLL_INTERVAL_MS 100

/* How long shutdown waits for resumed requests to be answered. */
#define ANSWER_GRACE_MS 2000

struct ingest_producer {
    rd_kafka_t *kafka;
    rd_kafka_topic_t *topic;
    pthread_t poller;
    int poller_running;
    atomic_int stop_polling;
    atomic_int closing;    /* set at shutdown: take no more likes */
    atomic_int open_calls; /* like_calls not yet released */
    atomic_int failed_deliveries;
    atomic_int failed; /* a fatal producer error happened */

    /* Fault injection for tests (LIKES_INJECT_PRODUCER_FATAL_AFTER): after
     * this many likes produced, the producer fails as on a fatal error. */
    long inject_fatal_after;
    atomic_long produced;
};

enum like_phase {
    LIKE_PRODUCING, /* produced, connection not yet suspended */
    LIKE_SUSPENDED, /* suspended, waiting for the delivery report */
    LIKE_DELIVERED, /* the report is in: the outcome fields are final */
};

typedef struct like_call {
    ingest_producer *producer;
    struct MHD_Connection *conn;
    lk_action action;
    atomic_int phase;
    /* Written by the delivery report before phase becomes DELIVERED. */
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} like_call;

/* Delivery reports and the poller thread */

/* Runs on the poller thread (or on main's during shutdown). */
static void on_delivery(rd_kafka_t *kafka, const rd_kafka_message_t *message, void *opaque)
{
    (void)kafka;
    (void)opaque;
    like_call *call = message->_private;
    struct MHD_Connection *conn = call->conn;

    call->err = message->err;
    call->partition = message->partition;
    call->offset = message->offset;
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_fetch_add(&call->producer->failed_deliveries, 1);

    /* The handler has not suspended yet: it will see DELIVERED and resume
     * the connection itself. */
    int expected = LIKE_PRODUCING;
    if (atomic_compare_exchange_strong(&call->phase, &expected, LIKE_DELIVERED))
        return;

    /* Once resumed, the request may be answered and `call` freed at once. */
    atomic_store(&call->phase, LIKE_DELIVERED);
    MHD_resume_connection(conn);
}

/* A fatal error leaves the idempotent producer unable to send anything
 * again: stop serving rather than answer 503 forever; main() then starts
 * the process afresh. */
static void check_fatal(ingest_producer *producer)
{
    char reason[256];
    if (atomic_load(&producer->failed) ||
        rd_kafka_fatal_error(producer->kafka, reason, sizeof(reason)) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;

    lk_log_error("kafka producer failed for good (%s), shutting down", reason);
    atomic_store(&producer->failed, 1);
    kill(getpid(), SIGTERM);
}

static void *poll_deliveries(void *arg)
{
    ingest_producer *producer = arg;
    while (!atomic_load(&producer->stop_polling)) {
        rd_kafka_poll(producer->kafka, POLL_INTERVAL_MS);
        check_fatal(producer);
    }
    return NULL;
}

/* The producer */

static rd_kafka_conf_t *producer_conf(const lk_config *cfg)
{
    rd_kafka_conf_t *conf = lk_kafka_conf_new(cfg, "ingest");
    if (conf == NULL)
        return NULL;

    if (lk_kafka_conf_set_reliable_producer(conf) != 0 ||
        lk_kafka_conf_set(conf, "message.timeout.ms", MESSAGE_TIMEOUT_MS) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    return conf;
}

static int producer_connect(ingest_producer *producer, const lk_config *cfg, char *err,
                            size_t errlen)
{
    rd_kafka_conf_t *conf = producer_conf(cfg);
    if (conf == NULL) {
        snprintf(err, errlen, "the kafka producer settings were refused");
        return -1;
    }

    /* rd_kafka_new takes the configuration only when it succeeds. */
    producer->kafka = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (producer->kafka == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    producer->topic = rd_kafka_topic_new(producer->kafka, cfg->topic_likes, NULL);
    if (producer->topic == NULL) {
        snprintf(err, errlen, "kafka topic handle for %s: %s", cfg->topic_likes,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    return 0;
}

ingest_producer *ingest_producer_new(const lk_config *cfg, char *err, size_t errlen)
{
    ingest_producer *producer = calloc(1, sizeof(*producer));
    if (producer == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (producer_connect(producer, cfg, err, errlen) != 0)
        goto failed;

    const char *inject = getenv("LIKES_INJECT_PRODUCER_FATAL_AFTER");
    producer->inject_fatal_after = inject != NULL ? strtol(inject, NULL, 10) : 0;
    if (producer->inject_fatal_after > 0)
        lk_log_warn("a fatal producer error will be injected after %ld likes",
                    producer->inject_fatal_after);

    if (pthread_create(&producer->poller, NULL, poll_deliveries, producer) != 0) {
        snprintf(err, errlen, "starting the kafka poller thread failed");
        goto failed;
    }
    producer->poller_running = 1;
    return producer;

failed:
    ingest_producer_free(producer);
    return NULL;
}

static void stop_poller(ingest_producer *producer)
{
    if (!producer->poller_running)
        return;
    atomic_store(&producer->stop_polling, 1);
    pthread_join(producer->poller, NULL);
    producer->poller_running = 0;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Serves delivery reports on this thread until every like_call has been
 * released, or the grace period is over. */
static void wait_for_answers(ingest_producer *producer)
{
    int64_t deadline = monotonic_ms() + ANSWER_GRACE_MS;
    while (atomic_load(&producer->open_calls) > 0 && monotonic_ms() < deadline)
        rd_kafka_poll(producer->kafka, 10);

    int open = atomic_load(&producer->open_calls);
    if (open > 0)
        lk_log_warn("%d like requests still unanswered after %d ms, stopping anyway", open,
                    ANSWER_GRACE_MS);
}

int ingest_producer_drain(ingest_producer *producer, int flush_ms)
{
    atomic_store(&producer->closing, 1);
    int failed_before = atomic_load(&producer->failed_deliveries);

    /* From here on this thread serves the delivery reports: flush does. */
    stop_poller(producer);
    rd_kafka_flush(producer->kafka, flush_ms);

    int queued = rd_kafka_outq_len(producer->kafka);
    if (queued > 0) {
        lk_log_warn("%d like events still queued after %d ms, failing their requests with 503",
                    queued, flush_ms);
        rd_kafka_purge(producer->kafka, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    }

    wait_for_answers(producer);
    return atomic_load(&producer->failed_deliveries) - failed_before;
}

int ingest_producer_failed(const ingest_producer *producer)
{
    return atomic_load(&producer->failed);
}

void ingest_producer_free(ingest_producer *producer)
{
    if (producer == NULL)
        return;

    stop_poller(producer);
    if (producer->topic != NULL)
        rd_kafka_topic_destroy(producer->topic);
    if (producer->kafka != NULL)
        rd_kafka_destroy(producer->kafka);
    free(producer);
}

/* The handlers */

static const char *action_name(lk_action action)
{
    return action == LK_ACTION_LIKE ? "like" : "unlike";
}

static void like_call_free(void *state)
{
    like_call *call = state;
    atomic_fetch_sub(&call->producer->open_calls, 1);
    free(call);
}

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static rd_kafka_resp_err_t produce(ingest_request *req, like_call *call)
{
    lk_like_event event = {
        .action = call->action,
        .user_id = req->user_id,
        .post_id = req->path_id,
        .ts_ms = now_ms(),
    };
    char value[LK_EVENT_MAX_LEN];
    char key[32];
    int value_len = lk_event_encode(&event, value, sizeof(value));
    int key_len = lk_event_key(event.post_id, key, sizeof(key));
    if (value_len < 0 || key_len < 0)
        return RD_KAFKA_RESP_ERR__INVALID_ARG;

    if (rd_kafka_produce(call->producer->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value,
                         (size_t)value_len, key, (size_t)key_len, call) != 0)
        return rd_kafka_last_error();

    ingest_producer *producer = call->producer;
    if (atomic_fetch_add(&producer->produced, 1) + 1 == producer->inject_fatal_after)
        rd_kafka_test_fatal_error(producer->kafka, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                  "injected by LIKES_INJECT_PRODUCER_FATAL_AFTER");
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Produces the event and suspends the connection until its report. */
static enum MHD_Result start_like(ingest_request *req, ingest_producer *producer, lk_action action)
{
    like_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return ingest_reply_internal(req, "no memory for a like");

    call->producer = producer;
    call->conn = req->conn;
    call->action = action;
    atomic_init(&call->phase, LIKE_PRODUCING);
    atomic_fetch_add(&producer->open_calls, 1);
    req->state = call;
    req->free_state = like_call_free;

    rd_kafka_resp_err_t err = produce(req, call);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return ingest_reply_unavailable(req,
                                        "kafka: producing the %s of post %" PRId64 " failed (%s)",
                                        action_name(action), req->path_id, rd_kafka_err2str(err));

    MHD_suspend_connection(req->conn);
    int expected = LIKE_PRODUCING;
    if (!atomic_compare_exchange_strong(&call->phase, &expected, LIKE_SUSPENDED))
        MHD_resume_connection(req->conn);
    return MHD_YES;
}

/* Called again after the resume: the report is in. */
static enum MHD_Result answer_like(ingest_request *req, like_call *call)
{
    if (atomic_load(&call->phase) != LIKE_DELIVERED)
        return ingest_reply_internal(req, "like handler called again before its delivery report");

    if (call->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return ingest_reply_unavailable(
            req, "kafka: delivering the %s of post %" PRId64 " failed (%s)",
            action_name(call->action), req->path_id, rd_kafka_err2str(call->err));

    json_object *doc = json_object_new_object();
    if (doc != NULL && (ingest_json_add_int(doc, "post_id", req->path_id) != 0 ||
                        ingest_json_add_int(doc, "user_id", req->user_id) != 0 ||
                        ingest_json_add_string(doc, "action", action_name(call->action)) != 0 ||
                        ingest_json_add_int(doc, "partition", call->partition) != 0 ||
                        ingest_json_add_int(doc, "offset", call->offset) != 0)) {
        json_object_put(doc);
        doc = NULL;
    }
    return ingest_reply_json(req, MHD_HTTP_ACCEPTED, doc);
}

static enum MHD_Result handle_like(ingest_request *req, lk_action action)
{
    if (req->state != NULL)
        return answer_like(req, req->state);

    ingest_producer *producer = req->app->producer;
    if (atomic_load(&producer->closing))
        return ingest_reply_unavailable(req, "shutting down, no more likes taken");

    char err[256];
    int exists = ingest_posts_exists(req->app, req->path_id, err, sizeof(err));
    if (exists < 0)
        return ingest_reply_unavailable(req, "postgres: looking up post %" PRId64 " failed (%s)",
                                        req->path_id, err);
    if (exists == 0)
        return ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no post with this id");

    return start_like(req, producer, action);
}

enum MHD_Result ingest_likes_put(ingest_request *req)
{
    return handle_like(req, LK_ACTION_LIKE);
}

enum MHD_Result ingest_likes_delete(ingest_request *req)
{
    return handle_like(req, LK_ACTION_UNLIKE);
}
