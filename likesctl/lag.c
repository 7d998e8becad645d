/*
 * likesctl lag
 *
 * How far each consumer group is behind, per partition: where it resumes,
 * the end of the partition, and the records in between.
 *   - The aggregator commits its offsets of `likes` to Kafka inside its
 *     transactions: they are read from the group coordinator.
 *   - The persister keeps its offsets of `like-deltas` in PostgreSQL
 *     (consumer_offsets), in the transaction that applies the deltas; Kafka
 *     has none for it.
 * The end is the last stable offset, as a read_committed consumer sees it.
 * Offsets are not records: each transaction ends with a marker that takes
 * an offset, so a consumer that has read everything can sit one offset
 * before the end. The records in a gap of up to PEEK_OFFSETS are therefore
 * counted by reading them; a larger gap is shown as "<=" its offsets.
 *
 * Exit status: 0, or 2 when Kafka or PostgreSQL cannot be reached.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "likesctl.h"
#include "stores.h"
#include "topic.h"

#define WHO          "likesctl lag"
#define PEEK_OFFSETS 10000
#define NO_OFFSET    (-1)

typedef struct partition_lag {
    int64_t resume; /* committed or stored next offset; NO_OFFSET if none */
    int64_t first;
    int64_t end;
    int64_t lag;
    int exact; /* lag counts records, not offsets */
} partition_lag;

typedef struct group_lag {
    const char *group;
    const char *topic;
    const char *where; /* where the group keeps its offsets */
    int count;
    partition_lag *partitions;
} group_lag;

static int count_record(const rd_kafka_message_t *record, void *opaque)
{
    (void)record;
    (*(int64_t *)opaque)++;
    return 0;
}

/* Works out each partition's lag from its offsets, reading the records of
 * small gaps to count them. */
static int compute_lag(rd_kafka_t *reader, group_lag *g)
{
    for (int i = 0; i < g->count; i++) {
        partition_lag *p = &g->partitions[i];
        /* Without an offset, or below the first record kept, the consumer
         * starts at the first record kept (auto.offset.reset=earliest). */
        int64_t from = p->resume >= p->first ? p->resume : p->first;
        int64_t gap = p->end > from ? p->end - from : 0;

        p->lag = gap;
        p->exact = gap == 0 || gap <= PEEK_OFFSETS;
        if (gap == 0 || gap > PEEK_OFFSETS)
            continue;

        p->lag = 0;
        if (topic_read(reader, g->topic, i, from, p->end, count_record, &p->lag, WHO) != 0)
            return -1;
    }
    return 0;
}

static int read_partitions(rd_kafka_t *reader, const lk_config *cfg, group_lag *g)
{
    g->count = topic_partition_count(reader, cfg, g->topic, WHO);
    if (g->count < 0)
        return -1;

    g->partitions = calloc((size_t)(g->count > 0 ? g->count : 1), sizeof(*g->partitions));
    if (g->partitions == NULL) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return -1;
    }
    for (int i = 0; i < g->count; i++)
        g->partitions[i].resume = NO_OFFSET;
    return 0;
}

static int read_ends(rd_kafka_t *reader, const lk_config *cfg, group_lag *g)
{
    size_t count = (size_t)(g->count > 0 ? g->count : 1);
    int64_t *first = calloc(count, sizeof(*first));
    int64_t *end = calloc(count, sizeof(*end));
    int rc = -1;
    if (first == NULL || end == NULL) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        goto done;
    }
    if (topic_offsets(reader, cfg, g->topic, g->count, first, end, WHO) != 0)
        goto done;

    for (int i = 0; i < g->count; i++) {
        g->partitions[i].first = first[i];
        g->partitions[i].end = end[i];
    }
    rc = 0;

done:
    free(first);
    free(end);
    return rc;
}

