/*
 * The HTTP side of ingest: the daemon, the routing table, the life of a
 * request, body limits and the JSON answers. Runs on the libmicrohttpd
 * thread.
 */
#include "ingest.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "token.h"

#define CONNECTION_TIMEOUT_S 60

#define BEARER_CHALLENGE       "Bearer realm=\"likes\""
#define BEARER_INVALID_TOKEN   "Bearer realm=\"likes\", error=\"invalid_token\""
#define RETRY_AFTER_SECONDS    "1"
#define JSON_SERIALIZE_OPTIONS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static enum MHD_Result health_get(ingest_request *req);

static const ingest_route routes[] = {
    {"GET", "/healthz", 0, NULL, NULL, NULL, health_get},
    {"POST", "/v1/users", INGEST_ROUTE_JSON_BODY, "application/json", NULL, NULL,
     ingest_users_create},
    {"GET", "/v1/posts", INGEST_ROUTE_OPTIONAL_AUTH, NULL, NULL, NULL, ingest_feed_get},
    {"POST", "/v1/posts", INGEST_ROUTE_AUTH | INGEST_ROUTE_UPLOAD, "multipart/form-data",
     ingest_upload_begin, ingest_upload_take, ingest_posts_create},
    {"GET", "/v1/posts/{id}", INGEST_ROUTE_OPTIONAL_AUTH, NULL, NULL, NULL, ingest_posts_get},
    {"PUT", "/v1/posts/{id}/like", INGEST_ROUTE_AUTH, NULL, NULL, NULL, ingest_likes_put},
    {"DELETE", "/v1/posts/{id}/like", INGEST_ROUTE_AUTH, NULL, NULL, NULL, ingest_likes_delete},
    {"GET", "/media/{name}", 0, NULL, NULL, NULL, ingest_media_get},
    {"GET", "/v1/stream", 0, NULL, NULL, NULL, ingest_stream_get},
    /* The app last: "/{name}" would take any other one-segment path. */
    {"GET", "/", 0, NULL, NULL, NULL, ingest_app_files_get},
    {"GET", "/assets/{name}", 0, NULL, NULL, NULL, ingest_app_files_get},
    {"GET", "/{name}", 0, NULL, NULL, NULL, ingest_app_files_get},
};

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

/* JSON building */

int ingest_json_add_string(json_object *obj, const char *key, const char *value)
{
    json_object *member = json_object_new_string(value);
    if (member == NULL)
        return -1;
    if (json_object_object_add(obj, key, member) != 0) {
        json_object_put(member);
        return -1;
    }
    return 0;
}

int ingest_json_add_int(json_object *obj, const char *key, int64_t value)
{
    json_object *member = json_object_new_int64(value);
    if (member == NULL)
        return -1;
    if (json_object_object_add(obj, key, member) != 0) {
        json_object_put(member);
        return -1;
    }
    return 0;
}

/* Replies */

enum MHD_Result ingest_reply_response(ingest_request *req, unsigned status,
                                      struct MHD_Response *response)
{
    if (response == NULL) {
        lk_log_error("request %" PRIu64 ": building the %u answer failed (out of memory), "
                     "closing the connection",
                     req->id, status);
        return MHD_NO;
    }
    if (ingest_cors_add_headers(req, response) != 0 ||
        (req->close_connection &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
        MHD_destroy_response(response);
        lk_log_error("request %" PRIu64 ": no memory for the headers of the %u answer, "
                     "closing the connection",
                     req->id, status);
        return MHD_NO;
    }

    enum MHD_Result queued = MHD_queue_response(req->conn, status, response);
    MHD_destroy_response(response);

    if (queued != MHD_YES) {
        lk_log_error("request %" PRIu64 ": queueing the %u answer failed, closing the connection",
                     req->id, status);
        return MHD_NO;
    }
    req->status = status;
    return MHD_YES;
}

static struct MHD_Response *json_response(json_object *doc)
{
    size_t len;
    const char *text = json_object_to_json_string_length(doc, JSON_SERIALIZE_OPTIONS, &len);
    if (text == NULL)
        return NULL;

    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (response == NULL)
        return NULL;

    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
        MHD_YES) {
        MHD_destroy_response(response);
        return NULL;
    }
    return response;
}

