/*
 * The multipart/form-data body of POST /v1/posts, read as it arrives by
 * form.c: the file field "image" and the optional text field "caption",
 * each at most once. Other fields are read and ignored.
 */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_IMAGE_CAPACITY (256 * 1024)

enum upload_field {
    FIELD_OTHER,
    FIELD_IMAGE,
    FIELD_CAPTION,
};

/* The body is in, or will never be: the slot goes to the next upload. */
static void stop_receiving(ingest_upload *upload)
{
    if (!upload->receiving)
        return;
    upload->receiving = 0;
    upload->req->app->uploads_receiving--;
}

static void upload_free(void *state)
{
    ingest_upload *upload = state;
    stop_receiving(upload);
    ingest_form_free(upload->form);
    ingest_image_job_release(upload->job);
    free(upload->image);
    free(upload);
}

static int reserve_image(ingest_upload *upload, size_t wanted)
{
    if (wanted <= upload->image_cap)
        return 0;

    size_t cap = upload->image_cap > 0 ? upload->image_cap : FIRST_IMAGE_CAPACITY;
    while (cap < wanted)
        cap *= 2;
    char *grown = realloc(upload->image, cap);
    if (grown == NULL)
        return -1;
    upload->image = grown;
    upload->image_cap = cap;
    return 0;
}

static int take_image(ingest_upload *upload, const char *data, size_t size)
{
    ingest_request *req = upload->req;
    uint64_t limit = (uint64_t)req->app->cfg.max_upload_bytes;
    if (upload->image_len + size > limit) {
        char message[128];
        snprintf(message, sizeof(message), "the image is larger than the %llu bytes accepted",
                 (unsigned long long)limit);
        ingest_request_fail(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", message);
        return -1;
    }

    if (reserve_image(upload, upload->image_len + size) != 0) {
        ingest_request_fail(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                            "no memory for the uploaded image");
        return -1;
    }
    memcpy(upload->image + upload->image_len, data, size);
    upload->image_len += size;
    return 0;
}

static int take_caption(ingest_upload *upload, const char *data, size_t size)
{
    if (upload->caption_len + size > INGEST_CAPTION_MAX_BYTES) {
        ingest_request_fail(upload->req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                            "the caption is longer than 2000 bytes");
        return -1;
    }

    memcpy(upload->caption + upload->caption_len, data, size);
    upload->caption_len += size;
    upload->caption[upload->caption_len] = '\0';
    return 0;
}

/* A second part of a field is refused even when the first was empty: a
 * proxy in front might have looked at the other one. */
static int on_part(void *cls, const char *name)
{
    ingest_upload *upload = cls;
    upload->current_field = FIELD_OTHER;
    if (strcmp(name, "image") == 0 && upload->image_parts++ == 0)
        upload->current_field = FIELD_IMAGE;
    else if (strcmp(name, "caption") == 0 && upload->caption_parts++ == 0)
        upload->current_field = FIELD_CAPTION;
    else if (strcmp(name, "image") == 0 || strcmp(name, "caption") == 0) {
        char message[64];
        snprintf(message, sizeof(message), "the form has more than one \"%s\" field", name);
        ingest_request_fail(upload->req, MHD_HTTP_BAD_REQUEST, "invalid_field", message);
        return -1;
    }
    return 0;
}

static int on_data(void *cls, const char *data, size_t size)
{
    ingest_upload *upload = cls;
    if (upload->current_field == FIELD_IMAGE)
        return take_image(upload, data, size);
    if (upload->current_field == FIELD_CAPTION)
        return take_caption(upload, data, size);
    return 0;
}

int ingest_upload_begin(ingest_request *req)
{
    /* Every body being read may grow to max_upload_bytes in memory. */
    ingest_app *app = req->app;
    if (app->uploads_receiving >= app->cfg.max_concurrent_uploads) {
        ingest_reply_unavailable(req, "%d uploads are being received already, the most taken",
                                 app->uploads_receiving);
        return -1;
    }

    ingest_upload *upload = calloc(1, sizeof(*upload));
    if (upload == NULL) {
        ingest_reply_internal(req, "no memory for an upload");
        return -1;
    }
    upload->req = req;
    upload->receiving = 1;
    app->uploads_receiving++;
    req->state = upload;
    req->free_state = upload_free;

    const char *content_type =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    upload->form = ingest_form_new(content_type, on_part, on_data, upload);
    if (upload->form == NULL) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the multipart/form-data body needs a boundary parameter of 1 to 70 "
                           "characters");
        return -1;
    }
    return 0;
}

/* A refusal of a callback was recorded first, and wins. */
static void reply_form_refused(ingest_request *req, const ingest_form *form)
{
    char message[160];
    snprintf(message, sizeof(message), "the multipart/form-data body is malformed: %s",
             ingest_form_error(form));
    ingest_request_fail(req, MHD_HTTP_BAD_REQUEST, "invalid_field", message);
}

void ingest_upload_take(ingest_request *req, const char *data, size_t size)
{
    ingest_upload *upload = req->state;
    if (ingest_form_feed(upload->form, data, size) != 0)
        reply_form_refused(req, upload->form);
}

/* Length of the UTF-8 sequence that starts with `lead`, 0 if none does. */
static size_t sequence_length(unsigned char lead, uint32_t *bits, uint32_t *min)
{
    if ((lead & 0xE0) == 0xC0) {
        *bits = lead & 0x1F;
        *min = 0x80;
        return 2;
    }
    if ((lead & 0xF0) == 0xE0) {
        *bits = lead & 0x0F;
        *min = 0x800;
        return 3;
    }
    if ((lead & 0xF8) == 0xF0) {
        *bits = lead & 0x07;
        *min = 0x10000;
        return 4;
    }
    return 0;
}

/* Well-formed UTF-8 (no overlong forms, no surrogates, nothing past
 * U+10FFFF) and no NUL, which PostgreSQL text cannot hold. */
static int is_utf8_text(const unsigned char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (text[i] == 0)
            return 0;
        if (text[i] < 0x80) {
            i++;
            continue;
        }

        uint32_t code = 0;
        uint32_t min = 0;
        size_t n = sequence_length(text[i], &code, &min);
        if (n == 0 || len - i < n)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((text[i + k] & 0xC0) != 0x80)
                return 0;
            code = (code << 6) | (text[i + k] & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

ingest_upload *ingest_upload_finish_or_reply(ingest_request *req)
{
    ingest_upload *upload = req->state;
    stop_receiving(upload);

    if (!ingest_form_complete(upload->form)) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the multipart/form-data body ends before its closing boundary");
        return NULL;
    }
    if (upload->image_len == 0) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the form needs a non-empty file field \"image\"");
        return NULL;
    }
    if (!is_utf8_text((const unsigned char *)upload->caption, upload->caption_len)) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the caption must be UTF-8 text without NUL characters");
        return NULL;
    }
    return upload;
}
