/*
 * Cross-origin requests from the browser pages of the origins in
 * LIKES_CORS_ORIGINS. Without any, no CORS header is ever sent and browsers
 * keep other origins' pages from reading the answers.
 *
 * Tokens travel in the Authorization header, not in cookies, so
 * credentials are never allowed: a page reads what its own token shows.
 */
#include "ingest.h"

#include <stdio.h>
#include <string.h>

#define EXPOSED_HEADERS "ETag, Retry-After"
#define ALLOWED_HEADERS "Authorization, Content-Type, If-None-Match"

/* How long a browser may keep a preflight's answer. */
#define PREFLIGHT_MAX_AGE_S "600"

/* True when `origin` equals an entry of the comma-separated `origins`, or
 * an entry is "*". */
static int origin_listed(const char *origins, const char *origin)
{
    size_t len = strlen(origin);
    for (const char *entry = origins; *entry != '\0';) {
        size_t entry_len = strcspn(entry, ",");
        if ((entry_len == 1 && entry[0] == '*') ||
            (entry_len == len && memcmp(entry, origin, len) == 0))
            return 1;
        entry += entry_len;
        if (*entry == ',')
            entry++;
    }
    return 0;
}

/* The request's Origin when it may read the answer, else NULL. */
static const char *allowed_origin(ingest_request *req)
{
    const char *origins = req->app->cfg.cors_origins;
    if (origins[0] == '\0')
        return NULL;

    const char *origin =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
    if (origin == NULL || origin[0] == '\0' || !origin_listed(origins, origin))
        return NULL;
    return origin;
}

int ingest_cors_add_headers(ingest_request *req, struct MHD_Response *response)
{
    if (req->app->cfg.cors_origins[0] == '\0')
        return 0;

    /* Every answer depends on the Origin once CORS is on, those without
     * CORS headers included: a shared cache must not hand one origin's
     * answer to another. */
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ORIGIN) != MHD_YES)
        return -1;

    const char *origin = allowed_origin(req);
    if (origin == NULL)
        return 0;
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, origin) !=
            MHD_YES ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_ACCESS_CONTROL_EXPOSE_HEADERS,
                                EXPOSED_HEADERS) != MHD_YES)
        return -1;
    return 0;
}

/* Answers 204 with what the preflight asked for. */
static enum MHD_Result preflight_reply(ingest_request *req)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (response != NULL &&
        (MHD_add_response_header(response, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS,
                                 req->preflight_methods) != MHD_YES ||
         MHD_add_response_header(response, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_HEADERS,
                                 ALLOWED_HEADERS) != MHD_YES ||
         MHD_add_response_header(response, MHD_HTTP_HEADER_ACCESS_CONTROL_MAX_AGE,
                                 PREFLIGHT_MAX_AGE_S) != MHD_YES)) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return ingest_reply_response(req, MHD_HTTP_NO_CONTENT, response);
}

/* Needs no token: browsers send none with a preflight. */
static const ingest_route preflight_route = {
    MHD_HTTP_METHOD_OPTIONS, "", 0, NULL, NULL, NULL, preflight_reply,
};

int ingest_cors_is_preflight(ingest_request *req, const char *methods)
{
    if (strcmp(req->method, MHD_HTTP_METHOD_OPTIONS) != 0 || allowed_origin(req) == NULL ||
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_ACCESS_CONTROL_REQUEST_METHOD) == NULL)
        return 0;

    snprintf(req->preflight_methods, sizeof(req->preflight_methods), "%s", methods);
    req->route = &preflight_route;
    return 1;
}