enum MHD_Result ingest_reply_json(ingest_request *req, unsigned status, json_object *doc)
{
    if (doc == NULL)
        return ingest_reply_internal(req, "building the JSON answer failed (out of memory)");

    struct MHD_Response *response = json_response(doc);
    json_object_put(doc);
    return ingest_reply_response(req, status, response);
}

static json_object *error_doc(const char *code, const char *message)
{
    json_object *doc = json_object_new_object();
    if (doc == NULL)
        return NULL;

    if (ingest_json_add_string(doc, "error", code) != 0 ||
        ingest_json_add_string(doc, "message", message) != 0) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

/* Answers an error with one extra header (`header` may be NULL). */
static enum MHD_Result reply_error_with(ingest_request *req, unsigned status, const char *code,
                                        const char *message, const char *header, const char *value)
{
    json_object *doc = error_doc(code, message);
    struct MHD_Response *response = doc != NULL ? json_response(doc) : NULL;
    json_object_put(doc);

    if (response != NULL && header != NULL &&
        MHD_add_response_header(response, header, value) != MHD_YES) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return ingest_reply_response(req, status, response);
}

enum MHD_Result ingest_reply_error(ingest_request *req, unsigned status, const char *code,
                                   const char *message)
{
    if (status == MHD_HTTP_UNAUTHORIZED)
        return reply_error_with(req, status, code, message, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                BEARER_CHALLENGE);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        return reply_error_with(req, status, code, message, MHD_HTTP_HEADER_RETRY_AFTER,
                                RETRY_AFTER_SECONDS);
    return reply_error_with(req, status, code, message, NULL, NULL);
}

/* Logs `fmt` with the request's id, method and path at `level`, then
 * answers with the generic error of `status`: the detail goes to the log,
 * never to the client. */
static enum MHD_Result reply_logged(ingest_request *req, lk_log_level level, unsigned status,
                                    const char *code, const char *message, const char *fmt,
                                    va_list args) __attribute__((format(printf, 6, 0)));

static enum MHD_Result reply_logged(ingest_request *req, lk_log_level level, unsigned status,
                                    const char *code, const char *message, const char *fmt,
                                    va_list args)
{
    char what[512];
    vsnprintf(what, sizeof(what), fmt, args);
    lk_log(level, "request %" PRIu64 ": %s %s: %s, answering %u", req->id, req->method, req->path,
           what, status);
    return ingest_reply_error(req, status, code, message);
}

enum MHD_Result ingest_reply_unavailable(ingest_request *req, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    enum MHD_Result rc =
        reply_logged(req, LK_LOG_WARN, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                     "a service this request needs is unavailable, retry shortly", fmt, args);
    va_end(args);
    return rc;
}

enum MHD_Result ingest_reply_internal(ingest_request *req, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    enum MHD_Result rc =
        reply_logged(req, LK_LOG_ERROR, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                     "the server failed to handle the request", fmt, args);
    va_end(args);
    return rc;
}

void ingest_request_fail(ingest_request *req, unsigned status, const char *code,
                         const char *message)
{
    if (req->fail_status != 0)
        return;

    if (status >= 500)
        lk_log_error("request %" PRIu64 ": %s %s: %s, answering %u once the body is read", req->id,
                     req->method, req->path, message, status);
    req->fail_status = status;
    req->fail_code = code;
    snprintf(req->fail_message, sizeof(req->fail_message), "%s", message);
}

static enum MHD_Result health_get(ingest_request *req)
{
    size_t streams = ingest_streams_open(req->app->streams);
    json_object *doc = json_object_new_object();
    if (doc != NULL && (ingest_json_add_string(doc, "status", "ok") != 0 ||
                        ingest_json_add_int(doc, "streams", (int64_t)streams) != 0)) {
        json_object_put(doc);
        doc = NULL;
    }
    return ingest_reply_json(req, MHD_HTTP_OK, doc);
}

/* Routing */

/* Matches `path` against `pattern` one character at a time; a "{...}"
 * segment of the pattern takes one non-empty segment of the path, copied
 * into `capture` (left empty when it does not fit, which no valid id or
 * media name does). */
static int path_matches(const char *pattern, const char *path, char *capture, size_t capture_len)
{
    while (*pattern != '\0' && *path != '\0') {
        if (*pattern == '{') {
            size_t len = strcspn(path, "/");
            if (len == 0)
                return 0;
            if (len < capture_len) {
                memcpy(capture, path, len);
                capture[len] = '\0';
            } else {
                capture[0] = '\0';
            }
            pattern += strcspn(pattern, "/");
            path += len;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

/* HEAD is answered as GET: libmicrohttpd leaves the body out. */
static int method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return 1;
    return strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* A path that two routes take (/healthz and the app's /{name}) lists its
 * method once. No method name is part of another. */
static void allow_append(char *allow, size_t allow_len, const char *method)
{
    if (strstr(allow, method) != NULL)
        return;

    size_t used = strlen(allow);
    snprintf(allow + used, allow_len - used, "%s%s%s", used > 0 ? ", " : "", method,
             strcmp(method, "GET") == 0 ? ", HEAD" : "");
}

static int route_or_reply(ingest_request *req, const char *url, const char *method)
{
    char allow[64] = "";
    int path_found = 0;

    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (!path_matches(routes[i].pattern, url, req->path_name, sizeof(req->path_name)))
            continue;
        path_found = 1;
        if (method_matches(routes[i].method, method)) {
            req->route = &routes[i];
            return 0;
        }
        allow_append(allow, sizeof(allow), routes[i].method);
    }

    if (!path_found)
        ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
    else if (ingest_cors_is_preflight(req, allow))
        return 0;
    else
        reply_error_with(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                         "this endpoint does not take that method", MHD_HTTP_HEADER_ALLOW, allow);
    return -1;
}

/* Checks */

static const char *header_value(ingest_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* The methods of RFC 9110, PATCH, and QUERY (the safe method with a body
 * the IETF is standardising, which clients and fuzzers already send): on a
 * known path, one that no route takes is a 405. Any other (FOO, or "get":
 * methods are case-sensitive) is implemented nowhere. */
static const char *const known_methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
};

static int check_method_or_reply(ingest_request *req, const char *method)
{
    for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++) {
        if (strcmp(method, known_methods[i]) == 0)
            return 0;
    }
    ingest_reply_error(req, MHD_HTTP_NOT_IMPLEMENTED, "not_implemented",
                       "this server does not implement that method");
    return -1;
}

/* What the headers say about the request's framing and its host.
 * libmicrohttpd looks at the first Content-Length only, and at
 * Transfer-Encoding before it. */
typedef struct header_census {
    int hosts;
    int lengths;
    int lengths_differ;
    const char *first_length;
    int encodings;
    const char *encoding;
} header_census;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    header_census *census = cls;
    value = value != NULL ? value : "";

    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        census->hosts++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (census->lengths++ == 0)
            census->first_length = value;
        else if (strcmp(value, census->first_length) != 0)
            census->lengths_differ = 1;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        census->encodings++;
        census->encoding = value;
    }
    return MHD_YES;
}

/* Refuses a request whose body could end in two places, where a proxy in
 * front may see a different request than this server does. Nothing after
 * such a body can be trusted to start a request, so the connection closes. */
static int check_framing_or_reply(ingest_request *req, const header_census *census)
{
    unsigned status = MHD_HTTP_BAD_REQUEST;
    const char *code = "invalid_field";
    const char *problem = NULL;

    if (census->lengths_differ)
        problem = "the Content-Length headers disagree";
    else if (census->lengths > 0 && census->encodings > 0)
        problem = "a request takes Content-Length or Transfer-Encoding, not both";
    else if (census->encodings > 1)
        problem = "more than one Transfer-Encoding header";
    else if (census->encodings == 1 && strcasecmp(census->encoding, "chunked") != 0) {
        status = MHD_HTTP_NOT_IMPLEMENTED;
        code = "not_implemented";
        problem = "chunked is the only transfer coding implemented";
    }
    if (problem == NULL)
        return 0;

    req->close_connection = 1;
    ingest_reply_error(req, status, code, problem);
    return -1;
}

static int check_headers_or_reply(ingest_request *req, const char *version)
{
    header_census census = {0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_header, &census);
    if (check_framing_or_reply(req, &census) != 0)
        return -1;

    if (census.hosts > 1) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field", "more than one Host header");
        return -1;
    }
    if (census.hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "an HTTP/1.1 request needs a Host header");
        return -1;
    }
    return 0;
}

