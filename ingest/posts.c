/*
 * Posts: POST /v1/posts has the images stored by a worker of image_pool.c
 * and inserts the row, GET /v1/posts/{id} reads it back with its likes, the
 * feed reads pages of them, and the likes ask here whether a post exists.
 *
 * The insert stays on the HTTP thread, after the resume: the PostgreSQL
 * connection of the app is not shared between threads.
 */
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* The columns of a post as the JSON wants them, in this order. */
#define POST_COLUMNS                                                                               \
    "p.id, p.author_id, p.caption, p.image_name, p.thumb_name, p.width, p.height, "                \
    "to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

enum post_column {
    COLUMN_ID,
    COLUMN_AUTHOR_ID,
    COLUMN_CAPTION,
    COLUMN_IMAGE_NAME,
    COLUMN_THUMB_NAME,
    COLUMN_WIDTH,
    COLUMN_HEIGHT,
    COLUMN_CREATED_AT,
};

static const char insert_sql[] =
    "INSERT INTO posts AS p (author_id, caption, image_name, thumb_name, width, height) "
    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING " POST_COLUMNS;

static const char select_sql[] = "SELECT " POST_COLUMNS " FROM posts p WHERE p.id = $1";

/* Keyset pages on the primary key: a page below a given id stays the same
 * however many posts are added above it. */
static const char page_sql[] = "SELECT " POST_COLUMNS " FROM posts p ORDER BY p.id DESC LIMIT $1";

static const char page_before_sql[] =
    "SELECT " POST_COLUMNS " FROM posts p WHERE p.id < $1 ORDER BY p.id DESC LIMIT $2";

static const char exists_sql[] = "SELECT 1 FROM posts WHERE id = $1";

static int64_t column_int(const PGresult *result, int row, enum post_column column)
{
    return strtoll(PQgetvalue(result, row, (int)column), NULL, 10);
}

int64_t ingest_post_id(const PGresult *result, int row)
{
    return column_int(result, row, COLUMN_ID);
}

static int add_media_url(json_object *doc, const char *key, const char *name)
{
    char url[INGEST_MEDIA_NAME_LEN + 16];
    snprintf(url, sizeof(url), "/media/%s", name);
    return ingest_json_add_string(doc, key, url);
}

static int add_liked(json_object *doc, int liked)
{
    if (liked < 0)
        return 0;

    json_object *member = json_object_new_boolean(liked);
    if (member == NULL)
        return -1;
    if (json_object_object_add(doc, "liked_by_me", member) != 0) {
        json_object_put(member);
        return -1;
    }
    return 0;
}

json_object *ingest_post_json(const PGresult *result, int row, int64_t like_count, int liked)
{
    json_object *doc = json_object_new_object();
    if (doc == NULL)
        return NULL;

    if (ingest_json_add_int(doc, "id", column_int(result, row, COLUMN_ID)) != 0 ||
        ingest_json_add_int(doc, "author_id", column_int(result, row, COLUMN_AUTHOR_ID)) != 0 ||
        ingest_json_add_string(doc, "caption", PQgetvalue(result, row, COLUMN_CAPTION)) != 0 ||
        add_media_url(doc, "image_url", PQgetvalue(result, row, COLUMN_IMAGE_NAME)) != 0 ||
        add_media_url(doc, "thumb_url", PQgetvalue(result, row, COLUMN_THUMB_NAME)) != 0 ||
        ingest_json_add_int(doc, "width", column_int(result, row, COLUMN_WIDTH)) != 0 ||
        ingest_json_add_int(doc, "height", column_int(result, row, COLUMN_HEIGHT)) != 0 ||
        ingest_json_add_int(doc, "like_count", like_count) != 0 || add_liked(doc, liked) != 0 ||
        ingest_json_add_string(doc, "created_at", PQgetvalue(result, row, COLUMN_CREATED_AT)) !=
            0) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

static void remember_post(ingest_app *app, int64_t post_id)
{
    /* Only a cache: without it the next like asks PostgreSQL again. */
    if (ingest_post_set_add(app->known_posts, post_id) != 0)
        lk_log_warn("no memory to remember post %" PRId64 ", it will be looked up again", post_id);
}

int ingest_posts_exists(ingest_app *app, int64_t post_id, char *err, size_t errlen)
{
    if (ingest_post_set_contains(app->known_posts, post_id))
        return 1;

    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, post_id);
    const char *params[] = {id};
    PGresult *result = ingest_db_run(app->pg, exists_sql, 1, params, 1, err, errlen);
    if (result == NULL)
        return -1;

    int exists = PQntuples(result) > 0;
    PQclear(result);
    if (exists)
        remember_post(app, post_id);
    return exists;
}

