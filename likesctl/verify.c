/*
 * likesctl verify [--wait SECONDS] [--all]
 *
 * Compares, for every post in PostgreSQL, three pairs of numbers that must
 * be equal once the pipeline has drained:
 *   - the count in Redis and the count in PostgreSQL (post_like_counts);
 *   - the count in Redis and the size of its set of likers in Redis;
 *   - the count in PostgreSQL and its rows in post_likes.
 * A count missing from Redis is 0, as the API reads it.
 *
 * Posts are read in pages by id (keyset, never OFFSET), and each page's
 * Redis numbers in one MULTI/EXEC round trip, so memory and the time any
 * one statement holds either store stay bounded at millions of posts.
 *
 * While events are in flight the stores differ for a moment; --wait checks
 * the differing posts again, once a second, until they agree or the time is
 * up. Exit status: 0 none differ, 1 some do, 2 could not check.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "likesctl.h"
#include "progress.h"
#include "redis.h"
#include "stores.h"

#define WHO          "likesctl verify"
#define PAGE_POSTS   10000
#define SHOWN_POSTS  1000
#define RETRY_MS     1000
#define NOT_A_NUMBER (-1)

/* Each post's numbers in the stores. */
typedef struct post_state {
    int64_t post_id;
    int64_t pg_count;
    int64_t pg_rows;
    int64_t redis_count;
    int64_t redis_members;
} post_state;

typedef struct state_list {
    post_state *items;
    size_t count;
    size_t capacity;
} state_list;

typedef struct verify {
    const lk_config *cfg;
    PGconn *pg;
    redisContext *redis;
    post_state page[PAGE_POSTS];
    size_t page_count;
    const char *redis_argv[PAGE_POSTS + 1];
    char redis_keys[PAGE_POSTS][48];
    char *id_array; /* a page's ids as a PostgreSQL array literal */
    size_t id_array_capacity;
    state_list differing;
    int64_t checked;
    progress progress;
} verify;

/* Each post with its count as the view post_like_counts defines it (0
 * without a counter row) and its rows. The view is written out here: planned
 * through it, the outer join reads post_counters from its first row on
 * every page, which grows with the square of the posts. */
#define POST_COLUMNS                                                                               \
    "SELECT p.id,\n"                                                                               \
    "       coalesce((SELECT c.like_count FROM post_counters c WHERE c.post_id = p.id), 0),\n"     \
    "       (SELECT count(*) FROM post_likes pl WHERE pl.post_id = p.id)\n"                        \
    "FROM posts p\n"

/* The page after `$1`, at most `$2` posts. */
static const char page_after_sql[] = POST_COLUMNS "WHERE p.id > $1::bigint\n"
                                                  "ORDER BY p.id\n"
                                                  "LIMIT $2::int";

/* The posts of the array `$1`. */
static const char page_of_ids_sql[] = POST_COLUMNS "WHERE p.id = ANY($1::bigint[])\n"
                                                   "ORDER BY p.id";

static int differs(const post_state *post)
{
    return post->redis_count != post->pg_count || post->redis_count != post->redis_members ||
           post->pg_count != post->pg_rows;
}

static int list_add(state_list *list, const post_state *post)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        post_state *items = realloc(list->items, capacity * sizeof(*items));
        if (items == NULL)
            return -1;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = *post;
    return 0;
}

static int take_page_rows(verify *v, PGresult *result)
{
    v->page_count = (size_t)PQntuples(result);
    for (size_t i = 0; i < v->page_count; i++) {
        post_state *post = &v->page[i];
        memset(post, 0, sizeof(*post));
        post->post_id = strtoll(PQgetvalue(result, (int)i, 0), NULL, 10);
        post->pg_count = strtoll(PQgetvalue(result, (int)i, 1), NULL, 10);
        post->pg_rows = strtoll(PQgetvalue(result, (int)i, 2), NULL, 10);
    }
    PQclear(result);
    return 0;
}

static int load_page_after(verify *v, int64_t after)
{
    char after_text[24], limit_text[16];
    snprintf(after_text, sizeof(after_text), "%" PRId64, after);
    snprintf(limit_text, sizeof(limit_text), "%d", PAGE_POSTS);
    const char *params[] = {after_text, limit_text};

    PGresult *result = stores_pg_run(v->pg, WHO, "reading posts from PostgreSQL", page_after_sql, 2,
                                     params, PGRES_TUPLES_OK);
    if (result == NULL)
        return -1;
    return take_page_rows(v, result);
}

