/*
 * librdkafka set-up: a refused property, the settings of the reliable
 * producer and the manual consumer read back from the configuration, and,
 * against librdkafka's in-process mock cluster on 127.0.0.1, the partition
 * a configured producer picks for a key compared with the one Java's
 * clients pick.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "check.h"
#include "config.h"
#include "kafka.h"
#include "log.h"

/* ---- stderr capture ---- */

/* Restores stderr and keeps the lines written meanwhile in `out`, without
 * their time stamp (24 characters and a space). */
static void capture_end_lines(capture *cap, char *out, size_t outlen)
{
    char raw[8192];
    capture_end(cap, raw, sizeof(raw));
    capture_strip_times(raw, out, outlen);
}

/* ---- murmur2 as Kafka's Java clients compute it ---- */

/*
 * MurmurHash2, 32 bits, as in Kafka's Utils.murmur2: seed 0x9747b28c,
 * m = 0x5bd1e995, r = 24. The hash starts as seed ^ length; each whole
 * 4-byte block, read little-endian as k, is mixed by k *= m, k ^= k >> 24,
 * k *= m, then h *= m, h ^= k; the 1 to 3 bytes left are xored into h at
 * bits 16, 8 and 0 (third, second, first byte) before h *= m; last,
 * h ^= h >> 13, h *= m, h ^= h >> 15. All arithmetic wraps at 32 bits
 * (Java's int; shifts are unsigned, >>>).
 */
static uint32_t murmur2(const unsigned char *data, size_t len)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;

    size_t whole = len - len % 4;
    for (size_t i = 0; i < whole; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }

    switch (len % 4) {
    case 3:
        h ^= (uint32_t)data[whole + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[whole + 1] << 8;
        /* fall through */
    case 1:
        h ^= data[whole];
        h *= m;
    }

    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* The partition of Kafka's default partitioner for a key: the hash made
 * positive by dropping the sign bit (Utils.toPositive), modulo the count. */
static int32_t java_partition(const char *key, int32_t partitions)
{
    return (int32_t)((murmur2((const unsigned char *)key, strlen(key)) & 0x7fffffff) %
                     (uint32_t)partitions);
}

static void test_murmur2_reference_values(void)
{
    /* Values Kafka's own tests expect of Utils.murmur2, as signed ints. */
    static const struct {
        const char *key;
        int32_t hash;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_CONTEXT("key \"%s\"", cases[i].key);
        uint32_t hash = murmur2((const unsigned char *)cases[i].key, strlen(cases[i].key));
        CHECK_INT_EQ(cases[i].hash, (int32_t)hash);
    }
}

static void test_java_partition_by_hand(void)
{
    /*
     * Worked by hand, m = 0x5bd1e995, all products modulo 2^32:
     *
     * "1" (one byte, 0x31):
     *   h = 0x9747b28c ^ 1 = 0x9747b28d
     *   h ^= 0x31 -> 0x9747b2bc;  h *= m -> 0x0de4236c
     *   h ^= h >> 13 -> 0x0de44c4d;  h *= m -> 0x892f7dd1
     *   h ^= h >> 15 -> 0x892e6f8f
     *   0x892e6f8f & 0x7fffffff = 154038159;  154038159 % 6 = 3
     *
     * "17" (two bytes, 0x31 0x37):
     *   h = 0x9747b28c ^ 2 = 0x9747b28e
     *   h ^= 0x37 << 8 -> 0x9747858e;  h ^= 0x31 -> 0x974785bf
     *   h *= m -> 0x3b4aaf2b
     *   h ^= h >> 13 -> 0x3b4b757e;  h *= m -> 0xe6b91056
     *   h ^= h >> 15 -> 0xe6b8dd24
     *   0xe6b8dd24 & 0x7fffffff = 1723391268;  1723391268 % 6 = 0
     *
     * "42": h = 0x18e59c6c, 417700972 % 6 = 4.
     * "3":  h = 0xbb90627f, 999318143 % 6 = 5.
     */
    CHECK_INT_EQ(0x892e6f8f, murmur2((const unsigned char *)"1", 1));
    CHECK_INT_EQ(3, java_partition("1", 6));
    CHECK_INT_EQ(0xe6b8dd24, murmur2((const unsigned char *)"17", 2));
    CHECK_INT_EQ(0, java_partition("17", 6));
    CHECK_INT_EQ(4, java_partition("42", 6));
    CHECK_INT_EQ(5, java_partition("3", 6));
}

/* ---- configuration ---- */

/* Reads a property back; "(unset)" when librdkafka knows no value. */
static void conf_value(const rd_kafka_conf_t *conf, const char *name, char *out, size_t outlen)
{
    size_t size = outlen;
    if (rd_kafka_conf_get(conf, name, out, &size) != RD_KAFKA_CONF_OK)
        snprintf(out, outlen, "(unset)");
}

typedef struct setting {
    const char *name;
    const char *value;
} setting;

static void expect_settings(const rd_kafka_conf_t *conf, const setting *settings, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        CHECK_CONTEXT("%s", settings[i].name);
        char value[512];
        conf_value(conf, settings[i].name, value, sizeof(value));
        CHECK_STR_EQ(settings[i].value, value);
    }
}

