/*
 * What a reader sees of the likes of posts: each one's count, and whether
 * the caller is among its likers. Redis has what the aggregator applied;
 * PostgreSQL, a persister batch behind, answers while Redis cannot.
 */
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(INGEST_FEED_MAX_LIMIT <= LK_REDIS_MAX_POSTS_READ,
               "a page of the feed must fit in one Redis read");

/* The ids in $1 are a page's or one post's, all primary key lookups. A NULL
 * user ($2) likes nothing. */
static const char likes_sql[] =
    "SELECT c.post_id, c.like_count, "
    "EXISTS (SELECT 1 FROM post_likes l WHERE l.post_id = c.post_id AND l.user_id = $2) "
    "FROM post_like_counts c WHERE c.post_id = ANY ($1::bigint[])";

static void take_row(const PGresult *result, int row, const int64_t *post_ids, size_t count,
                     int64_t *counts, int *liked, int64_t user_id)
{
    int64_t post_id = strtoll(PQgetvalue(result, row, 0), NULL, 10);
    for (size_t i = 0; i < count; i++) {
        if (post_ids[i] != post_id)
            continue;
        counts[i] = strtoll(PQgetvalue(result, row, 1), NULL, 10);
        if (user_id > 0)
            liked[i] = PQgetvalue(result, row, 2)[0] == 't';
    }
}

static int read_from_postgres(ingest_app *app, const int64_t *post_ids, size_t count,
                              int64_t user_id, int64_t *counts, int *liked, char *err,
                              size_t errlen)
{
    /* Up to 19 digits and a comma per id, the braces and the NUL. */
    char ids[INGEST_FEED_MAX_LIMIT * 20 + 3];
    char user[24];
    ingest_db_id_array(post_ids, count, ids, sizeof(ids));
    snprintf(user, sizeof(user), "%" PRId64, user_id);

    const char *params[] = {ids, user_id > 0 ? user : NULL};
    PGresult *result = ingest_db_run(app->pg, likes_sql, 2, params, 1, err, errlen);
    if (result == NULL)
        return -1;

    for (size_t i = 0; i < count; i++) {
        counts[i] = 0;
        if (user_id > 0)
            liked[i] = 0;
    }
    for (int row = 0; row < PQntuples(result); row++)
        take_row(result, row, post_ids, count, counts, liked, user_id);
    PQclear(result);
    return 0;
}

int ingest_post_likes_read(ingest_app *app, const int64_t *post_ids, size_t count, int64_t user_id,
                           int64_t *counts, int *liked, char *err, size_t errlen)
{
    if (count > INGEST_FEED_MAX_LIMIT) {
        snprintf(err, errlen, "%zu posts asked for, at most %d are read at once", count,
                 INGEST_FEED_MAX_LIMIT);
        return -1;
    }

    /* lk_redis logs the change to unreachable once; each read meanwhile
     * goes to PostgreSQL without a word. */
    if (lk_redis_get_post_likes(app->redis, post_ids, count, user_id, counts, liked) == 0)
        return 0;
    return read_from_postgres(app, post_ids, count, user_id, counts, liked, err, errlen);
}
