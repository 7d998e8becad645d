/*
 * likesctl replay [--from-beginning | --from TIME] [--dry-run]
 *
 * Rebuilds PostgreSQL's likes from the topic `likes`, for a database
 * restored from a backup older than the topic: every partition is read from
 * the start position to the end offsets taken when the replay starts,
 * collapsed to the last action of each (post, user), and applied so that
 * each pair ends in that state; then the counters of the touched posts are
 * counted again from their rows. The result depends only on the events, not
 * on what the database held, so a second replay changes nothing.
 *
 * A post's events all live in one partition (they are keyed by post), so
 * partitions are replayed one after the other and memory holds the pairs of
 * one partition at a time. Each batch of pairs, with the recount of its
 * posts, is one transaction: rows and counters agree at every commit.
 *
 * The persister must not run meanwhile: it could apply a newer state of a
 * pair between the replay's read and its write, which the replay would
 * then overwrite with the older one. Redis is not touched.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "likesctl.h"
#include "pairs.h"
#include "progress.h"
#include "stores.h"
#include "topic.h"

#define WHO               "likesctl replay"
#define BATCH_PAIRS       10000
#define SHOWN_UNDECODABLE 10

/* Sets each pair of $1, $2 to liked when $3 is true, unliked otherwise;
 * pairs of posts that do not exist are left out, as the persister does. */
static const char apply_sql[] =
    "WITH wanted AS (\n"
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[])\n"
    "    AS t(post_id, user_id, liked)\n"
    "), inserted AS (\n"
    "  INSERT INTO post_likes (post_id, user_id)\n"
    "  SELECT w.post_id, w.user_id FROM wanted w JOIN posts p ON p.id = w.post_id WHERE w.liked\n"
    "  ON CONFLICT DO NOTHING\n"
    "  RETURNING 1\n"
    "), deleted AS (\n"
    "  DELETE FROM post_likes pl USING wanted w\n"
    "  WHERE NOT w.liked AND pl.post_id = w.post_id AND pl.user_id = w.user_id\n"
    "  RETURNING 1\n"
    ")\n"
    "SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM deleted)";

/* Sets the counter of each existing post of $1 to its number of rows;
 * returns each such post and whether its counter was wrong. A separate
 * statement from apply_sql, so that it sees that statement's rows. */
static const char recount_sql[] =
    "WITH touched AS (\n"
    "  SELECT p.id AS post_id FROM posts p WHERE p.id = ANY($1::bigint[])\n"
    "), counted AS (\n"
    "  SELECT t.post_id, (SELECT count(*) FROM post_likes pl WHERE pl.post_id = t.post_id) AS n\n"
    "  FROM touched t\n"
    "), fixed AS (\n"
    "  INSERT INTO post_counters (post_id, like_count) SELECT post_id, n FROM counted\n"
    "  ON CONFLICT (post_id) DO UPDATE SET like_count = EXCLUDED.like_count\n"
    "  WHERE post_counters.like_count <> EXCLUDED.like_count\n"
    "  RETURNING post_id\n"
    ")\n"
    "SELECT t.post_id, f.post_id IS NOT NULL\n"
    "FROM touched t LEFT JOIN fixed f ON f.post_id = t.post_id\n"
    "ORDER BY t.post_id";

/* What a pair must end as. */
typedef struct wanted_pair {
    int64_t post_id;
    int64_t user_id;
    int liked;
} wanted_pair;

typedef struct text_array {
    char *data;
    size_t len;
    size_t capacity;
} text_array;

typedef struct totals {
    int64_t events;
    int64_t undecodable;
    int64_t pairs;
    int64_t inserted;
    int64_t deleted;
    int64_t recounted;
    int64_t corrected;
} totals;

typedef struct replay {
    const lk_config *cfg;
    int dry_run;
    PGconn *pg;
    rd_kafka_t *reader;
    int partition_count;
    int64_t *start;
    int64_t *end;

    lk_pairs *pairs;
    wanted_pair *wanted;
    size_t wanted_capacity;
    text_array arrays[3];

    int32_t partition; /* being replayed */
    totals totals;
    int64_t last_recounted; /* post ids seen, to count a split post once */
    int64_t last_corrected;
    progress progress;
} replay;

