#include "kafka.h"

#include <stdio.h>

#include "log.h"

/* librdkafka's syslog levels mapped onto ours: 0-3 errors, 4 warnings,
 * 5-6 information, 7 debug. */
static lk_log_level level_from_syslog(int level)
{
    if (level <= 3)
        return LK_LOG_ERROR;
    if (level == 4)
        return LK_LOG_WARN;
    if (level <= 6)
        return LK_LOG_INFO;
    return LK_LOG_DEBUG;
}

static void log_from_librdkafka(const rd_kafka_t *rk, int level, const char *facility,
                                const char *message)
{
    (void)rk;
    lk_log(level_from_syslog(level), "kafka %s: %s", facility, message);
}

int lk_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        lk_log_error("kafka setting %s=%s refused: %s", name, value, err);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *lk_kafka_conf_new(const lk_config *cfg, const char *role)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client_id[300];
    snprintf(client_id, sizeof(client_id), "likes-%s-%s", role, cfg->instance_id);

    if (lk_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers) != 0 ||
        lk_kafka_conf_set(conf, "client.id", client_id) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_from_librdkafka);
    return conf;
}

int lk_kafka_conf_set_reliable_producer(rd_kafka_conf_t *conf)
{
    if (lk_kafka_conf_set(conf, "enable.idempotence", "true") != 0 ||
        lk_kafka_conf_set(conf, "acks", "all") != 0 ||
        lk_kafka_conf_set(conf, "partitioner", "murmur2_random") != 0)
        return -1;
    return 0;
}

int lk_kafka_conf_set_manual_consumer(rd_kafka_conf_t *conf, const char *group)
{
    if (lk_kafka_conf_set(conf, "group.id", group) != 0 ||
        lk_kafka_conf_set(conf, "session.timeout.ms", "6000") != 0 ||
        lk_kafka_conf_set(conf, "enable.auto.commit", "false") != 0 ||
        lk_kafka_conf_set(conf, "enable.auto.offset.store", "false") != 0 ||
        lk_kafka_conf_set(conf, "isolation.level", "read_committed") != 0 ||
        lk_kafka_conf_set(conf, "auto.offset.reset", "earliest") != 0 ||
        lk_kafka_conf_set(conf, "enable.partition.eof", "false") != 0)
        return -1;
    return 0;
}

static int subscribe(rd_kafka_t *consumer, const char *topic)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        lk_log_error("subscribing to %s failed: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

rd_kafka_t *lk_kafka_consumer_new(const lk_config *cfg, const char *role, const char *group,
                                  const char *topic,
                                  void (*on_rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                                       rd_kafka_topic_partition_list_t *, void *),
                                  void *opaque)
{
    rd_kafka_conf_t *conf = lk_kafka_conf_new(cfg, role);
    if (conf == NULL || lk_kafka_conf_set_manual_consumer(conf, group) != 0) {
        if (conf != NULL)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, opaque);

    char err[512];
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (consumer == NULL) {
        lk_log_error("creating the kafka consumer failed: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(consumer);

    if (subscribe(consumer, topic) != 0) {
        rd_kafka_destroy(consumer);
        return NULL;
    }
    return consumer;
}
