#include "store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Applies one collapsed batch. Likes of unknown posts are dropped by the
 * join; a pair already in the wanted state changes nothing, so the counter
 * moves by exactly the rows that changed. The counters row of every post
 * exists from the post's creation on (a trigger makes it). */
static const char apply_sql[] =
    "WITH liked AS (\n"
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS t(post_id, user_id)\n"
    "), unliked AS (\n"
    "  SELECT * FROM unnest($3::bigint[], $4::bigint[]) AS t(post_id, user_id)\n"
    "), inserted AS (\n"
    "  INSERT INTO post_likes (post_id, user_id)\n"
    "  SELECT l.post_id, l.user_id FROM liked l JOIN posts p ON p.id = l.post_id\n"
    "  ON CONFLICT DO NOTHING\n"
    "  RETURNING post_id\n"
    "), deleted AS (\n"
    "  DELETE FROM post_likes pl USING unliked u\n"
    "  WHERE pl.post_id = u.post_id AND pl.user_id = u.user_id\n"
    "  RETURNING pl.post_id\n"
    "), changes AS (\n"
    "  SELECT post_id, sum(change) AS change FROM (\n"
    "    SELECT post_id, 1 AS change FROM inserted\n"
    "    UNION ALL SELECT post_id, -1 FROM deleted\n"
    "  ) c GROUP BY post_id\n"
    ")\n"
    "UPDATE post_counters pc SET like_count = pc.like_count + c.change\n"
    "FROM changes c WHERE pc.post_id = c.post_id AND c.change <> 0";

static const char lock_offsets_sql[] =
    "SELECT partition, next_offset FROM consumer_offsets\n"
    "WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3::int[])\n"
    "FOR UPDATE";

static const char save_offsets_sql[] =
    "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset)\n"
    "SELECT $1, $2, p, o FROM unnest($3::int[], $4::bigint[]) AS t(p, o)\n"
    "ON CONFLICT (consumer_group, topic, partition)\n"
    "DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()";

/* A growing text buffer for array literals such as {1,2,3}. */
typedef struct text_buffer {
    char *data;
    size_t len;
    size_t capacity;
} text_buffer;

struct store {
    lk_pg *pg;
    char *group;
    char *topic;
    text_buffer arrays[4];
};

store *store_new(lk_pg *pg, const char *group, const char *topic)
{
    store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;

    s->pg = pg;
    s->group = strdup(group);
    s->topic = strdup(topic);
    if (s->group == NULL || s->topic == NULL) {
        store_free(s);
        return NULL;
    }
    return s;
}

void store_free(store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < sizeof(s->arrays) / sizeof(s->arrays[0]); i++)
        free(s->arrays[i].data);
    free(s->group);
    free(s->topic);
    free(s);
}

static int text_reserve(text_buffer *text, size_t extra)
{
    if (text->len + extra + 1 <= text->capacity)
        return 0;

    size_t capacity = text->capacity ? text->capacity : 4096;
    while (capacity < text->len + extra + 1)
        capacity *= 2;
    char *data = realloc(text->data, capacity);
    if (data == NULL)
        return -1;
    text->data = data;
    text->capacity = capacity;
    return 0;
}

static int text_append_number(text_buffer *text, int64_t value)
{
    if (text_reserve(text, 24) != 0)
        return -1;
    int len = snprintf(text->data + text->len, 24, "%s%" PRId64,
                       text->data[text->len - 1] == '{' ? "" : ",", value);
    text->len += (size_t)len;
    return 0;
}

static int text_open(text_buffer *text)
{
    text->len = 0;
    if (text_reserve(text, 2) != 0)
        return -1;
    text->data[text->len++] = '{';
    text->data[text->len] = '\0';
    return 0;
}

static int text_close(text_buffer *text)
{
    if (text_reserve(text, 1) != 0)
        return -1;
    text->data[text->len++] = '}';
    text->data[text->len] = '\0';
    return 0;
}

/* Fills arrays 0-1 with the liked (post, user) pairs and 2-3 with the
 * unliked ones. */
static int build_pair_arrays(store *s, const lk_pair *pairs, size_t count)
{
    for (int i = 0; i < 4; i++) {
        if (text_open(&s->arrays[i]) != 0)
            return -1;
    }
    for (size_t i = 0; i < count; i++) {
        int base = pairs[i].action == LK_ACTION_LIKE ? 0 : 2;
        if (text_append_number(&s->arrays[base], pairs[i].post_id) != 0 ||
            text_append_number(&s->arrays[base + 1], pairs[i].user_id) != 0)
            return -1;
    }
    for (int i = 0; i < 4; i++) {
        if (text_close(&s->arrays[i]) != 0)
            return -1;
    }
    return 0;
}

/* Fills arrays 0-1 with the partitions and their new next offsets. */
static int build_offset_arrays(store *s, const store_position *positions, size_t count)
{
    if (text_open(&s->arrays[0]) != 0 || text_open(&s->arrays[1]) != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (text_append_number(&s->arrays[0], positions[i].partition) != 0 ||
            text_append_number(&s->arrays[1], positions[i].next_offset) != 0)
            return -1;
    }
    if (text_close(&s->arrays[0]) != 0 || text_close(&s->arrays[1]) != 0)
        return -1;
    return 0;
}

/* Runs one statement; returns the result when its status is `expected`,
 * else logs, clears and returns NULL. */