/* --- options ----------------------------------------------------------- */

typedef struct options {
    int from_beginning;
    int64_t from_ms;
    int dry_run;
} options;

/* Reads `width` digits at `*text`, advancing it. */
static int read_digits(const char **text, int width, int *value)
{
    *value = 0;
    for (int i = 0; i < width; i++) {
        char c = (*text)[i];
        if (c < '0' || c > '9')
            return -1;
        *value = *value * 10 + (c - '0');
    }
    *text += width;
    return 0;
}

static int expect_char(const char **text, const char *allowed)
{
    if (**text == '\0' || strchr(allowed, **text) == NULL)
        return -1;
    (*text)++;
    return 0;
}

/* The fraction of a second after the seconds, if any, as milliseconds:
 * digits beyond the third are dropped. */
static int read_fraction(const char **text, int *ms)
{
    *ms = 0;
    if (**text != '.')
        return 0;
    (*text)++;
    if (**text < '0' || **text > '9')
        return -1;
    for (int scale = 100; **text >= '0' && **text <= '9'; (*text)++) {
        *ms += (**text - '0') * scale;
        scale /= 10;
    }
    return 0;
}

/* Z, or +HH:MM / -HH:MM east of UTC, as seconds. */
static int read_zone(const char **text, int *offset_seconds)
{
    *offset_seconds = 0;
    if (**text == 'Z' || **text == 'z') {
        (*text)++;
        return 0;
    }
    int sign = **text == '+' ? 1 : **text == '-' ? -1 : 0;
    int hours, minutes;
    if (sign == 0)
        return -1;
    (*text)++;
    if (read_digits(text, 2, &hours) != 0 || expect_char(text, ":") != 0 ||
        read_digits(text, 2, &minutes) != 0 || hours > 23 || minutes > 59)
        return -1;
    *offset_seconds = sign * (hours * 3600 + minutes * 60);
    return 0;
}

/* RFC 3339, such as 2026-12-04T16:32:53Z or 2026-12-04T17:32:53.120+01:00,
 * to milliseconds since the epoch. */
static int parse_rfc3339(const char *text, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int fraction_ms, zone_seconds;
    if (read_digits(&text, 4, &tm.tm_year) != 0 || expect_char(&text, "-") != 0 ||
        read_digits(&text, 2, &tm.tm_mon) != 0 || expect_char(&text, "-") != 0 ||
        read_digits(&text, 2, &tm.tm_mday) != 0 || expect_char(&text, "Tt ") != 0 ||
        read_digits(&text, 2, &tm.tm_hour) != 0 || expect_char(&text, ":") != 0 ||
        read_digits(&text, 2, &tm.tm_min) != 0 || expect_char(&text, ":") != 0 ||
        read_digits(&text, 2, &tm.tm_sec) != 0)
        return -1;
    if (read_fraction(&text, &fraction_ms) != 0 || read_zone(&text, &zone_seconds) != 0 ||
        *text != '\0')
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;

    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t seconds = timegm(&tm);
    *ms = ((int64_t)seconds - zone_seconds) * 1000 + fraction_ms;
    return 0;
}

/* A time as RFC 3339 or as milliseconds since the epoch. */
static int parse_time(const char *text, int64_t *ms)
{
    if (text[0] >= '0' && text[0] <= '9' && strspn(text, "0123456789") == strlen(text)) {
        char *end;
        errno = 0;
        long long value = strtoll(text, &end, 10);
        if (errno != 0)
            return -1;
        *ms = value;
        return 0;
    }
    return parse_rfc3339(text, ms);
}

