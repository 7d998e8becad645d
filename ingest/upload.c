/*
 * The multipart/form-data body of POST /v1/posts, parsed as it arrives by
 * libmicrohttpd's post processor: the file field "image" and the optional
 * text field "caption". Other fields are read and ignored.
 */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Big enough for the headers of one part; values stream through it. */
#define POST_BUFFER_SIZE (32 * 1024)

#define FIRST_IMAGE_CAPACITY (256 * 1024)

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
    if (upload->processor != NULL)
        MHD_destroy_post_processor(upload->processor);
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

static enum MHD_Result take_image(ingest_upload *upload, const char *data, uint64_t off,
                                  size_t size)
{
    ingest_request *req = upload->req;
    if (off == 0 && upload->image_len > 0) {
        ingest_request_fail(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                            "the form has more than one \"image\" field");
        return MHD_NO;
    }
    if (size == 0)
        return MHD_YES; /* an empty part: nothing to copy, and no buffer yet */

    uint64_t limit = (uint64_t)req->app->cfg.max_upload_bytes;
    if (upload->image_len + size > limit) {
        char message[128];
        snprintf(message, sizeof(message), "the image is larger than the %llu bytes accepted",
                 (unsigned long long)limit);
        ingest_request_fail(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", message);
        return MHD_NO;
    }

    if (reserve_image(upload, upload->image_len + size) != 0) {
        ingest_request_fail(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                            "no memory for the uploaded image");
        return MHD_NO;
    }
    memcpy(upload->image + upload->image_len, data, size);
    upload->image_len += size;
    return MHD_YES;
}

static enum MHD_Result take_caption(ingest_upload *upload, const char *data, uint64_t off,
                                    size_t size)
{
    if (off == 0 && upload->caption_len > 0) {
        ingest_request_fail(upload->req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                            "the form has more than one \"caption\" field");
        return MHD_NO;
    }
    if (upload->caption_len + size > INGEST_CAPTION_MAX_BYTES) {
        ingest_request_fail(upload->req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                            "the caption is longer than 2000 bytes");
        return MHD_NO;
    }

    memcpy(upload->caption + upload->caption_len, data, size);
    upload->caption_len += size;
    upload->caption[upload->caption_len] = '\0';
    return MHD_YES;
}

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    ingest_upload *upload = cls;

    /* libmicrohttpd passes no key for a part whose name it could not read. */
    if (key == NULL)
        return MHD_YES;
    if (strcmp(key, "image") == 0)
        return take_image(upload, data, off, size);
    if (strcmp(key, "caption") == 0)
        return take_caption(upload, data, off, size);
    return MHD_YES;
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

    upload->processor = MHD_create_post_processor(req->conn, POST_BUFFER_SIZE, on_field, upload);
    if (upload->processor == NULL) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the multipart/form-data body needs a boundary parameter");
        return -1;
    }
    return 0;
}

void ingest_upload_take(ingest_request *req, const char *data, size_t size)
{
    ingest_upload *upload = req->state;
    if (MHD_post_process(upload->processor, data, size) != MHD_YES)
        ingest_request_fail(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                            "the multipart/form-data body is malformed");
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

    enum MHD_Result complete = MHD_destroy_post_processor(upload->processor);
    upload->processor = NULL;
    if (complete != MHD_YES) {
        ingest_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_field",
                           "the multipart/form-data body is malformed or incomplete");
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
