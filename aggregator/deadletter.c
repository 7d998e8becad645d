#include "deadletter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct deadletter {
    char *key;
    size_t key_len;
    char *payload;
    size_t payload_len;
    char *source_topic;
    int32_t partition;
    int64_t offset;
    char reason[256];
} deadletter;

struct deadletters {
    deadletter *items;
    size_t count;
    size_t capacity;
    uint64_t committed_total; /* since this process started */
};

deadletters *deadletters_new(void)
{
    return calloc(1, sizeof(deadletters));
}

void deadletters_free(deadletters *d)
{
    if (d == NULL)
        return;
    deadletters_clear(d);
    free(d->items);
    free(d);
}

static char *copy_bytes(const void *bytes, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        if (len > 0)
            memcpy(copy, bytes, len);
        copy[len] = '\0';
    }
    return copy;
}

void deadletters_add(deadletters *d, const rd_kafka_message_t *msg, const char *reason)
{
    lk_log_warn("undecodable message at %s [%" PRId32 "] offset %" PRId64
                " is kept for the dead-letter topic: %s",
                rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, reason);

    if (d->count == d->capacity) {
        size_t capacity = d->capacity ? d->capacity * 2 : 16;
        deadletter *items = realloc(d->items, capacity * sizeof(*items));
        if (items == NULL)
            goto out_of_memory;
        d->items = items;
        d->capacity = capacity;
    }

    deadletter *item = &d->items[d->count];
    memset(item, 0, sizeof(*item));
    item->key = copy_bytes(msg->key, msg->key_len);
    item->payload = copy_bytes(msg->payload, msg->len);
    item->source_topic = strdup(rd_kafka_topic_name(msg->rkt));
    if (item->key == NULL || item->payload == NULL || item->source_topic == NULL) {
        free(item->key);
        free(item->payload);
        free(item->source_topic);
        goto out_of_memory;
    }
    item->key_len = msg->key_len;
    item->payload_len = msg->len;
    item->partition = msg->partition;
    item->offset = msg->offset;
    snprintf(item->reason, sizeof(item->reason), "%s", reason);
    d->count++;
    return;

out_of_memory:
    lk_log_error("out of memory keeping a dead letter; offset %" PRId64 " is dropped", msg->offset);
}

size_t deadletters_count(const deadletters *d)
{
    return d->count;
}

static int produce_one(rd_kafka_t *producer, const char *topic, const deadletter *item)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%" PRId32, item->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, item->offset);

    rd_kafka_headers_t *headers = rd_kafka_headers_new(4);
    rd_kafka_header_add(headers, "reason", -1, item->reason, -1);
    rd_kafka_header_add(headers, "source_topic", -1, item->source_topic, -1);
    rd_kafka_header_add(headers, "source_partition", -1, partition, -1);
    rd_kafka_header_add(headers, "source_offset", -1, offset, -1);

    rd_kafka_resp_err_t err;
    do {
        err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(item->key, item->key_len),
                                RD_KAFKA_V_VALUE(item->payload, item->payload_len),
                                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 100);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* The headers stay ours only when producev failed. */
        rd_kafka_headers_destroy(headers);
        lk_log_error("producing a dead letter to %s failed: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int deadletters_produce(deadletters *d, rd_kafka_t *producer, const char *topic)
{
    for (size_t i = 0; i < d->count; i++) {
        if (produce_one(producer, topic, &d->items[i]) != 0)
            return -1;
    }
    return 0;
}

void deadletters_committed(deadletters *d, const char *topic)
{
    if (d->count == 0)
        return;
    d->committed_total += d->count;
    lk_log_info("%zu dead letters committed to %s, %" PRIu64 " since start", d->count, topic,
                d->committed_total);
}

void deadletters_clear(deadletters *d)
{
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].key);
        free(d->items[i].payload);
        free(d->items[i].source_topic);
    }
    d->count = 0;
}