static PGresult *run(store *s, PGconn *conn, const char *what, const char *sql, int nparams,
                     const char *const *params, ExecStatusType expected)
{
    PGresult *result = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(result) == expected)
        return result;

    if (!lk_pg_check_broken(s->pg)) {
        char message[256];
        snprintf(message, sizeof(message), "%s", PQresultErrorMessage(result));
        message[strcspn(message, "\n")] = '\0';
        lk_log_warn("postgres %s failed: %s; the batch will be retried", what, message);
    }
    PQclear(result);
    return NULL;
}

int store_load_offsets(store *s, const int32_t *partitions, int64_t *offsets, size_t count)
{
    PGconn *conn = lk_pg_get(s->pg);
    if (conn == NULL || text_open(&s->arrays[0]) != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        offsets[i] = STORE_NO_OFFSET;
        if (text_append_number(&s->arrays[0], partitions[i]) != 0)
            return -1;
    }
    if (text_close(&s->arrays[0]) != 0)
        return -1;

    static const char sql[] = "SELECT partition, next_offset FROM consumer_offsets\n"
                              "WHERE consumer_group = $1 AND topic = $2 AND partition = "
                              "ANY($3::int[])";
    const char *params[] = {s->group, s->topic, s->arrays[0].data};
    PGresult *result = run(s, conn, "reading offsets", sql, 3, params, PGRES_TUPLES_OK);
    if (result == NULL)
        return -1;

    for (int row = 0; row < PQntuples(result); row++) {
        int32_t partition = (int32_t)strtol(PQgetvalue(result, row, 0), NULL, 10);
        for (size_t i = 0; i < count; i++) {
            if (partitions[i] == partition)
                offsets[i] = strtoll(PQgetvalue(result, row, 1), NULL, 10);
        }
    }
    PQclear(result);
    return 0;
}

/* Locks the offset rows of the batch's partitions and checks each still
 * holds what this member last saw: if not, another member took the
 * partition and committed, and this batch is stale. */
static store_result check_offsets(store *s, PGconn *conn, const store_position *positions,
                                  size_t count)
{
    const char *params[] = {s->group, s->topic, s->arrays[0].data};
    PGresult *result =
        run(s, conn, "locking offsets", lock_offsets_sql, 3, params, PGRES_TUPLES_OK);
    if (result == NULL)
        return STORE_FAILED;

    store_result verdict = STORE_COMMITTED;
    for (size_t i = 0; i < count; i++) {
        int64_t stored = STORE_NO_OFFSET;
        for (int row = 0; row < PQntuples(result); row++) {
            if (strtol(PQgetvalue(result, row, 0), NULL, 10) == positions[i].partition)
                stored = strtoll(PQgetvalue(result, row, 1), NULL, 10);
        }
        if (stored != positions[i].stored) {
            lk_log_warn("partition %" PRId32 " is at offset %" PRId64 " in postgres, not %" PRId64
                        ": another member committed it; dropping this batch",
                        positions[i].partition, stored, positions[i].stored);
            verdict = STORE_FENCED;
        }
    }
    PQclear(result);
    return verdict;
}

static store_result apply_batch(store *s, PGconn *conn, const lk_pair *pairs, size_t pair_count,
                                const store_position *positions, size_t position_count,
                                size_t *changed_posts)
{
    if (build_offset_arrays(s, positions, position_count) != 0)
        return STORE_FAILED;

    store_result verdict = check_offsets(s, conn, positions, position_count);
    if (verdict != STORE_COMMITTED)
        return verdict;

    const char *offset_params[] = {s->group, s->topic, s->arrays[0].data, s->arrays[1].data};
    PGresult *result =
        run(s, conn, "saving offsets", save_offsets_sql, 4, offset_params, PGRES_COMMAND_OK);
    if (result == NULL)
        return STORE_FAILED;
    PQclear(result);

    if (pair_count == 0)
        return STORE_COMMITTED;

    if (build_pair_arrays(s, pairs, pair_count) != 0)
        return STORE_FAILED;
    const char *pair_params[] = {s->arrays[0].data, s->arrays[1].data, s->arrays[2].data,
                                 s->arrays[3].data};
    result = run(s, conn, "applying likes", apply_sql, 4, pair_params, PGRES_COMMAND_OK);
    if (result == NULL)
        return STORE_FAILED;
    *changed_posts = (size_t)strtoul(PQcmdTuples(result), NULL, 10);
    PQclear(result);
    return STORE_COMMITTED;
}

static int run_simple(store *s, PGconn *conn, const char *sql)
{
    PGresult *result = run(s, conn, sql, sql, 0, NULL, PGRES_COMMAND_OK);
    if (result == NULL)
        return -1;
    PQclear(result);
    return 0;
}

store_result store_commit(store *s, const lk_pair *pairs, size_t pair_count,
                          const store_position *positions, size_t position_count,
                          size_t *changed_posts)
{
    *changed_posts = 0;
    PGconn *conn = lk_pg_get(s->pg);
    if (conn == NULL)
        return STORE_FAILED;

    if (run_simple(s, conn, "BEGIN") != 0)
        return STORE_FAILED;

    store_result verdict =
        apply_batch(s, conn, pairs, pair_count, positions, position_count, changed_posts);
    if (verdict == STORE_COMMITTED && run_simple(s, conn, "COMMIT") == 0)
        return STORE_COMMITTED;

    /* On a broken connection the server has rolled back already. */
    if (!lk_pg_check_broken(s->pg))
        run_simple(s, conn, "ROLLBACK");
    return verdict == STORE_FENCED ? STORE_FENCED : STORE_FAILED;
}
