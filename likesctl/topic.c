#include "topic.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "backoff.h"
#include "kafka.h"
#include "log.h"

/* A read that gets nothing at all for this long has lost the broker. */
#define READ_IDLE_TIMEOUT_MS 30000

/* The command says itself when Kafka is out of reach, once and plainly;
 * librdkafka's own reports of each failed attempt are for debugging. */
static void log_kafka_error(rd_kafka_t *consumer, int err, const char *reason, void *opaque)
{
    (void)consumer;
    (void)opaque;
    lk_log_debug("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

rd_kafka_t *topic_consumer_new(const lk_config *cfg, const char *group, const char *who)
{
    /* librdkafka's consumer needs a group name even for assign(); a name of
     * this process's own is never joined, so no broker ever sees it as a
     * group. */
    char own_group[64];
    snprintf(own_group, sizeof(own_group), "likesctl-%d", (int)getpid());

    /* Each read ends with a fetch that finds nothing more, which the broker
     * holds for fetch.wait.max.ms (500 ms by default): keep that short. */
    rd_kafka_conf_t *conf = lk_kafka_conf_new(cfg, "likesctl");
    if (conf == NULL ||
        lk_kafka_conf_set(conf, "group.id", group != NULL ? group : own_group) != 0 ||
        lk_kafka_conf_set(conf, "enable.auto.commit", "false") != 0 ||
        lk_kafka_conf_set(conf, "enable.auto.offset.store", "false") != 0 ||
        lk_kafka_conf_set(conf, "isolation.level", "read_committed") != 0 ||
        lk_kafka_conf_set(conf, "enable.partition.eof", "true") != 0 ||
        lk_kafka_conf_set(conf, "auto.offset.reset", "earliest") != 0 ||
        lk_kafka_conf_set(conf, "fetch.wait.max.ms", "50") != 0) {
        if (conf != NULL)
            rd_kafka_conf_destroy(conf);
        fprintf(stderr, "%s: cannot configure a Kafka consumer\n", who);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(conf, log_kafka_error);
    if (!lk_log_enabled(LK_LOG_DEBUG))
        lk_kafka_conf_set(conf, "log_level", "2");

    char err[256];
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (consumer == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "%s: cannot create a Kafka consumer: %s\n", who, err);
        return NULL;
    }
    rd_kafka_poll_set_consumer(consumer);
    return consumer;
}

void topic_consumer_free(rd_kafka_t *consumer)
{
    if (consumer == NULL)
        return;
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
}

int topic_partition_count(rd_kafka_t *consumer, const lk_config *cfg, const char *topic,
                          const char *who)
{
    rd_kafka_topic_t *handle = rd_kafka_topic_new(consumer, topic, NULL);
    if (handle == NULL) {
        fprintf(stderr, "%s: cannot use topic %s: %s\n", who, topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }

    const struct rd_kafka_metadata *metadata = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(consumer, 0, handle, &metadata, TOPIC_TIMEOUT_MS);
    rd_kafka_topic_destroy(handle);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: cannot reach Kafka at %s: %s\n", who, cfg->kafka_brokers,
                rd_kafka_err2str(err));
        return -1;
    }

    int count = -1;
    if (metadata->topic_cnt != 1 || metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "%s: Kafka at %s has no topic %s: %s\n", who, cfg->kafka_brokers, topic,
                metadata->topic_cnt == 1 ? rd_kafka_err2str(metadata->topics[0].err)
                                         : "not in the answer");
    else
        count = metadata->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(metadata);
    return count;
}

int topic_offsets(rd_kafka_t *consumer, const lk_config *cfg, const char *topic, int count,
                  int64_t *first, int64_t *end, const char *who)
{
    for (int partition = 0; partition < count; partition++) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            consumer, topic, partition, &first[partition], &end[partition], TOPIC_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "%s: Kafka at %s gave no end offset of %s partition %d: %s\n", who,
                    cfg->kafka_brokers, topic, partition, rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

/* Errors the consumer recovers from by itself, such as a broker connection
 * that is being re-established: the idle timeout bounds them. */
static int is_transient(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
           err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__RESOLVE;
}

static int assign_one(rd_kafka_t *consumer, const char *topic, int32_t partition, int64_t start,
                      const char *who)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = start;
    rd_kafka_resp_err_t err = rd_kafka_assign(consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: cannot read %s partition %" PRId32 ": %s\n", who, topic, partition,
                rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* One partition being read. */
typedef struct read_state {
    const char *topic;
    int32_t partition;
    int64_t next; /* offset after the last record or marker seen */
    int64_t end;
    topic_record_fn on_record;
    void *opaque;
    const char *who;
} read_state;

/* Takes one event of the consumer. Returns 1 when the read is complete, 0
 * to go on, -1 on failure. */
static int take(read_state *read, const rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (msg->partition != read->partition)
            return 0;
        read->next = msg->offset;
        return msg->offset >= read->end;
    }
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (is_transient(msg->err))
            return 0;
        fprintf(stderr, "%s: reading %s partition %" PRId32 " failed: %s\n", read->who, read->topic,
                read->partition, rd_kafka_message_errstr(msg));
        return -1;
    }

    /* A record from before an earlier assignment may still be queued. */
    if (msg->partition != read->partition)
        return 0;
    if (msg->offset >= read->end)
        return 1;
    read->next = msg->offset + 1;
    if (read->on_record(msg, read->opaque) != 0)
        return -1;
    return read->next == read->end;
}

int topic_read(rd_kafka_t *consumer, const char *topic, int32_t partition, int64_t start,
               int64_t end, topic_record_fn on_record, void *opaque, const char *who)
{
    if (start >= end)
        return 0;
    if (assign_one(consumer, topic, partition, start, who) != 0)
        return -1;

    read_state read = {topic, partition, start, end, on_record, opaque, who};
    int outcome = 0;
    int64_t last_progress_ms = lk_monotonic_ms();
    while (outcome == 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 200);
        if (msg != NULL) {
            int64_t before = read.next;
            outcome = take(&read, msg);
            rd_kafka_message_destroy(msg);
            if (read.next != before)
                last_progress_ms = lk_monotonic_ms();
            continue;
        }
        if (lk_monotonic_ms() - last_progress_ms >= READ_IDLE_TIMEOUT_MS) {
            fprintf(stderr,
                    "%s: %s partition %" PRId32 " gave nothing for %d s at offset %" PRId64
                    " (reading up to %" PRId64 "); is Kafka at its address?\n",
                    who, topic, partition, READ_IDLE_TIMEOUT_MS / 1000, read.next, end);
            outcome = -1;
        }
    }

    rd_kafka_assign(consumer, NULL);
    return outcome < 0 ? -1 : 0;
}