static void check_conf_set_refuses(rd_kafka_conf_t *conf)
{
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    int unknown = lk_kafka_conf_set(conf, "no.such.property", "1");
    int bad_value = lk_kafka_conf_set(conf, "enable.idempotence", "sometimes");
    int good = lk_kafka_conf_set(conf, "linger.ms", "7");
    char lines[4096];
    capture_end_lines(&cap, lines, sizeof(lines));

    CHECK_INT_EQ(-1, unknown);
    CHECK_INT_EQ(-1, bad_value);
    CHECK_INT_EQ(0, good);

    char value[64];
    conf_value(conf, "linger.ms", value, sizeof(value));
    CHECK_STR_EQ("7", value);
    conf_value(conf, "enable.idempotence", value, sizeof(value));
    CHECK_STR_EQ("false", value);

    /* One error line per refusal, naming the property and the value. */
    char expected[1024];
    snprintf(expected, sizeof(expected),
             "test_kafka[%d] ERROR kafka setting no.such.property=1 refused: No such "
             "configuration property: \"no.such.property\"\n"
             "test_kafka[%d] ERROR kafka setting enable.idempotence=sometimes refused: Expected "
             "bool value for \"enable.idempotence\": true or false\n",
             (int)getpid(), (int)getpid());
    CHECK_STR_EQ(expected, lines);
}

static void test_conf_set_refuses(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    check_conf_set_refuses(conf);
    rd_kafka_conf_destroy(conf);
}

static void test_conf_new(void)
{
    lk_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.kafka_brokers, sizeof(cfg.kafka_brokers), "127.0.0.1:19092,127.0.0.1:19094");
    snprintf(cfg.instance_id, sizeof(cfg.instance_id), "vm-2");

    rd_kafka_conf_t *conf = lk_kafka_conf_new(&cfg, "aggregator");
    CHECK(conf != NULL);

    static const setting expected[] = {
        {"bootstrap.servers", "127.0.0.1:19092,127.0.0.1:19094"},
        {"client.id", "likes-aggregator-vm-2"},
    };
    expect_settings(conf, expected, sizeof(expected) / sizeof(expected[0]));
    rd_kafka_conf_destroy(conf);
}

static void test_reliable_producer(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = lk_kafka_conf_set_reliable_producer(conf);

    /* acks=all reads back as -1, its number in the protocol. */
    static const setting expected[] = {
        {"enable.idempotence", "true"},
        {"acks", "-1"},
        {"partitioner", "murmur2_random"},
    };
    if (rc == 0)
        expect_settings(conf, expected, sizeof(expected) / sizeof(expected[0]));
    rd_kafka_conf_destroy(conf);
    CHECK_INT_EQ(0, rc);
}