/* Writes {id,id,...} of `count` posts into v->id_array. */
static int build_id_array(verify *v, const post_state *posts, size_t count)
{
    size_t needed = 3 + count * 21;
    if (needed > v->id_array_capacity) {
        char *array = realloc(v->id_array, needed);
        if (array == NULL)
            return -1;
        v->id_array = array;
        v->id_array_capacity = needed;
    }

    size_t len = 0;
    v->id_array[len++] = '{';
    for (size_t i = 0; i < count; i++)
        len += (size_t)snprintf(v->id_array + len, needed - len, "%s%" PRId64, i ? "," : "",
                                posts[i].post_id);
    v->id_array[len++] = '}';
    v->id_array[len] = '\0';
    return 0;
}

static int load_page_of(verify *v, const post_state *posts, size_t count)
{
    if (build_id_array(v, posts, count) != 0) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return -1;
    }
    const char *params[] = {v->id_array};
    PGresult *result = stores_pg_run(v->pg, WHO, "reading posts from PostgreSQL", page_of_ids_sql,
                                     1, params, PGRES_TUPLES_OK);
    if (result == NULL)
        return -1;
    return take_page_rows(v, result);
}

/* Queues MULTI, one MGET of the page's counts, one SCARD per post and
 * EXEC: one round trip, one consistent moment of Redis. */
static int queue_redis_reads(verify *v)
{
    v->redis_argv[0] = "MGET";
    for (size_t i = 0; i < v->page_count; i++) {
        lk_redis_key_count(v->page[i].post_id, v->redis_keys[i], sizeof(v->redis_keys[i]));
        v->redis_argv[i + 1] = v->redis_keys[i];
    }

    if (redisAppendCommand(v->redis, "MULTI") != REDIS_OK ||
        redisAppendCommandArgv(v->redis, (int)v->page_count + 1, v->redis_argv, NULL) != REDIS_OK)
        return -1;
    for (size_t i = 0; i < v->page_count; i++) {
        char users_key[48];
        lk_redis_key_users(v->page[i].post_id, users_key, sizeof(users_key));
        if (redisAppendCommand(v->redis, "SCARD %s", users_key) != REDIS_OK)
            return -1;
    }
    return redisAppendCommand(v->redis, "EXEC") == REDIS_OK ? 0 : -1;
}

static int64_t parse_count(const redisReply *value)
{
    if (value->type == REDIS_REPLY_NIL)
        return 0;
    if (value->type != REDIS_REPLY_STRING)
        return NOT_A_NUMBER;

    char *end;
    errno = 0;
    long long count = strtoll(value->str, &end, 10);
    if (errno != 0 || end == value->str || *end != '\0' || count < 0)
        return NOT_A_NUMBER;
    return count;
}

static int take_redis_reads(verify *v, const redisReply *exec)
{
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != v->page_count + 1 ||
        exec->element[0]->type != REDIS_REPLY_ARRAY || exec->element[0]->elements != v->page_count)
        return -1;

    const redisReply *counts = exec->element[0];
    for (size_t i = 0; i < v->page_count; i++) {
        const redisReply *members = exec->element[i + 1];
        if (members->type != REDIS_REPLY_INTEGER)
            return -1;
        v->page[i].redis_count = parse_count(counts->element[i]);
        v->page[i].redis_members = members->integer;
    }
    return 0;
}

static int read_redis(verify *v)
{
    if (v->page_count == 0)
        return 0;
    if (queue_redis_reads(v) != 0) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return -1;
    }

    /* Every answer is read, so that a bad one cannot leave the next page
     * reading this one's: MULTI, a QUEUED per command, then EXEC. */
    size_t answers = v->page_count + 3;
    redisReply *exec = NULL;
    for (size_t i = 0; i < answers; i++) {
        void *reply = NULL;
        if (redisGetReply(v->redis, &reply) != REDIS_OK) {
            freeReplyObject(exec);
            stores_redis_failed(v->cfg, WHO, v->redis, NULL);
            return -1;
        }
        freeReplyObject(exec);
        exec = reply;
    }

    int rc = take_redis_reads(v, exec);
    if (rc != 0)
        stores_redis_failed(v->cfg, WHO, v->redis, exec->type == REDIS_REPLY_ERROR ? exec : NULL);
    freeReplyObject(exec);
    return rc;
}

/* Keeps the page's differing posts in `into`. */
static int collect(verify *v, state_list *into)
{
    for (size_t i = 0; i < v->page_count; i++) {
        if (differs(&v->page[i]) && list_add(into, &v->page[i]) != 0) {
            fprintf(stderr, "%s: out of memory\n", WHO);
            return -1;
        }
    }
    return 0;
}

/* The first pass: every post, page after page. */
static int check_all(verify *v)
{
    int64_t after = 0;
    do {
        if (load_page_after(v, after) != 0 || read_redis(v) != 0 || collect(v, &v->differing) != 0)
            return -1;
        if (v->page_count > 0)
            after = v->page[v->page_count - 1].post_id;
        v->checked += (int64_t)v->page_count;
        progress_update(&v->progress, "verify: %" PRId64 " posts checked, %zu differ so far",
                        v->checked, v->differing.count);
    } while (v->page_count == PAGE_POSTS);
    return 0;
}