/* What %-decoding would hide: libmicrohttpd decodes the target in place
 * before any handler sees it, so that a %00 cuts it short ("/healthz%00x"
 * would be /healthz) and a %2F turns into a separator of segments.
 *
 * TODO: a raw NUL byte in the request line still cuts the target short:
 * libmicrohttpd 0.9.75 hands it on as a C string, without its length,
 * even to the URI callback, so it cannot be seen from here. */
enum {
    TARGET_PATH_NUL = 1 << 0,
    TARGET_PATH_SLASH = 1 << 1,
    TARGET_QUERY_NUL = 1 << 2,
};

static unsigned inspect_target(const char *target)
{
    if (target == NULL)
        return 0;

    unsigned flags = 0;
    size_t path_len = strcspn(target, "?");
    for (const char *p = strchr(target, '%'); p != NULL; p = strchr(p + 1, '%')) {
        int in_path = (size_t)(p - target) < path_len;
        if (p[1] == '0' && p[2] == '0')
            flags |= in_path ? TARGET_PATH_NUL : TARGET_QUERY_NUL;
        else if (in_path && p[1] == '2' && (p[2] == 'f' || p[2] == 'F'))
            flags |= TARGET_PATH_SLASH;
    }
    return flags;
}

static int check_target_or_reply(ingest_request *req)
{
    if (req->target_flags & (TARGET_PATH_NUL | TARGET_PATH_SLASH)) {
        ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
        return -1;
    }
    if (req->target_flags & TARGET_QUERY_NUL) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the query holds an encoded NUL (%00)");
        return -1;
    }
    return 0;
}