static int parse_options(int argc, char **argv, options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->from_ms = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--from-beginning") == 0) {
            opts->from_beginning = 1;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            opts->dry_run = 1;
        } else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            if (parse_time(argv[++i], &opts->from_ms) != 0) {
                fprintf(stderr,
                        "%s: \"%s\" is not a time: give RFC 3339 (2026-12-04T16:32:53Z) or "
                        "milliseconds since the epoch\n",
                        WHO, argv[i]);
                return -1;
            }
        } else {
            fprintf(stderr,
                    "usage: likesctl replay [--from-beginning | --from TIME] [--dry-run]\n");
            return -1;
        }
    }
    if (opts->from_beginning && opts->from_ms >= 0) {
        fprintf(stderr, "%s: give --from-beginning or --from TIME, not both\n", WHO);
        return -1;
    }
    if (opts->from_ms < 0)
        opts->from_beginning = 1;
    return 0;
}

/* --- where to read ----------------------------------------------------- */

/* The first offset at or after `from_ms` in each partition, by record
 * timestamp; the end where no record is that recent. */
static int find_time_starts(replay *r, int64_t from_ms)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(r->partition_count);
    for (int i = 0; i < r->partition_count; i++)
        rd_kafka_topic_partition_list_add(list, r->cfg->topic_likes, i)->offset = from_ms;

    int rc = -1;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(r->reader, list, TOPIC_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: Kafka at %s found no offsets for the time: %s\n", WHO,
                r->cfg->kafka_brokers, rd_kafka_err2str(err));
        goto done;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *entry = &list->elems[i];
        if (entry->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "%s: Kafka at %s found no offset for the time in partition %d: %s\n",
                    WHO, r->cfg->kafka_brokers, (int)entry->partition,
                    rd_kafka_err2str(entry->err));
            goto done;
        }
        int64_t end = r->end[entry->partition];
        r->start[entry->partition] = entry->offset < 0 || entry->offset > end ? end : entry->offset;
    }
    rc = 0;

done:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* Takes the end offsets first, then the starts: a record that arrives
 * meanwhile is left to the pipeline. */
static int find_range(replay *r, const options *opts)
{
    r->partition_count = topic_partition_count(r->reader, r->cfg, r->cfg->topic_likes, WHO);
    if (r->partition_count < 0)
        return -1;

    size_t count = (size_t)(r->partition_count > 0 ? r->partition_count : 1);
    r->start = calloc(count, sizeof(*r->start));
    r->end = calloc(count, sizeof(*r->end));
    if (r->start == NULL || r->end == NULL) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return -1;
    }
    if (topic_offsets(r->reader, r->cfg, r->cfg->topic_likes, r->partition_count, r->start, r->end,
                      WHO) != 0)
        return -1;
    return opts->from_beginning ? 0 : find_time_starts(r, opts->from_ms);
}

/* A replay beside a running persister could write back a pair's older
 * state over a newer one the persister just applied. The persister is a
 * static group member: after it stops, the group keeps it for its session
 * timeout. */
static int check_persister_stopped(replay *r)
{
    const struct rd_kafka_group_list *list = NULL;
    rd_kafka_resp_err_t err =
        rd_kafka_list_groups(r->reader, r->cfg->persister_group, &list, TOPIC_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: Kafka at %s did not describe group %s: %s\n", WHO,
                r->cfg->kafka_brokers, r->cfg->persister_group, rd_kafka_err2str(err));
        return -1;
    }

    int members = 0;
    for (int i = 0; i < list->group_cnt; i++)
        members += list->groups[i].member_cnt;
    rd_kafka_group_list_destroy(list);
    if (members == 0)
        return 0;

    fprintf(stderr,
            "%s: the persister is running (group %s has %d member%s): it could overwrite the "
            "replayed state with an older one or the reverse. Stop it (scripts/services.sh stop "
            "persister), wait until its group is empty (its session times out after 6 s), run "
            "the replay, then start it again.\n",
            WHO, r->cfg->persister_group, members, members == 1 ? "" : "s");
    return -1;
}

static void format_time(int64_t ms, char *out, size_t outlen)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
             utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, (int)(ms % 1000));
}