/* A later pass: only the posts that differed in the last one. */
static int check_again(verify *v)
{
    state_list previous = v->differing;
    memset(&v->differing, 0, sizeof(v->differing));

    int rc = 0;
    for (size_t start = 0; rc == 0 && start < previous.count; start += PAGE_POSTS) {
        size_t count = previous.count - start < PAGE_POSTS ? previous.count - start : PAGE_POSTS;
        if (load_page_of(v, previous.items + start, count) != 0 || read_redis(v) != 0 ||
            collect(v, &v->differing) != 0)
            rc = -1;
    }
    free(previous.items);
    return rc;
}

static void print_number(FILE *out, int64_t value)
{
    if (value == NOT_A_NUMBER)
        fprintf(out, "(not a count)");
    else
        fprintf(out, "%" PRId64, value);
}

static void print_check(const post_state *post, const char *left_name, int64_t left,
                        const char *right_name, int64_t right)
{
    if (left == right)
        return;
    printf("post %" PRId64 ": %s ", post->post_id, left_name);
    print_number(stdout, left);
    printf(" != %s ", right_name);
    print_number(stdout, right);
    printf("\n");
}

static void print_differences(const verify *v, int show_all)
{
    size_t shown = show_all || v->differing.count < SHOWN_POSTS ? v->differing.count : SHOWN_POSTS;
    for (size_t i = 0; i < shown; i++) {
        const post_state *post = &v->differing.items[i];
        print_check(post, "redis count", post->redis_count, "postgres count", post->pg_count);
        print_check(post, "redis count", post->redis_count, "redis set size", post->redis_members);
        print_check(post, "postgres count", post->pg_count, "postgres rows", post->pg_rows);
    }
    if (shown < v->differing.count)
        printf("... and %zu more posts that differ (--all shows every one)\n",
               v->differing.count - shown);
}

static int parse_args(int argc, char **argv, int *wait_seconds, int *show_all)
{
    *wait_seconds = 0;
    *show_all = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            *show_all = 1;
            continue;
        }
        if (strcmp(argv[i], "--wait") != 0 || i + 1 == argc) {
            fprintf(stderr, "usage: likesctl verify [--wait SECONDS] [--all]\n");
            return -1;
        }

        char *end;
        errno = 0;
        long seconds = strtol(argv[++i], &end, 10);
        if (errno != 0 || *end != '\0' || end == argv[i] || seconds < 0 || seconds > 86400) {
            fprintf(stderr, "%s: --wait takes whole seconds from 0 to 86400, not \"%s\"\n", WHO,
                    argv[i]);
            return -1;
        }
        *wait_seconds = (int)seconds;
    }
    return 0;
}

/* Checks every post, then the differing ones again until they agree or
 * the wait is over. Returns 0, or -1 when a store failed. */
static int run_checks(verify *v, int wait_seconds)
{
    int64_t deadline = lk_monotonic_ms() + (int64_t)wait_seconds * 1000;
    if (check_all(v) != 0)
        return -1;

    for (int64_t left = deadline - lk_monotonic_ms(); v->differing.count > 0 && left > 0;
         left = deadline - lk_monotonic_ms()) {
        progress_update(&v->progress,
                        "verify: %zu posts differ; checking them again, %" PRId64 " s left",
                        v->differing.count, (left + 999) / 1000);
        lk_sleep_ms(left < RETRY_MS ? (int)left : RETRY_MS, NULL);
        if (check_again(v) != 0)
            return -1;
    }
    return 0;
}

int likesctl_verify(const lk_config *cfg, int argc, char **argv)
{
    int wait_seconds, show_all;
    if (parse_args(argc, argv, &wait_seconds, &show_all) != 0)
        return 2;

    verify *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        fprintf(stderr, "%s: out of memory\n", WHO);
        return 2;
    }
    v->cfg = cfg;
    progress_start(&v->progress);

    int status = 2;
    v->pg = stores_pg_connect(cfg, WHO);
    if (v->pg == NULL)
        goto done;
    v->redis = stores_redis_connect(cfg, WHO);
    if (v->redis == NULL || run_checks(v, wait_seconds) != 0)
        goto done;

    progress_clear(&v->progress);
    print_differences(v, show_all);
    printf("verify: %" PRId64 " post%s checked, %zu differ%s\n", v->checked,
           v->checked == 1 ? "" : "s", v->differing.count, v->differing.count == 1 ? "s" : "");
    status = v->differing.count == 0 ? 0 : 1;

done:
    progress_clear(&v->progress);
    if (v->redis != NULL)
        redisFree(v->redis);
    if (v->pg != NULL)
        PQfinish(v->pg);
    free(v->differing.items);
    free(v->id_array);
    free(v);
    return status;
}
