/*
 * POST /v1/users: signs a user up and hands back the bearer token that
 * identifies them from then on.
 */
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "token.h"

#define DISPLAY_NAME_MAX_BYTES 100

static const char insert_sql[] = "INSERT INTO users (display_name) VALUES ($1) RETURNING id";

/* Copies member "display_name" of `doc` into `name`; absent or null leaves
 * it empty. Returns 0, or -1 after answering 400. */
static int copy_display_name_or_reply(ingest_request *req, json_object *doc, char *name,
                                      size_t name_len)
{
    json_object *member;
    if (!json_object_object_get_ex(doc, "display_name", &member) || member == NULL)
        return 0;

    if (!json_object_is_type(member, json_type_string)) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "display_name must be a string");
        return -1;
    }

    size_t len = (size_t)json_object_get_string_len(member);
    const char *text = json_object_get_string(member);
    if (len > DISPLAY_NAME_MAX_BYTES || len >= name_len || memchr(text, '\0', len) != NULL) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "display_name must be at most 100 bytes, without NUL characters");
        return -1;
    }
    memcpy(name, text, len + 1);
    return 0;
}

/* Reads the optional body {"display_name": "..."}. Returns 0, or -1
 * after answering 400. */
static int read_display_name_or_reply(ingest_request *req, char *name, size_t name_len)
{
    name[0] = '\0';
    if (req->body_len == 0)
        return 0;

    char err[200];
    json_object *doc = lk_json_parse(req->body, req->body_len, err, sizeof(err));
    if (doc == NULL) {
        char message[256];
        snprintf(message, sizeof(message), "the body is not valid JSON: %s", err);
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "malformed_json", message);
        return -1;
    }

    int rc = -1;
    if (!json_object_is_type(doc, json_type_object))
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the body must be a JSON object");
    else
        rc = copy_display_name_or_reply(req, doc, name, name_len);
    json_object_put(doc);
    return rc;
}

static json_object *user_json(int64_t user_id, const char *display_name, const char *token)
{
    json_object *doc = json_object_new_object();
    if (doc == NULL)
        return NULL;

    if (ingest_json_add_int(doc, "id", user_id) != 0 ||
        ingest_json_add_string(doc, "display_name", display_name) != 0 ||
        ingest_json_add_string(doc, "token", token) != 0) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

enum MHD_Result ingest_users_create(ingest_request *req)
{
    char display_name[DISPLAY_NAME_MAX_BYTES + 1];
    if (read_display_name_or_reply(req, display_name, sizeof(display_name)) != 0)
        return req->status != 0 ? MHD_YES : MHD_NO;

    /* Not retried: after a broken connection the insert may have happened. */
    char err[256];
    const char *params[] = {display_name};
    PGresult *result = ingest_db_run(req->app->pg, insert_sql, 1, params, 0, err, sizeof(err));
    if (result == NULL)
        return ingest_reply_unavailable(req, "postgres: inserting a user failed (%s)", err);

    int64_t user_id = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);

    char token[LK_TOKEN_MAX_LEN];
    if (lk_token_mint(req->app->cfg.token_secret, user_id, token, sizeof(token)) != 0)
        return ingest_reply_internal(req, "minting a token for user %" PRId64 " failed", user_id);

    return ingest_reply_json(req, MHD_HTTP_CREATED, user_json(user_id, display_name, token));
}
