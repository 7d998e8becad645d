/*
 * The parts of likes-ingest and how they meet.
 *
 * One libmicrohttpd thread runs every handler; everything declared here is
 * called on that thread only, unless its comment says otherwise. The Kafka
 * delivery reports arrive on a poller thread of likes.c, and uploads are
 * decoded by the workers of image_pool.c; each touches a request only
 * through the hand-over described there.
 */
#ifndef INGEST_INGEST_H
#define INGEST_INGEST_H

#include <json-c/json.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "pg.h"
#include "redis.h"

/* Largest body accepted by the endpoints that do not take an upload. */
#define INGEST_JSON_BODY_LIMIT (64 * 1024)

/* Room left for multipart headers and the caption on top of the image. */
#define INGEST_UPLOAD_OVERHEAD (64 * 1024)

#define INGEST_CAPTION_MAX_BYTES 2000

typedef struct ingest_producer ingest_producer;
typedef struct ingest_post_set ingest_post_set;
typedef struct ingest_streams ingest_streams;
typedef struct ingest_stream_feed ingest_stream_feed;
typedef struct ingest_image_pool ingest_image_pool;
typedef struct ingest_image_job ingest_image_job;

/* What every handler shares. Built by main() before the daemon starts and
 * released after it has stopped. */
typedef struct ingest_app {
    lk_config cfg;
    lk_pg *pg;
    lk_redis *redis;
    ingest_producer *producer;
    ingest_post_set *known_posts;
    ingest_streams *streams;
    ingest_image_pool *images;
    uint64_t next_request_id;
    int uploads_receiving; /* bodies of POST /v1/posts being read now */
} ingest_app;

typedef struct ingest_route ingest_route;

/* One HTTP request, from its headers until libmicrohttpd reports it done. */
typedef struct ingest_request {
    uint64_t id;
    ingest_app *app;
    struct MHD_Connection *conn;
    const ingest_route *route;
    char method[16]; /* copies for the log lines */
    char path[160];
    struct timespec started;

    int64_t path_id;     /* the {id} of the path, once checked */
    char path_name[128]; /* the {name} of the path */
    int64_t user_id;     /* from the bearer token; 0 when an optional one is absent */

    char *body; /* the body of a JSON endpoint, not NUL-terminated */
    size_t body_len;
    size_t body_cap;
    uint64_t body_limit;
    uint64_t body_seen;

    /* A refusal found while the body streamed in, answered at its end. */
    unsigned fail_status;
    const char *fail_code;
    char fail_message[200];

    unsigned status;       /* what was answered, for the access log */
    int close_connection;  /* answer with Connection: close */
    int headers_checked;   /* start_request has run */
    unsigned target_flags; /* what the request target held before decoding */

    char preflight_methods[64]; /* of the path, for a CORS preflight */

    /* Per-handler state, released with free_state when the request ends. */
    void *state;
    void (*free_state)(void *state);
} ingest_request;

/* Called once the headers passed every generic check; returns 0 to go on
 * reading the body, or -1 after it has queued an answer itself. */
typedef int (*ingest_begin_fn)(ingest_request *req);

/* Takes a piece of the body. Records a refusal with ingest_request_fail()
 * rather than answering: nothing can be sent before the body is read. */
typedef void (*ingest_body_fn)(ingest_request *req, const char *data, size_t size);

/* Answers the request once its whole body is in. May suspend the
 * connection instead; it is then called again after the resume. */
typedef enum MHD_Result (*ingest_handle_fn)(ingest_request *req);

enum {
    INGEST_ROUTE_AUTH = 1 << 0,          /* needs a valid bearer token */
    INGEST_ROUTE_JSON_BODY = 1 << 1,     /* optional JSON body, kept in req->body */
    INGEST_ROUTE_UPLOAD = 1 << 2,        /* required body of up to max_upload_bytes */
    INGEST_ROUTE_OPTIONAL_AUTH = 1 << 3, /* a bearer token is optional, but checked if sent */
};