static void print_plan(const replay *r, const options *opts)
{
    char from[96] = "the beginning";
    if (!opts->from_beginning) {
        char when[80];
        format_time(opts->from_ms, when, sizeof(when));
        snprintf(from, sizeof(from), "%s", when);
    }
    printf("replay: rebuilding PostgreSQL from topic %s, from %s up to its end now%s\n",
           r->cfg->topic_likes, from, r->dry_run ? " (dry run: nothing is written)" : "");

    int64_t total = 0;
    for (int i = 0; i < r->partition_count; i++) {
        printf("  partition %d: offsets %" PRId64 " to %" PRId64 "\n", i, r->start[i], r->end[i]);
        total += r->end[i] - r->start[i];
    }
    printf("  %" PRId64 " offsets to read in %d partitions\n", total, r->partition_count);
    fflush(stdout);
}

/* Says so when retention has already deleted the start of a partition:
 * those events are beyond any replay. */
static void warn_missing_start(const replay *r, const options *opts)
{
    for (int i = 0; opts->from_beginning && i < r->partition_count; i++) {
        if (r->start[i] > 0)
            fprintf(stderr,
                    "%s: warning: partition %d keeps offsets from %" PRId64 " on only; the "
                    "events before were deleted by the topic's retention and cannot be "
                    "replayed\n",
                    WHO, i, r->start[i]);
    }
}

/* --- reading ----------------------------------------------------------- */

static int take_record(const rd_kafka_message_t *record, void *opaque)
{
    replay *r = opaque;
    r->totals.events++;

    lk_like_event ev;
    char why[160] = "no value";
    if (record->payload == NULL ||
        lk_event_decode(record->payload, record->len, &ev, why, sizeof(why)) != 0) {
        r->totals.undecodable++;
        if (r->totals.undecodable <= SHOWN_UNDECODABLE) {
            progress_clear(&r->progress);
            fprintf(stderr, "%s: skipping partition %d offset %" PRId64 ": not an event (%s)\n",
                    WHO, (int)record->partition, record->offset, why);
        }
        return 0;
    }

    if (lk_pairs_set(r->pairs, &ev, record->partition, record->offset) != 0) {
        fprintf(stderr, "%s: out of memory collecting the pairs of partition %d\n", WHO,
                (int)record->partition);
        return -1;
    }
    int64_t start = r->start[r->partition];
    progress_update(&r->progress,
                    "replay: partition %d/%d: %" PRId64 " of %" PRId64 " offsets read, %zu pairs",
                    r->partition + 1, r->partition_count, record->offset - start + 1,
                    r->end[r->partition] - start, lk_pairs_count(r->pairs));
    return 0;
}

static int by_post_and_user(const void *a, const void *b)
{
    const wanted_pair *x = a, *y = b;
    if (x->post_id != y->post_id)
        return x->post_id < y->post_id ? -1 : 1;
    if (x->user_id != y->user_id)
        return x->user_id < y->user_id ? -1 : 1;
    return 0;
}

/* Copies the partition's pairs out of the set, ordered by post so that a
 * batch holds whole posts and each post is recounted once. */
static int take_pairs(replay *r, size_t *count)
{
    *count = lk_pairs_count(r->pairs);
    if (*count == 0)
        return 0;
    const lk_pair *pairs = lk_pairs_sorted(r->pairs);
    if (pairs == NULL)
        return -1;

    if (*count > r->wanted_capacity) {
        wanted_pair *wanted = realloc(r->wanted, *count * sizeof(*wanted));
        if (wanted == NULL)
            return -1;
        r->wanted = wanted;
        r->wanted_capacity = *count;
    }
    for (size_t i = 0; i < *count; i++) {
        r->wanted[i] =
            (wanted_pair){pairs[i].post_id, pairs[i].user_id, pairs[i].action == LK_ACTION_LIKE};
    }
    qsort(r->wanted, *count, sizeof(*r->wanted), by_post_and_user);
    return 0;
}

/* --- writing ----------------------------------------------------------- */