PGresult *ingest_posts_select_page(ingest_app *app, int64_t before_id, int limit, char *err,
                                   size_t errlen)
{
    char before[24];
    char count[16];
    snprintf(before, sizeof(before), "%" PRId64, before_id);
    snprintf(count, sizeof(count), "%d", limit);

    if (before_id == 0) {
        const char *params[] = {count};
        return ingest_db_run(app->pg, page_sql, 1, params, 1, err, errlen);
    }
    const char *params[] = {before, count};
    return ingest_db_run(app->pg, page_before_sql, 2, params, 1, err, errlen);
}

enum MHD_Result ingest_posts_get(ingest_request *req)
{
    char id[24];
    char err[256];
    snprintf(id, sizeof(id), "%" PRId64, req->path_id);
    const char *params[] = {id};
    PGresult *result = ingest_db_run(req->app->pg, select_sql, 1, params, 1, err, sizeof(err));
    if (result == NULL)
        return ingest_reply_unavailable(req, "postgres: reading post %s failed (%s)", id, err);

    if (PQntuples(result) == 0) {
        PQclear(result);
        return ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no post with this id");
    }
    remember_post(req->app, req->path_id);

    int64_t like_count = 0;
    int liked = 0;
    if (ingest_post_likes_read(req->app, &req->path_id, 1, req->user_id, &like_count, &liked, err,
                               sizeof(err)) != 0) {
        PQclear(result);
        return ingest_reply_unavailable(req, "reading the likes of post %s failed (%s)", id, err);
    }

    json_object *doc = ingest_post_json(result, 0, like_count, req->user_id > 0 ? liked : -1);
    PQclear(result);
    return ingest_reply_json(req, MHD_HTTP_OK, doc);
}

static enum MHD_Result reply_media_refused(ingest_request *req, ingest_media_status status,
                                           const char *why)
{
    if (status == INGEST_MEDIA_FAILED)
        return ingest_reply_internal(req, "storing the images failed (%s)", why);
    if (status == INGEST_MEDIA_CANCELLED)
        return ingest_reply_unavailable(req, "upload not stored: %s", why);

    lk_log_info("request %" PRIu64 ": upload refused: %s", req->id, why);
    if (status == INGEST_MEDIA_TOO_LARGE)
        return ingest_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "image_too_large", why);
    return ingest_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "not_an_image",
                              "the file is not a readable JPEG, PNG, WebP, GIF, TIFF or HEIF "
                              "image");
}

static enum MHD_Result insert_post(ingest_request *req, const ingest_upload *upload,
                                   const ingest_media *media)
{
    char author_id[24];
    char width[16];
    char height[16];
    snprintf(author_id, sizeof(author_id), "%" PRId64, req->user_id);
    snprintf(width, sizeof(width), "%d", media->width);
    snprintf(height, sizeof(height), "%d", media->height);

    /* Not retried: after a broken connection the insert may have happened. */
    char err[256];
    const char *params[] = {author_id,         upload->caption, media->image_name,
                            media->thumb_name, width,           height};
    PGresult *result = ingest_db_run(req->app->pg, insert_sql, 6, params, 0, err, sizeof(err));
    if (result == NULL)
        return ingest_reply_unavailable(req, "postgres: inserting a post failed (%s)", err);

    int64_t post_id = column_int(result, 0, COLUMN_ID);
    remember_post(req->app, post_id);
    json_object *doc = ingest_post_json(result, 0, 0, -1);
    PQclear(result);

    lk_log_info("request %" PRIu64 ": post %" PRId64 " created by user %" PRId64 " (%dx%d)",
                req->id, post_id, req->user_id, media->width, media->height);
    return ingest_reply_json(req, MHD_HTTP_CREATED, doc);
}

/* Hands the image to a worker and suspends the connection until its
 * files are written (or it is refused). */
static enum MHD_Result start_decoding(ingest_request *req, ingest_upload *upload)
{
    char err[256];
    if (ingest_image_pool_submit(req->app->images, req->conn, req->id, upload->image,
                                 upload->image_len, &upload->job, err, sizeof(err)) != 0)
        return ingest_reply_unavailable(req, "%s", err);

    upload->image = NULL; /* the job's now */
    upload->image_len = 0;
    upload->image_cap = 0;

    MHD_suspend_connection(req->conn);
    ingest_image_job_wait(upload->job);
    return MHD_YES;
}

/* Called again after the resume: the worker is done with the image. */
static enum MHD_Result answer_decoded(ingest_request *req, ingest_upload *upload)
{
    ingest_media media;
    char why[512];
    ingest_media_status status = ingest_image_job_outcome(upload->job, &media, why, sizeof(why));
    if (status != INGEST_MEDIA_OK)
        return reply_media_refused(req, status, why);
    return insert_post(req, upload, &media);
}

enum MHD_Result ingest_posts_create(ingest_request *req)
{
    ingest_upload *upload = req->state;
    if (upload->job != NULL)
        return answer_decoded(req, upload);

    if (ingest_upload_finish_or_reply(req) == NULL)
        return req->status != 0 ? MHD_YES : MHD_NO;
    return start_decoding(req, upload);
}
