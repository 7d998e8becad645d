/*
 * librdkafka set-up shared by the producer of ingest and the consumers.
 */
#ifndef LK_KAFKA_H
#define LK_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"

/* A configuration with the brokers, a client id of `role` and the
 * instance id, and librdkafka's own logs routed to lk_log. The caller owns
 * the result, to pass to rd_kafka_new() or rd_kafka_conf_destroy(). */
rd_kafka_conf_t *lk_kafka_conf_new(const lk_config *cfg, const char *role);

/* Sets one property. Returns 0, or -1 after logging which property failed:
 * a bad property is a programming error the caller turns into an exit. */
int lk_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value);

/* Sets the properties of an idempotent producer that waits for every
 * in-sync replica, and partitions keys with murmur2 as the Java clients do,
 * so that a post's events land on one partition whoever produced them. */
int lk_kafka_conf_set_reliable_producer(rd_kafka_conf_t *conf);

/* Sets the properties of a consumer in `group` that never commits or stores
 * offsets by itself and reads only committed transactional messages.
 *
 * The session timeout is short, so that the partitions of a member that
 * died move to the others within seconds. (Static membership would spare
 * even that wait, but a broker restart can leave a static member fenced by
 * its own earlier life, a fatal error.) */
int lk_kafka_conf_set_manual_consumer(rd_kafka_conf_t *conf, const char *group);

/* Creates a consumer in `group`, set up as lk_kafka_conf_set_manual_consumer
 * does, whose rebalances call `on_rebalance`
 * with `opaque`, its events served by rd_kafka_consumer_poll(), and
 * subscribes it to `topic`. Returns the handle, which the caller closes and
 * destroys, or NULL after logging why. */
rd_kafka_t *lk_kafka_consumer_new(const lk_config *cfg, const char *role, const char *group,
                                  const char *topic,
                                  void (*on_rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                                       rd_kafka_topic_partition_list_t *, void *),
                                  void *opaque);

#endif