static int array_reserve(text_array *array, size_t extra)
{
    if (array->len + extra + 1 <= array->capacity)
        return 0;
    size_t capacity = array->capacity ? array->capacity : 4096;
    while (capacity < array->len + extra + 1)
        capacity *= 2;
    char *data = realloc(array->data, capacity);
    if (data == NULL)
        return -1;
    array->data = data;
    array->capacity = capacity;
    return 0;
}

/* Appends one element of a PostgreSQL array literal, "{" before the first
 * and "}" after the last one when `last` is set. */
static int array_add(text_array *array, size_t index, const char *element, int last)
{
    if (array_reserve(array, strlen(element) + 2) != 0)
        return -1;
    if (index == 0)
        array->len = 0;
    array->len += (size_t)sprintf(array->data + array->len, "%s%s%s", index == 0 ? "{" : ",",
                                  element, last ? "}" : "");
    return 0;
}

static int build_arrays(replay *r, const wanted_pair *batch, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char post[24], user[24];
        snprintf(post, sizeof(post), "%" PRId64, batch[i].post_id);
        snprintf(user, sizeof(user), "%" PRId64, batch[i].user_id);
        int last = i + 1 == count;
        if (array_add(&r->arrays[0], i, post, last) != 0 ||
            array_add(&r->arrays[1], i, user, last) != 0 ||
            array_add(&r->arrays[2], i, batch[i].liked ? "t" : "f", last) != 0)
            return -1;
    }
    return 0;
}

static int run_simple(replay *r, const char *sql)
{
    PGresult *result = stores_pg_run(r->pg, WHO, sql, sql, 0, NULL, PGRES_COMMAND_OK);
    PQclear(result);
    return result != NULL ? 0 : -1;
}

static int apply_rows(replay *r)
{
    const char *params[] = {r->arrays[0].data, r->arrays[1].data, r->arrays[2].data};
    PGresult *result = stores_pg_run(r->pg, WHO, "applying the pairs to post_likes", apply_sql, 3,
                                     params, PGRES_TUPLES_OK);
    if (result == NULL)
        return -1;
    r->totals.inserted += strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    r->totals.deleted += strtoll(PQgetvalue(result, 0, 1), NULL, 10);
    PQclear(result);
    return 0;
}

static int recount(replay *r)
{
    const char *params[] = {r->arrays[0].data};
    PGresult *result = stores_pg_run(r->pg, WHO, "recounting post_counters", recount_sql, 1, params,
                                     PGRES_TUPLES_OK);
    if (result == NULL)
        return -1;

    for (int row = 0; row < PQntuples(result); row++) {
        int64_t post_id = strtoll(PQgetvalue(result, row, 0), NULL, 10);
        if (post_id != r->last_recounted)
            r->totals.recounted++;
        r->last_recounted = post_id;
        if (PQgetvalue(result, row, 1)[0] == 't' && post_id != r->last_corrected) {
            r->totals.corrected++;
            r->last_corrected = post_id;
        }
    }
    PQclear(result);
    return 0;
}

/* One transaction: the rows of the batch's pairs, then its posts' counters
 * from those rows. A dry run rolls it back. */
static int apply_batch(replay *r, const wanted_pair *batch, size_t count)
{
    if (build_arrays(r, batch, count) != 0) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return -1;
    }
    if (run_simple(r, "BEGIN") != 0)
        return -1;

    if (apply_rows(r) != 0 || recount(r) != 0 ||
        run_simple(r, r->dry_run ? "ROLLBACK" : "COMMIT") != 0) {
        if (PQstatus(r->pg) == CONNECTION_OK && PQtransactionStatus(r->pg) != PQTRANS_IDLE)
            run_simple(r, "ROLLBACK");
        return -1;
    }
    return 0;
}

/* The end of the batch that starts at `from`: at most BATCH_PAIRS pairs,
 * cut before a post rather than through it unless that post alone fills
 * a batch. */
