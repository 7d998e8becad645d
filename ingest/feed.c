/*
 * GET /v1/posts: the feed, newest post first, a page at a time.
 *
 * Pages are cut by id, not by position: the cursor names the last post a
 * page showed and the next page starts below it, so posts created between
 * two pages neither repeat nor hide any. The cursor is opaque to clients:
 * "v1:<last id>" in unpadded base64url, versioned so that its content can
 * change without breaking the cursors clients hold.
 */
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64url.h"

#define CURSOR_PREFIX "v1:"

/* Base64 of "v1:" and 19 digits is 30 characters; more is not ours. */
#define CURSOR_MAX_LEN 40

/* Cursors */

static void cursor_encode(int64_t last_id, char *out)
{
    char text[32];
    int len = snprintf(text, sizeof(text), CURSOR_PREFIX "%" PRId64, last_id);
    lk_base64url_encode((const unsigned char *)text, (size_t)len, out);
}

/* Takes only what cursor_encode writes, byte for byte: a cursor that
 * decodes to the same id under another spelling is refused too. */
static int cursor_decode(const char *cursor, size_t len, int64_t *last_id)
{
    if (len == 0 || len > CURSOR_MAX_LEN)
        return -1;

    unsigned char text[CURSOR_MAX_LEN];
    int text_len = lk_base64url_decode(cursor, len, text);
    size_t prefix = strlen(CURSOR_PREFIX);
    if (text_len <= (int)prefix || text_len > (int)prefix + 19 ||
        memcmp(text, CURSOR_PREFIX, prefix) != 0)
        return -1;

    uint64_t value = 0;
    for (int i = (int)prefix; i < text_len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (uint64_t)(text[i] - '0');
    }
    if (value == 0 || value > INT64_MAX)
        return -1;

    char canonical[CURSOR_MAX_LEN + 1];
    cursor_encode((int64_t)value, canonical);
    if (strlen(canonical) != len || memcmp(canonical, cursor, len) != 0)
        return -1;
    *last_id = (int64_t)value;
    return 0;
}

/* Query parameters */

/* Returns 1 with the value of query parameter `name` in `value` and `len`
 * (NULL for a bare "?name"), or 0 when the query does not have it. */
static int query_param(ingest_request *req, const char *name, const char **value, size_t *len)
{
    *value = NULL;
    *len = 0;
    return MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                         value, len) == MHD_YES;
}

/* 1 or more, in decimal digits only; anything above the most is the most. */
static int parse_limit_or_reply(ingest_request *req, int *limit)
{
    const char *value;
    size_t len;
    *limit = INGEST_FEED_DEFAULT_LIMIT;
    if (!query_param(req, "limit", &value, &len))
        return 0;

    /* Past three digits after the leading zeros, it is over the cap. */
    int parsed = 0;
    if (value != NULL && len > 0 && strspn(value, "0123456789") == len) {
        size_t zeros = strspn(value, "0");
        parsed = len - zeros > 3 ? INGEST_FEED_MAX_LIMIT : atoi(value + zeros);
    }
    if (parsed < 1) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "limit must be an integer of at least 1");
        return -1;
    }

    *limit = parsed < INGEST_FEED_MAX_LIMIT ? parsed : INGEST_FEED_MAX_LIMIT;
    return 0;
}

/* `before_id` 0 for the first page. */
static int parse_cursor_or_reply(ingest_request *req, int64_t *before_id)
{
    const char *value;
    size_t len;
    *before_id = 0;
    if (!query_param(req, "cursor", &value, &len))
        return 0;

    if (value != NULL && cursor_decode(value, len, before_id) == 0)
        return 0;

    ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                       "cursor must be the next_cursor of a page, as it was given");
    return -1;
}

/* The page */

/* {"posts":[...],"next_cursor":...} for the first `shown` rows of `page`;
 * NULL when out of memory. */
static json_object *page_json(const PGresult *page, int shown, const int64_t *counts,
                              const int *liked, int64_t user_id, const char *next_cursor)
{
    json_object *doc = json_object_new_object();
    json_object *posts = json_object_new_array_ext(shown);
    if (doc == NULL || posts == NULL || json_object_object_add(doc, "posts", posts) != 0) {
        json_object_put(posts);
        json_object_put(doc);
        return NULL;
    }

    for (int row = 0; row < shown; row++) {
        json_object *post = ingest_post_json(page, row, counts[row], user_id > 0 ? liked[row] : -1);
        if (post == NULL || json_object_array_add(posts, post) != 0) {
            json_object_put(post);
            json_object_put(doc);
            return NULL;
        }
    }

    json_object *cursor = next_cursor != NULL ? json_object_new_string(next_cursor) : NULL;
    if ((next_cursor != NULL && cursor == NULL) ||
        json_object_object_add(doc, "next_cursor", cursor) != 0) {
        json_object_put(cursor);
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

enum MHD_Result ingest_feed_get(ingest_request *req)
{
    int limit;
    int64_t before_id;
    if (parse_limit_or_reply(req, &limit) != 0 || parse_cursor_or_reply(req, &before_id) != 0)
        return req->status != 0 ? MHD_YES : MHD_NO;

    /* One row more than shown tells whether a next page exists, so the
     * last page says so itself rather than leading to an empty one. */
    char err[256];
    PGresult *page = ingest_posts_select_page(req->app, before_id, limit + 1, err, sizeof(err));
    if (page == NULL)
        return ingest_reply_unavailable(req, "postgres: reading a page of posts failed (%s)", err);

    int rows = PQntuples(page);
    int shown = rows < limit ? rows : limit;
    int64_t post_ids[INGEST_FEED_MAX_LIMIT];
    int64_t counts[INGEST_FEED_MAX_LIMIT];
    int liked[INGEST_FEED_MAX_LIMIT];
    for (int row = 0; row < shown; row++)
        post_ids[row] = ingest_post_id(page, row);

    if (ingest_post_likes_read(req->app, post_ids, (size_t)shown, req->user_id, counts, liked, err,
                               sizeof(err)) != 0) {
        PQclear(page);
        return ingest_reply_unavailable(req, "reading the likes of a page failed (%s)", err);
    }

    char next_cursor[CURSOR_MAX_LEN + 1];
    if (rows > limit)
        cursor_encode(post_ids[shown - 1], next_cursor);
    json_object *doc =
        page_json(page, shown, counts, liked, req->user_id, rows > limit ? next_cursor : NULL);
    PQclear(page);
    return ingest_reply_json(req, MHD_HTTP_OK, doc);
}