static int authenticate_or_reply(ingest_request *req)
{
    unsigned flags = req->route->flags;
    if (!(flags & (INGEST_ROUTE_AUTH | INGEST_ROUTE_OPTIONAL_AUTH)))
        return 0;

    const char *header = header_value(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (header == NULL && (flags & INGEST_ROUTE_OPTIONAL_AUTH))
        return 0;
    if (header == NULL) {
        ingest_reply_error(req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                           "this endpoint needs an Authorization: Bearer <token> header");
        return -1;
    }

    size_t prefix = strlen("Bearer ");
    const char *token = header;
    size_t len = 0;
    if (strncasecmp(header, "Bearer ", prefix) == 0) {
        token = header + prefix;
        len = strlen(token);
        while (len > 0 && (token[len - 1] == ' ' || token[len - 1] == '\t'))
            len--;
    }

    if (len == 0 || lk_token_verify(req->app->cfg.token_secret, token, len, &req->user_id) != 0) {
        reply_error_with(req, MHD_HTTP_UNAUTHORIZED, "unauthorized", "the bearer token is invalid",
                         MHD_HTTP_HEADER_WWW_AUTHENTICATE, BEARER_INVALID_TOKEN);
        return -1;
    }
    return 0;
}

int ingest_parse_positive_id(const char *text, int64_t *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > 19 || text[0] == '0' || strspn(text, "0123456789") != len)
        return -1;

    uint64_t value = strtoull(text, NULL, 10);
    if (value == 0 || value > INT64_MAX)
        return -1;
    *out = (int64_t)value;
    return 0;
}

