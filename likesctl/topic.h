/*
 * Reading Kafka for likesctl: a consumer that never joins a group and never
 * commits, the partitions and end offsets of a topic, and reading one
 * partition between two offsets.
 *
 * Every function prints why it failed on stderr, prefixed with `who`
 * ("likesctl lag"), so that the command only has to exit with 2. All are
 * called from the command's one thread.
 */
#ifndef LIKESCTL_TOPIC_H
#define LIKESCTL_TOPIC_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"

/* How long a request may wait for the broker before Kafka counts as
 * unreachable. */
#define TOPIC_TIMEOUT_MS 10000

/* Creates a consumer that reads only committed records and reports the end
 * of a partition. `group` is the group whose committed offsets the caller
 * will ask for with rd_kafka_committed(), or NULL; either way the consumer
 * only ever uses rd_kafka_assign(), so it never becomes a member of any
 * group and commits nothing. The caller frees it with topic_consumer_free().
 * Returns NULL after printing why. */
rd_kafka_t *topic_consumer_new(const lk_config *cfg, const char *group, const char *who);

void topic_consumer_free(rd_kafka_t *consumer);

/* Returns the number of partitions of `topic`, or -1 after printing that
 * Kafka did not answer or has no such topic. */
int topic_partition_count(rd_kafka_t *consumer, const lk_config *cfg, const char *topic,
                          const char *who);

/* Fills `first[i]` and `end[i]`, for partitions 0 to count - 1, with the
 * offset of the first record still kept and the end offset: for this
 * read_committed consumer, the last stable offset, before which every
 * transaction is decided. Returns 0, or -1 after printing why. */
int topic_offsets(rd_kafka_t *consumer, const lk_config *cfg, const char *topic, int count,
                  int64_t *first, int64_t *end, const char *who);

/* Called for each record read; returns 0 to go on, -1 to stop the read
 * (after printing why). */
typedef int (*topic_record_fn)(const rd_kafka_message_t *record, void *opaque);

/* Reads the committed records of one partition from offset `start` up to,
 * not including, `end`, calling `on_record` for each in offset order.
 * Transaction markers and aborted records occupy offsets but are never
 * passed on. Returns 0 once `end` is reached, or -1 after printing why
 * (including when no record came for 30 s). */
int topic_read(rd_kafka_t *consumer, const char *topic, int32_t partition, int64_t start,
               int64_t end, topic_record_fn on_record, void *opaque, const char *who);

#endif