static void test_manual_consumer(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = lk_kafka_conf_set_manual_consumer(conf, "likes-aggregator");

    /* auto.offset.reset=earliest reads back as its older name, smallest. */
    static const setting expected[] = {
        {"group.id", "likes-aggregator"},      {"session.timeout.ms", "6000"},
        {"enable.auto.commit", "false"},       {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"}, {"auto.offset.reset", "smallest"},
        {"enable.partition.eof", "false"},
    };
    if (rc == 0)
        expect_settings(conf, expected, sizeof(expected) / sizeof(expected[0]));
    rd_kafka_conf_destroy(conf);
    CHECK_INT_EQ(0, rc);
}

/* ---- partitioning against the mock cluster ---- */

#define PARTITIONS 6
#define KEYS       50

/* Each message carries a pointer to the slot for its partition. */
static void record_partition(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque)
{
    (void)rk;
    (void)opaque;
    int32_t *slot = message->_private;
    *slot = message->err == RD_KAFKA_RESP_ERR_NO_ERROR ? message->partition : -2;
}

static rd_kafka_t *new_producer(const char *bootstraps, char *errstr, size_t errlen)
{
    lk_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.kafka_brokers, sizeof(cfg.kafka_brokers), "%s", bootstraps);
    snprintf(cfg.instance_id, sizeof(cfg.instance_id), "test");

    rd_kafka_conf_t *conf = lk_kafka_conf_new(&cfg, "ingest");
    if (conf == NULL || lk_kafka_conf_set_reliable_producer(conf) != 0) {
        snprintf(errstr, errlen, "configuration refused");
        if (conf != NULL)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, record_partition);

    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen);
    if (producer == NULL)
        rd_kafka_conf_destroy(conf);
    return producer;
}

/* Produces keys "1".."KEYS" and waits for every delivery report. */
static int produce_keys(rd_kafka_t *producer, int32_t partition_of[KEYS + 1])
{
    for (int key = 1; key <= KEYS; key++) {
        char text[16];
        int len = snprintf(text, sizeof(text), "%d", key);
        partition_of[key] = -1;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC("likes"), RD_KAFKA_V_KEY(text, (size_t)len),
            RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(&partition_of[key]), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return -1;
    }
    return rd_kafka_flush(producer, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static void check_partitions(const int32_t partition_of[KEYS + 1])
{
    for (int key = 1; key <= KEYS; key++) {
        char text[16];
        snprintf(text, sizeof(text), "%d", key);
        CHECK_CONTEXT("key \"%s\"", text);
        CHECK_INT_EQ(java_partition(text, PARTITIONS), partition_of[key]);
    }
}

static void check_against_mock(rd_kafka_mock_cluster_t *cluster)
{
    CHECK_INT_EQ(RD_KAFKA_RESP_ERR_NO_ERROR,
                 rd_kafka_mock_topic_create(cluster, "likes", PARTITIONS, 1));

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
    CHECK(strncmp(bootstraps, "127.0.0.1:", 10) == 0);

    char errstr[512] = "";
    rd_kafka_t *producer = new_producer(bootstraps, errstr, sizeof(errstr));
    CHECK_STR_EQ("", errstr);
    CHECK(producer != NULL);

    int32_t partition_of[KEYS + 1];
    int rc = produce_keys(producer, partition_of);
    rd_kafka_destroy(producer);

    CHECK_INT_EQ(0, rc);
    check_partitions(partition_of);
}

static void test_partitions_like_java(void)
{
    /* The mock cluster needs a client handle of its own to live in. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* It connects nowhere: its warning that no brokers are set is noise. */
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    CHECK(owner != NULL);

    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(owner, 1);
    if (cluster != NULL) {
        check_against_mock(cluster);
        rd_kafka_mock_cluster_destroy(cluster);
    }
    rd_kafka_destroy(owner);
    CHECK(cluster != NULL);
}

int main(void)
{
    /* The expected log lines are at warn and info: whatever threshold the
     * caller's environment asks for, use the default. */
    unsetenv("LIKES_LOG_LEVEL");
    lk_log_init("test_kafka");

    static const check_case cases[] = {
        {"the test's murmur2 gives Kafka's reference values", test_murmur2_reference_values},
        {"partitions worked by hand", test_java_partition_by_hand},
        {"lk_kafka_conf_set refuses a bad property and logs it", test_conf_set_refuses},
        {"lk_kafka_conf_new sets brokers and client id", test_conf_new},
        {"the reliable producer settings read back", test_reliable_producer},
        {"the manual consumer settings read back", test_manual_consumer},
        {"a reliable producer puts each key where Java's murmur2 does", test_partitions_like_java},
    };
    return CHECK_RUN(cases);
}