static int parse_path_id_or_reply(ingest_request *req)
{
    if (strstr(req->route->pattern, "{id}") == NULL)
        return 0;

    if (ingest_parse_positive_id(req->path_name, &req->path_id) != 0) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the post id must be a positive 64-bit integer");
        return -1;
    }
    return 0;
}

/* True when the Content-Type `header` names `expected`, parameters aside. */
static int media_type_is(const char *header, const char *expected)
{
    size_t len = strlen(expected);
    if (strncasecmp(header, expected, len) != 0)
        return 0;
    return header[len] == '\0' || header[len] == ';' || header[len] == ' ' || header[len] == '\t';
}

static int check_media_type_or_reply(ingest_request *req, int has_body)
{
    const ingest_route *route = req->route;
    if (route->media_type == NULL || (!has_body && !(route->flags & INGEST_ROUTE_UPLOAD)))
        return 0;

    const char *type = header_value(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type != NULL && media_type_is(type, route->media_type))
        return 0;

    char message[128];
    snprintf(message, sizeof(message), "the body must be %s", route->media_type);
    ingest_reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message);
    return -1;
}

/* Refuses a declared length over the limit before a byte of the body is
 * read; a chunked body is counted as it arrives instead (take_body). */
static int check_length_or_reply(ingest_request *req, const char *length_header)
{
    if (length_header == NULL)
        return 0;

    uint64_t length = strtoull(length_header, NULL, 10);
    if (length <= req->body_limit)
        return 0;

    char message[128];
    snprintf(message, sizeof(message), "the body is larger than the %" PRIu64 " bytes accepted",
             req->body_limit);
    ingest_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", message);
    return -1;
}