/* The aggregator's offsets, committed to Kafka by its transactions. */
static int read_kafka_committed(const lk_config *cfg, group_lag *g)
{
    rd_kafka_t *consumer = topic_consumer_new(cfg, g->group, WHO);
    if (consumer == NULL)
        return -1;

    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(g->count);
    for (int i = 0; i < g->count; i++)
        rd_kafka_topic_partition_list_add(list, g->topic, i);

    int rc = -1;
    rd_kafka_resp_err_t err = rd_kafka_committed(consumer, list, TOPIC_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: Kafka at %s gave no committed offsets of group %s: %s\n", WHO,
                cfg->kafka_brokers, g->group, rd_kafka_err2str(err));
        goto done;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *entry = &list->elems[i];
        if (entry->partition >= 0 && entry->partition < g->count && entry->offset >= 0)
            g->partitions[entry->partition].resume = entry->offset;
    }
    rc = 0;

done:
    rd_kafka_topic_partition_list_destroy(list);
    topic_consumer_free(consumer);
    return rc;
}

/* The persister's offsets, in PostgreSQL. */
static int read_pg_stored(PGconn *pg, group_lag *g)
{
    static const char sql[] = "SELECT partition, next_offset FROM consumer_offsets\n"
                              "WHERE consumer_group = $1 AND topic = $2";
    const char *params[] = {g->group, g->topic};
    PGresult *result =
        stores_pg_run(pg, WHO, "reading consumer_offsets", sql, 2, params, PGRES_TUPLES_OK);
    if (result == NULL)
        return -1;

    for (int row = 0; row < PQntuples(result); row++) {
        long partition = strtol(PQgetvalue(result, row, 0), NULL, 10);
        if (partition >= 0 && partition < g->count)
            g->partitions[partition].resume = strtoll(PQgetvalue(result, row, 1), NULL, 10);
    }
    PQclear(result);
    return 0;
}

static void print_group(const group_lag *g)
{
    printf("group %s on topic %s (%s)\n", g->group, g->topic, g->where);
    printf("  %9s %12s %12s %12s\n", "partition", "next", "end", "lag");

    int64_t total = 0;
    int exact = 1;
    for (int i = 0; i < g->count; i++) {
        const partition_lag *p = &g->partitions[i];
        char resume[24];
        if (p->resume == NO_OFFSET)
            snprintf(resume, sizeof(resume), "-");
        else
            snprintf(resume, sizeof(resume), "%" PRId64, p->resume);
        char lag[32];
        snprintf(lag, sizeof(lag), "%s%" PRId64, p->exact ? "" : "<=", p->lag);

        printf("  %9d %12s %12" PRId64 " %12s\n", i, resume, p->end, lag);
        total += p->lag;
        exact = exact && p->exact;
    }
    char sum[32];
    snprintf(sum, sizeof(sum), "%s%" PRId64, exact ? "" : "<=", total);
    printf("  %9s %12s %12s %12s\n", "total", "", "", sum);
}

int likesctl_lag(const lk_config *cfg, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "usage: likesctl lag\n");
        return 2;
    }

    group_lag groups[] = {
        {cfg->aggregator_group, cfg->topic_likes, "next offsets committed to Kafka", 0, NULL},
        {cfg->persister_group, cfg->topic_deltas, "next offsets stored in PostgreSQL", 0, NULL},
    };
    int status = 2;
    PGconn *pg = NULL;
    rd_kafka_t *reader = topic_consumer_new(cfg, NULL, WHO);
    if (reader == NULL || read_partitions(reader, cfg, &groups[0]) != 0 ||
        read_partitions(reader, cfg, &groups[1]) != 0)
        goto done;

    /* Where the groups are first, then the ends: records that arrive in
     * between count as lag rather than hide some. */
    pg = stores_pg_connect(cfg, WHO);
    if (pg == NULL || read_kafka_committed(cfg, &groups[0]) != 0 ||
        read_pg_stored(pg, &groups[1]) != 0)
        goto done;
    if (read_ends(reader, cfg, &groups[0]) != 0 || read_ends(reader, cfg, &groups[1]) != 0 ||
        compute_lag(reader, &groups[0]) != 0 || compute_lag(reader, &groups[1]) != 0)
        goto done;

    print_group(&groups[0]);
    print_group(&groups[1]);
    status = 0;

done:
    if (pg != NULL)
        PQfinish(pg);
    topic_consumer_free(reader);
    free(groups[0].partitions);
    free(groups[1].partitions);
    return status;
}