static size_t batch_end(const wanted_pair *wanted, size_t count, size_t from)
{
    if (count - from <= BATCH_PAIRS)
        return count;
    size_t end = from + BATCH_PAIRS;
    size_t cut = end;
    while (cut > from && wanted[cut - 1].post_id == wanted[end].post_id)
        cut--;
    return cut > from ? cut : end;
}

static int replay_partition(replay *r, int32_t partition)
{
    r->partition = partition;
    lk_pairs_clear(r->pairs);
    if (topic_read(r->reader, r->cfg->topic_likes, partition, r->start[partition],
                   r->end[partition], take_record, r, WHO) != 0)
        return -1;

    size_t count;
    if (take_pairs(r, &count) != 0) {
        fprintf(stderr, "%s: out of memory sorting the pairs of partition %d\n", WHO, partition);
        return -1;
    }
    r->totals.pairs += (int64_t)count;

    for (size_t from = 0; from < count;) {
        size_t end = batch_end(r->wanted, count, from);
        if (apply_batch(r, r->wanted + from, end - from) != 0)
            return -1;
        from = end;
        progress_update(&r->progress, "replay: partition %d/%d: %zu of %zu pairs applied",
                        partition + 1, r->partition_count, from, count);
    }
    return 0;
}

static void print_summary(const replay *r)
{
    const totals *t = &r->totals;
    printf("replay %s:\n",
           r->dry_run ? "dry run done, nothing was written; it would make" : "done");
    printf("  events read         %12" PRId64 "\n", t->events);
    printf("  undecodable         %12" PRId64 "\n", t->undecodable);
    printf("  pairs (post, user)  %12" PRId64 "\n", t->pairs);
    printf("  rows inserted       %12" PRId64 "\n", t->inserted);
    printf("  rows deleted        %12" PRId64 "\n", t->deleted);
    printf("  posts recounted     %12" PRId64 "\n", t->recounted);
    printf("  counters corrected  %12" PRId64 "\n", t->corrected);
    printf("Redis is not touched: `likesctl verify` tells whether it needs `likesctl "
           "rebuild-redis`.\n");
}

static int run_replay(replay *r, const options *opts)
{
    r->pg = stores_pg_connect(r->cfg, WHO);
    if (r->pg == NULL)
        return -1;
    r->reader = topic_consumer_new(r->cfg, NULL, WHO);
    if (r->reader == NULL || find_range(r, opts) != 0)
        return -1;
    if (!r->dry_run && check_persister_stopped(r) != 0)
        return -1;

    print_plan(r, opts);
    warn_missing_start(r, opts);
    r->pairs = lk_pairs_new();
    if (r->pairs == NULL) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return -1;
    }
    for (int i = 0; i < r->partition_count; i++) {
        if (replay_partition(r, i) != 0) {
            fprintf(stderr,
                    "%s: stopped in partition %d; partitions before it are applied. A replay "
                    "is state-based: run it again once the cause is fixed.\n",
                    WHO, i);
            return -1;
        }
    }
    progress_done(&r->progress,
                  "replay: %d partitions done: %" PRId64 " events read, %" PRId64 " pairs applied",
                  r->partition_count, r->totals.events, r->totals.pairs);
    print_summary(r);
    return 0;
}

int likesctl_replay(const lk_config *cfg, int argc, char **argv)
{
    options opts;
    if (parse_options(argc, argv, &opts) != 0)
        return 2;

    replay *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return 2;
    }
    r->cfg = cfg;
    r->dry_run = opts.dry_run;
    progress_start(&r->progress);

    int status = run_replay(r, &opts) == 0 ? 0 : 2;

    progress_clear(&r->progress);
    if (r->pg != NULL)
        PQfinish(r->pg);
    topic_consumer_free(r->reader);
    lk_pairs_free(r->pairs);
    for (size_t i = 0; i < sizeof(r->arrays) / sizeof(r->arrays[0]); i++)
        free(r->arrays[i].data);
    free(r->wanted);
    free(r->start);
    free(r->end);
    free(r);
    return status;
}