static int check_body_or_reply(ingest_request *req)
{
    const char *length_header = header_value(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *encoding = header_value(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    int has_body = encoding != NULL || (length_header != NULL && strtoull(length_header, NULL, 10));

    req->body_limit = INGEST_JSON_BODY_LIMIT;
    if (req->route->flags & INGEST_ROUTE_UPLOAD)
        req->body_limit = (uint64_t)req->app->cfg.max_upload_bytes + INGEST_UPLOAD_OVERHEAD;

    if (check_media_type_or_reply(req, has_body) != 0 ||
        check_length_or_reply(req, length_header) != 0)
        return -1;
    return 0;
}

/* The request's life */

/* libmicrohttpd's first sight of a request, with its target as the client
 * sent it, before decoding: the request starts here, and what this returns
 * is where *con_cls starts. */
static void *on_target(void *cls, const char *target, struct MHD_Connection *conn)
{
    ingest_app *app = cls;
    ingest_request *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        lk_log_error("no memory for a new request, closing its connection");
        return NULL;
    }

    req->id = ++app->next_request_id;
    req->app = app;
    req->conn = conn;
    req->target_flags = inspect_target(target);
    clock_gettime(CLOCK_MONOTONIC, &req->started);
    return req;
}

/* The first call, once the headers are in: every check that needs no body,
 * so that a refused request never has its body read. */
static enum MHD_Result start_request(ingest_request *req, const char *url, const char *method,
                                     const char *version)
{
    req->headers_checked = 1;
    snprintf(req->method, sizeof(req->method), "%s", method);
    snprintf(req->path, sizeof(req->path), "%s", url);

    if (check_method_or_reply(req, method) != 0 || check_headers_or_reply(req, version) != 0 ||
        check_target_or_reply(req) != 0 || route_or_reply(req, url, method) != 0 ||
        authenticate_or_reply(req) != 0 || parse_path_id_or_reply(req) != 0 ||
        check_body_or_reply(req) != 0)
        return req->status != 0 ? MHD_YES : MHD_NO;

    if (req->route->begin != NULL && req->route->begin(req) != 0)
        return req->status != 0 ? MHD_YES : MHD_NO;
    return MHD_YES;
}

static void append_body(ingest_request *req, const char *data, size_t size)
{
    if (req->body_len + size > req->body_cap) {
        size_t cap = req->body_cap > 0 ? req->body_cap : 4096;
        while (cap < req->body_len + size)
            cap *= 2;
        char *grown = realloc(req->body, cap);
        if (grown == NULL) {
            ingest_request_fail(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                                "no memory for the request body");
            return;
        }
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
}

static enum MHD_Result take_body(ingest_request *req, const char *data, size_t *size)
{
    size_t len = *size;
    *size = 0;

    /* Only a chunked body can get here past its limit. Nothing can be
     * answered in the middle of a body, and reading on without bound is
     * what the limit is there to prevent: drop the connection. */
    req->body_seen += len;
    if (req->body_seen > req->body_limit) {
        lk_log_warn("request %" PRIu64 ": %s %s: chunked body passed %" PRIu64
                    " bytes, closing the connection",
                    req->id, req->method, req->path, req->body_limit);
        return MHD_NO;
    }

    if (req->fail_status != 0)
        return MHD_YES;
    if (req->route->take_body != NULL)
        req->route->take_body(req, data, len);
    else if (req->route->flags & INGEST_ROUTE_JSON_BODY)
        append_body(req, data, len);
    return MHD_YES;
}

static enum MHD_Result finish_request(ingest_request *req)
{
    if (req->fail_status != 0)
        return ingest_reply_error(req, req->fail_status, req->fail_code, req->fail_message);
    return req->route->handle(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)conn;
    ingest_request *req = *con_cls;

    if (req == NULL)
        return MHD_NO; /* on_target ran out of memory */
    if (!req->headers_checked)
        return start_request(req, url, method, version);
    if (*upload_data_size > 0)
        return take_body(req, upload_data, upload_data_size);
    return finish_request(req);
}

static double elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 +
           (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static void log_access(const ingest_request *req, enum MHD_RequestTerminationCode why)
{
    if (!lk_log_enabled(LK_LOG_DEBUG))
        return;

    if (why == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        lk_log_debug("request %" PRIu64 ": %s %s -> %u in %.1f ms", req->id, req->method, req->path,
                     req->status, elapsed_ms(&req->started));
    else
        lk_log_debug("request %" PRIu64 ": %s %s ended without a complete answer (code %d)",
                     req->id, req->method, req->path, (int)why);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    ingest_request *req = *con_cls;
    if (req == NULL)
        return;

    log_access(req, why);
    if (req->free_state != NULL)
        req->free_state(req->state);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

/* libmicrohttpd's own messages, one line each. */
static void log_from_mhd(void *cls, const char *fmt, va_list args)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, args);
    line[strcspn(line, "\n")] = '\0';
    lk_log_warn("http: %s", line);
}

static int listen_address(const lk_config *cfg, struct sockaddr_storage *addr, unsigned int *flags,
                          char *err, size_t errlen)
{
    memset(addr, 0, sizeof(*addr));

    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    if (inet_pton(AF_INET, cfg->http_addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->http_port);
        return 0;
    }

    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET6, cfg->http_addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->http_port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }

    snprintf(err, errlen, "LIKES_HTTP_ADDR \"%s\" is not a numeric IP address", cfg->http_addr);
    return -1;
}

struct MHD_Daemon *ingest_http_start(ingest_app *app, char *err, size_t errlen)
{
    /* One epoll thread and no pool: measured faster on two cores, where
     * extra threads compete with the broker and the databases. */
    unsigned int flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_storage addr;
    if (listen_address(&app->cfg, &addr, &flags, err, errlen) != 0)
        return NULL;

    /* The logger goes first, or earlier options log to stderr directly. */
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, (uint16_t)app->cfg.http_port, NULL, NULL, on_request, app,
        MHD_OPTION_EXTERNAL_LOGGER, log_from_mhd, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)app->cfg.http_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
        MHD_OPTION_URI_LOG_CALLBACK, on_target, app, MHD_OPTION_END);
    if (daemon == NULL)
        snprintf(err, errlen, "libmicrohttpd could not start on %s:%d", app->cfg.http_addr,
                 app->cfg.http_port);
    return daemon;
}