struct ingest_route {
    const char *method;
    const char *pattern; /* segments "{id}" and "{name}" match one segment */
    unsigned flags;
    const char *media_type; /* required Content-Type of a body, or NULL */
    ingest_begin_fn begin;
    ingest_body_fn take_body;
    ingest_handle_fn handle;
};

/* http.c */

/* Starts the daemon on cfg.http_addr:cfg.http_port. Returns it, or NULL
 * with the reason in `err`. `app` must outlive the daemon. */
struct MHD_Daemon *ingest_http_start(ingest_app *app, char *err, size_t errlen);

/* Queues `doc` as the JSON answer and releases it. A NULL `doc` (out of
 * memory while building it) becomes a 500. */
enum MHD_Result ingest_reply_json(ingest_request *req, unsigned status, json_object *doc);

/* Queues {"error":code,"message":message}, with WWW-Authenticate on a 401
 * and Retry-After on a 503. */
enum MHD_Result ingest_reply_error(ingest_request *req, unsigned status, const char *code,
                                   const char *message);

/* Logs what failed, then answers 503 unavailable with Retry-After. */
enum MHD_Result ingest_reply_unavailable(ingest_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs what failed, then answers 500 internal_error. */
enum MHD_Result ingest_reply_internal(ingest_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queues a prepared response and releases the caller's reference. Adds the
 * CORS headers the request's Origin calls for. */
enum MHD_Result ingest_reply_response(ingest_request *req, unsigned status,
                                      struct MHD_Response *response);

/* Records a refusal found while reading the body; the first one wins. */
void ingest_request_fail(ingest_request *req, unsigned status, const char *code,
                         const char *message);

/* Add a member to a JSON object under construction. Return 0, or -1 when
 * out of memory; the object stays the caller's either way. */
int ingest_json_add_string(json_object *obj, const char *key, const char *value);
int ingest_json_add_int(json_object *obj, const char *key, int64_t value);

/* Accepts 1 to 19 decimal digits without a leading zero whose value fits
 * int64, so that an id has one spelling, as a token's user id has.
 * Returns 0 with the value in `out`, or -1. */
int ingest_parse_positive_id(const char *text, int64_t *out);

/* cors.c: cross-origin access for the browser pages of cfg.cors_origins */

/* Adds to `response` Vary: Origin whenever CORS is configured, and for an
 * allowed Origin the headers that let its page read the answer. Returns 0,
 * or -1 when out of memory; `response` stays the caller's. */
int ingest_cors_add_headers(ingest_request *req, struct MHD_Response *response);

/* Returns 1 when the request is a preflight (OPTIONS with
 * Access-Control-Request-Method) from an allowed Origin, for a path that
 * takes `methods` ("GET, HEAD"): its route is then the preflight's, which
 * answers once the request is read, so that the connection stays open. */
int ingest_cors_is_preflight(ingest_request *req, const char *methods);

/* users.c */

enum MHD_Result ingest_users_create(ingest_request *req);

/* form.c: a strict reader of multipart/form-data, fed in pieces */

typedef struct ingest_form ingest_form;

/* Longest part name taken; a longer one makes the form malformed. */
#define INGEST_FORM_NAME_MAX 256

/* Called once per part, once its headers are read, with its name (quoted
 * or not in the header, unquoted here). Returns 0, or -1 to stop reading. */
typedef int (*ingest_form_part_fn)(void *cls, const char *name);

/* Called with the pieces of the current part's value, in order, none
 * empty. Returns 0, or -1 to stop reading. */
typedef int (*ingest_form_data_fn)(void *cls, const char *data, size_t size);

/* Reads the boundary (1 to 70 characters) from the Content-Type header
 * `content_type`, which must be multipart/form-data. Returns the reader,
 * which the caller frees with ingest_form_free, or NULL when there is no
 * valid boundary or no memory. */
ingest_form *ingest_form_new(const char *content_type, ingest_form_part_fn on_part,
                             ingest_form_data_fn on_data, void *cls);
void ingest_form_free(ingest_form *form);

/* Reads the next piece of the body, calling back as parts and values come.
 * Returns 0, or -1 once the form is malformed or a callback stopped it;
 * every later call returns -1 too. */
int ingest_form_feed(ingest_form *form, const char *data, size_t size);

/* 1 when the closing boundary has been read, else 0. */
int ingest_form_complete(const ingest_form *form);

/* Why the form was refused, or that it is incomplete. */
const char *ingest_form_error(const ingest_form *form);

/* upload.c: the multipart form of POST /v1/posts */

typedef struct ingest_upload {
    ingest_request *req;
    ingest_form *form;
    char *image; /* the bytes of the file field "image" */
    size_t image_len;
    size_t image_cap;
    int image_parts;
    int caption_parts;
    int current_field;                          /* what the part being read is for */
    char caption[INGEST_CAPTION_MAX_BYTES + 1]; /* NUL-terminated */
    size_t caption_len;
    int receiving;         /* counted in app->uploads_receiving */
    ingest_image_job *job; /* once the whole body is in */
} ingest_upload;

/* Refuses with 503 when cfg.max_concurrent_uploads bodies are being read
 * already, before this one is. */
int ingest_upload_begin(ingest_request *req);
void ingest_upload_take(ingest_request *req, const char *data, size_t size);

/* Ends the parsing of the form. Returns its fields, or NULL after having
 * answered 400. */
ingest_upload *ingest_upload_finish_or_reply(ingest_request *req);

/* db.c */

/* Runs one statement with text parameters on the connection of `pg`. When
 * `retry` is set and the connection turns out to be broken (PostgreSQL
 * restarted since the last statement), reconnects and runs it once more:
 * only for statements that are safe to repeat. Returns the result, which
 * the caller releases with PQclear(), or NULL with the reason in `err`. */
PGresult *ingest_db_run(lk_pg *pg, const char *sql, int nparams, const char *const *params,
                        int retry, char *err, size_t errlen);

/* Writes `ids` as a PostgreSQL array literal, "{1,2,3}", for a
 * `= ANY ($1::bigint[])` parameter. `out` takes 21 bytes per id and 3. */
void ingest_db_id_array(const int64_t *ids, size_t count, char *out, size_t outlen);

/* posts.c */

enum MHD_Result ingest_posts_create(ingest_request *req);
enum MHD_Result ingest_posts_get(ingest_request *req);

/* Reads up to `limit` posts, newest (highest id) first, whose ids are below
 * `before_id`, or from the newest when `before_id` is 0. Returns the rows,
 * which the caller releases with PQclear(), or NULL with the reason in
 * `err`. */
PGresult *ingest_posts_select_page(ingest_app *app, int64_t before_id, int limit, char *err,
                                   size_t errlen);

/* The id of the post in row `row` of a result of ingest_posts_select_page. */
int64_t ingest_post_id(const PGresult *result, int row);

/* The post in row `row` as the API shows it, with `like_count`, and
 * liked_by_me when `liked` is 0 or 1 (left out when -1). The caller owns
 * the object; NULL when out of memory. */
json_object *ingest_post_json(const PGresult *result, int row, int64_t like_count, int liked);

/* feed.c */

enum MHD_Result ingest_feed_get(ingest_request *req);

/* post_likes.c */

/* Fills counts[i] with the like count of post_ids[i] and, when `user_id` is
 * positive, liked[i] with 1 or 0 as that user likes it or not: the state
 * the aggregator has applied, from Redis; from PostgreSQL, which lags it by
 * a persister batch, while Redis is unreachable. Posts missing from
 * PostgreSQL count 0. At most INGEST_FEED_MAX_LIMIT posts. Returns 0, or -1
 * with the reason in `err` when neither could answer. */
int ingest_post_likes_read(ingest_app *app, const int64_t *post_ids, size_t count, int64_t user_id,
                           int64_t *counts, int *liked, char *err, size_t errlen);

#define INGEST_FEED_DEFAULT_LIMIT 20
#define INGEST_FEED_MAX_LIMIT     100

/* Returns 1 when post `post_id` exists, 0 when it does not, -1 with the
 * reason in `err` when PostgreSQL could not tell. */
int ingest_posts_exists(ingest_app *app, int64_t post_id, char *err, size_t errlen);

/* post_set.c: ids of posts known to exist; posts are never deleted. */

ingest_post_set *ingest_post_set_new(void);
void ingest_post_set_free(ingest_post_set *set);
int ingest_post_set_contains(const ingest_post_set *set, int64_t post_id);

/* Returns 0, or -1 when out of memory (the set is then unchanged). */
int ingest_post_set_add(ingest_post_set *set, int64_t post_id);

/* media.c */

typedef enum ingest_media_status {
    INGEST_MEDIA_OK = 0,
    INGEST_MEDIA_FAILED = -1,   /* our side: memory, disk */
    INGEST_MEDIA_NOT_IMAGE = 1, /* unreadable, truncated, or a refused format */
    INGEST_MEDIA_TOO_LARGE = 2, /* more pixels, pages or scans than accepted */
    INGEST_MEDIA_CANCELLED = 3, /* not decoded: the service is stopping */
} ingest_media_status;

/* 64 hex digits, a dot, an extension of up to 4 letters, NUL. */
#define INGEST_MEDIA_NAME_LEN 72

typedef struct ingest_media {
    char image_name[INGEST_MEDIA_NAME_LEN];
    char thumb_name[INGEST_MEDIA_NAME_LEN];
    int width; /* of the display image */
    int height;
} ingest_media;

/* Starts libvips for untrusted input and creates the media directory.
 * Call once from main() before the daemon starts. */
int ingest_media_init(const lk_config *cfg, char *err, size_t errlen);
void ingest_media_shutdown(void);

/* Decodes the uploaded bytes, writes the display image and the thumbnail
 * into cfg.media_dir, and fills `out`. The reason for anything but
 * INGEST_MEDIA_OK is in `err`. Any thread may call it; it takes seconds on
 * some valid images, so the HTTP thread never does. */
ingest_media_status ingest_media_store(const lk_config *cfg, const char *data, size_t len,
                                       ingest_media *out, char *err, size_t errlen);

enum MHD_Result ingest_media_get(ingest_request *req);

/* image_cost.c */

/* Refuses, before any loader runs, an image whose structure would cost
 * libvips far more than its pixel count says: a JPEG of more than 100
 * scans, a TIFF of more than 1000 pages. Returns INGEST_MEDIA_OK or
 * INGEST_MEDIA_TOO_LARGE with the reason in `err`. Any thread. */
ingest_media_status ingest_image_check_cost(const char *data, size_t len, char *err, size_t errlen);

/* image_pool.c: uploads decoded by worker threads */

/* Starts the workers, which call ingest_media_store with `cfg`; `cfg` must
 * outlive the pool. Returns NULL with the reason in `err`. */
ingest_image_pool *ingest_image_pool_new(const lk_config *cfg, char *err, size_t errlen);

/* Queues `image` for decoding on behalf of the request on `conn`. On
 * success the job owns `image`, `*job` is the request's reference, and the
 * caller suspends `conn` and calls ingest_image_job_wait. Returns 0, or -1
 * with the reason in `err` when the pool is full or closing (a 503);
 * `image` then stays the caller's. */
int ingest_image_pool_submit(ingest_image_pool *pool, struct MHD_Connection *conn,
                             uint64_t request_id, char *image, size_t image_len,
                             ingest_image_job **job, char *err, size_t errlen);

/* Call right after MHD_suspend_connection: the connection is resumed when
 * the job ends, or at once if it has ended already. */
void ingest_image_job_wait(ingest_image_job *job);

/* The outcome, once the connection has been resumed: the status of
 * ingest_media_store, or INGEST_MEDIA_CANCELLED, with the reason in
 * `reason` and the files in `media` for INGEST_MEDIA_OK. */
ingest_media_status ingest_image_job_outcome(ingest_image_job *job, ingest_media *media,
                                             char *reason, size_t reasonlen);

/* Lets go of the request's reference; NULL is ignored. */
void ingest_image_job_release(ingest_image_job *job);

/* Takes no more jobs, cancels those waiting, gives those running up to
 * `grace_ms`, then cancels them too: every suspended upload is resumed.
 * Call from main() after MHD_quiesce_daemon, before MHD_stop_daemon. */
void ingest_image_pool_close(ingest_image_pool *pool, int grace_ms);

/* Stops the workers and frees the pool. Returns 0, or -1 when a worker
 * was still decoding after `wait_ms`: the pool is then left to it, and
 * libvips must not be shut down. Call after MHD_stop_daemon. */
int ingest_image_pool_free(ingest_image_pool *pool, int wait_ms);

/* app_files.c: the built web app in cfg.app_dir, at / */

enum MHD_Result ingest_app_files_get(ingest_request *req);

/* likes.c */

/* Creates the Kafka producer and starts the thread that serves its
 * delivery reports. Returns NULL with the reason in `err`. */
ingest_producer *ingest_producer_new(const lk_config *cfg, char *err, size_t errlen);

/* Stops taking likes, waits up to `flush_ms` for those in flight, fails
 * the rest, and waits until every suspended request has been resumed.
 * Call from main() after MHD_quiesce_daemon, before MHD_stop_daemon.
 * Returns how many events failed to be delivered meanwhile. */
int ingest_producer_drain(ingest_producer *producer, int flush_ms);

/* Returns 1 when the producer hit a fatal error and the process must end. */
int ingest_producer_failed(const ingest_producer *producer);

void ingest_producer_free(ingest_producer *producer);

enum MHD_Result ingest_likes_put(ingest_request *req);
enum MHD_Result ingest_likes_delete(ingest_request *req);

/* stream.c: GET /v1/stream, live counts as server-sent events */

/* Creates the registry of streams and starts its threads: a ticker for
 * heartbeats and the Redis feed of stream_feed.c. Returns NULL with the
 * reason in `err`. */
ingest_streams *ingest_streams_new(const lk_config *cfg, char *err, size_t errlen);

/* Refuses new streams, ends every open one cleanly, and waits up to
 * `grace_ms` for their connections to let go of them. Call from main()
 * after MHD_quiesce_daemon, before MHD_stop_daemon: no stream may stay
 * suspended when the daemon stops. */
void ingest_streams_close_all(ingest_streams *streams, int grace_ms);

/* Stops the threads and frees the registry. Call after MHD_stop_daemon. */
void ingest_streams_free(ingest_streams *streams);

/* How many streams are open. Any thread may call it. */
size_t ingest_streams_open(ingest_streams *streams);

enum MHD_Result ingest_stream_get(ingest_request *req);

/* For the feed thread. Offers new counts to the streams of those posts;
 * each stream keeps only the newest count per post. */
void ingest_streams_offer(ingest_streams *streams, const int64_t *post_ids, const int64_t *counts,
                          size_t count);

/* Sets `*post_ids` to a new array of the posts that have streams, which the
 * caller frees, and returns its length (0, with NULL, when out of memory). */
size_t ingest_streams_posts(ingest_streams *streams, int64_t **post_ids);

/* Waits up to `ms` (0: only looks) for ingest_streams_free to begin;
 * returns 1 once it has, so that a thread of the streams ends. */
int ingest_streams_wait_stop(ingest_streams *streams, int ms);

/* stream_feed.c */

/* Starts the thread that subscribes to the counts Redis publishes and
 * hands them to ingest_streams_offer. Returns NULL with the reason in
 * `err`. */
ingest_stream_feed *ingest_stream_feed_start(const lk_config *cfg, ingest_streams *streams,
                                             char *err, size_t errlen);

/* Joins the thread, which ends once ingest_streams_wait_stop says so, and
 * frees the feed. */
void ingest_stream_feed_stop(ingest_stream_feed *feed);

#endif
