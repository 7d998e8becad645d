/*
 * A strict reader of multipart/form-data (RFC 7578), fed the body in
 * pieces as they arrive.
 *
 * libmicrohttpd's post processor is not used for uploads: it reads a
 * part's name only when quoted and preceded by a space, passing the part
 * on without a name otherwise, and it may announce a part with an empty
 * first piece and then go on with the same part, so that an empty part
 * followed by another of the same name cannot be told from one part. Here
 * each part is announced once, with its name, before any of its value.
 *
 * A delimiter is CRLF "--" boundary. The body is read as if a CRLF came
 * before it, so that its first delimiter, at the very start or after a
 * preamble, is found like every other. Part headers end at an empty line;
 * lines end with CRLF.
 */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 2046 */
#define BOUNDARY_MAX 70

/* All header lines of one part together. */
#define PART_HEADERS_MAX 8192

#define DELIMITER_PREFIX "\r\n--"

enum form_state {
    FORM_PREAMBLE,        /* up to the first delimiter, dropped */
    FORM_AFTER_DELIMITER, /* padding, then CRLF or "--" */
    FORM_DELIMITER_CR,    /* the LF after a delimiter's CR */
    FORM_CLOSING_DASH,    /* the second dash of the close delimiter */
    FORM_HEADERS,
    FORM_VALUE,
    FORM_EPILOGUE, /* after the close delimiter, dropped */
    FORM_FAILED,
};

struct ingest_form {
    ingest_form_part_fn on_part;
    ingest_form_data_fn on_data;
    void *cls;
    enum form_state state;
    const char *error;

    char delimiter[sizeof(DELIMITER_PREFIX) + BOUNDARY_MAX];
    size_t delimiter_len;
    size_t partial_len; /* a delimiter's first bytes, at the end of the last piece */

    char line[PART_HEADERS_MAX];
    size_t line_len;
    size_t header_bytes;
    int has_disposition;
    int has_name;
    char name[INGEST_FORM_NAME_MAX + 1];
};

static int fail(ingest_form *form, const char *error)
{
    form->state = FORM_FAILED;
    form->error = error;
    return -1;
}

/* Parameters: `; name=value` after a media type or a disposition type */

static int is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Called for each parameter with its name and its value, unquoted, in
 * `value` (NUL-terminated), or NULL when the value is longer than
 * INGEST_FORM_NAME_MAX. Returns 0, or -1 to refuse the parameters. */
typedef int (*param_fn)(void *cls, const char *name, size_t name_len, const char *value);

/* Reads a quoted-string or a token into `out`. Returns where it ends, or
 * NULL when malformed; `*too_long` is set when it did not fit. */
static const char *read_value(const char *p, const char *end, char *out, int *too_long)
{
    size_t len = 0;
    *too_long = 0;

    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (len < INGEST_FORM_NAME_MAX)
                out[len++] = *p;
            else
                *too_long = 1;
        }
        if (p == end)
            return NULL;
        out[len] = '\0';
        return p + 1;
    }

    const char *start = p;
    for (; p < end && is_token_char(*p); p++) {
        if (len < INGEST_FORM_NAME_MAX)
            out[len++] = *p;
        else
            *too_long = 1;
    }
    out[len] = '\0';
    return p > start ? p : NULL;
}

static int read_params(const char *p, const char *end, param_fn take, void *cls)
{
    char value[INGEST_FORM_NAME_MAX + 1];
    for (;;) {
        p = skip_blanks(p, end);
        if (p == end)
            return 0;
        if (*p != ';')
            return -1;
        p = skip_blanks(p + 1, end);

        const char *name = p;
        while (p < end && is_token_char(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        p = skip_blanks(p, end);
        if (name_len == 0 || p == end || *p != '=')
            return -1;

        int too_long;
        p = read_value(skip_blanks(p + 1, end), end, value, &too_long);
        if (p == NULL || take(cls, name, name_len, too_long ? NULL : value) != 0)
            return -1;
    }
}

static int param_is(const char *name, size_t name_len, const char *expected)
{
    return name_len == strlen(expected) && strncasecmp(name, expected, name_len) == 0;
}

/* Reads the media type `type` at the start of `text`, case aside;
 * returns where its parameters start, or NULL. */
static const char *after_type(const char *text, const char *end, const char *type)
{
    size_t len = strlen(type);
    text = skip_blanks(text, end);
    if ((size_t)(end - text) < len || strncasecmp(text, type, len) != 0)
        return NULL;
    text += len;
    return text == end || *text == ';' || *text == ' ' || *text == '\t' ? text : NULL;
}

/* The boundary of a Content-Type */

static int take_boundary(void *cls, const char *name, size_t name_len, const char *value)
{
    ingest_form *form = cls;
    if (!param_is(name, name_len, "boundary"))
        return 0;
    if (form->delimiter_len > 0 || value == NULL)
        return -1;

    /* Only the delimiter's first byte may be a CR: take_value relies on it. */
    size_t len = strlen(value);
    if (len == 0 || len > BOUNDARY_MAX || strpbrk(value, "\r\n") != NULL)
        return -1;
    memcpy(form->delimiter, DELIMITER_PREFIX, strlen(DELIMITER_PREFIX));
    memcpy(form->delimiter + strlen(DELIMITER_PREFIX), value, len);
    form->delimiter_len = strlen(DELIMITER_PREFIX) + len;
    return 0;
}

ingest_form *ingest_form_new(const char *content_type, ingest_form_part_fn on_part,
                             ingest_form_data_fn on_data, void *cls)
{
    if (content_type == NULL)
        return NULL;
    ingest_form *form = calloc(1, sizeof(*form));
    if (form == NULL)
        return NULL;

    const char *end = content_type + strlen(content_type);
    const char *params = after_type(content_type, end, "multipart/form-data");
    if (params == NULL || read_params(params, end, take_boundary, form) != 0 ||
        form->delimiter_len == 0) {
        free(form);
        return NULL;
    }

    form->on_part = on_part;
    form->on_data = on_data;
    form->cls = cls;
    form->state = FORM_PREAMBLE;
    form->partial_len = 2; /* the CRLF read as if before the body */
    return form;
}

void ingest_form_free(ingest_form *form)
{
    free(form);
}

/* Part headers */

static int take_disposition_param(void *cls, const char *name, size_t name_len, const char *value)
{
    ingest_form *form = cls;
    if (!param_is(name, name_len, "name"))
        return 0;
    if (form->has_name || value == NULL)
        return -1;

    form->has_name = 1;
    strcpy(form->name, value);
    return 0;
}

/* Only Content-Disposition matters; others (Content-Type of a file) are
 * read and left. */
static int take_header_line(ingest_form *form, const char *line, size_t len)
{
    const char *end = line + len;
    if (memchr(line, '\0', len) != NULL)
        return fail(form, "a part header holds a NUL character");

    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return fail(form, "a part header has no colon");
    if (!param_is(line, (size_t)(colon - line), "Content-Disposition"))
        return 0;
    if (form->has_disposition)
        return fail(form, "a part has two Content-Disposition headers");
    form->has_disposition = 1;

    const char *params = after_type(colon + 1, end, "form-data");
    if (params == NULL || read_params(params, end, take_disposition_param, form) != 0)
        return fail(form, "a part's Content-Disposition is not form-data with one name");
    return 0;
}

static int end_headers(ingest_form *form)
{
    if (!form->has_name)
        return fail(form, "a part of the form has no name");
    if (form->on_part(form->cls, form->name) != 0)
        return fail(form, "refused by the reader of the form");
    form->state = FORM_VALUE;
    return 0;
}

/* Returns the bytes of `data` consumed, or -1. */
static long take_headers(ingest_form *form, const char *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (++form->header_bytes > PART_HEADERS_MAX)
            return fail(form, "the headers of a part are longer than 8 KiB");
        if (data[i] != '\n') {
            form->line[form->line_len++] = data[i];
            continue;
        }

        if (form->line_len == 0 || form->line[form->line_len - 1] != '\r')
            return fail(form, "a part header line does not end with CRLF");
        size_t len = form->line_len - 1;
        form->line_len = 0;
        if ((len == 0 ? end_headers(form) : take_header_line(form, form->line, len)) != 0)
            return -1;
        if (len == 0)
            return (long)i + 1;
    }
    return (long)size;
}

static void start_part(ingest_form *form)
{
    form->state = FORM_HEADERS;
    form->line_len = 0;
    form->header_bytes = 0;
    form->has_disposition = 0;
    form->has_name = 0;
}

/* Values, and the delimiters that end them */

/* Hands value bytes on; the preamble is dropped. */
static int emit(ingest_form *form, const char *data, size_t size)
{
    if (size == 0 || form->state != FORM_VALUE)
        return 0;
    if (form->on_data(form->cls, data, size) != 0)
        return fail(form, "refused by the reader of the form");
    return 0;
}

static void delimiter_found(ingest_form *form)
{
    form->partial_len = 0;
    form->state = FORM_AFTER_DELIMITER;
}

/* Goes on with a delimiter begun at the end of the last piece. Returns
 * the bytes consumed, or -1. When it turns out not to be one, its bytes
 * are value and nothing is consumed: a delimiter starts with the only CR
 * it holds, so none can start within those bytes. */
static long continue_delimiter(ingest_form *form, const char *data, size_t size)
{
    size_t matched = form->partial_len;
    size_t i = 0;
    while (matched + i < form->delimiter_len && i < size && data[i] == form->delimiter[matched + i])
        i++;

    if (matched + i == form->delimiter_len) {
        delimiter_found(form);
        return (long)i;
    }
    if (i == size) {
        form->partial_len += i;
        return (long)i;
    }
    form->partial_len = 0;
    return emit(form, form->delimiter, matched) != 0 ? -1 : 0;
}

/* Takes value up to the next delimiter, or keeps the start of one that
 * the piece ends in. Returns the bytes consumed, or -1. */
static long take_value(ingest_form *form, const char *data, size_t size)
{
    if (form->partial_len > 0)
        return continue_delimiter(form, data, size);

    size_t pos = 0;
    for (;;) {
        const char *cr = memchr(data + pos, '\r', size - pos);
        if (cr == NULL)
            return emit(form, data, size) != 0 ? -1 : (long)size;

        size_t at = (size_t)(cr - data);
        size_t left = size - at;
        size_t compared = left < form->delimiter_len ? left : form->delimiter_len;
        if (memcmp(cr, form->delimiter, compared) == 0) {
            if (emit(form, data, at) != 0)
                return -1;
            if (compared < form->delimiter_len) {
                form->partial_len = compared;
                return (long)size;
            }
            delimiter_found(form);
            return (long)(at + compared);
        }
        pos = at + 1;
    }
}

/* After a delimiter: optional blanks, then CRLF before a part, or "--"
 * at the end of the form. Returns 0 or -1. */
static int take_after_delimiter(ingest_form *form, char c)
{
    switch (form->state) {
    case FORM_AFTER_DELIMITER:
        if (c == '-')
            form->state = FORM_CLOSING_DASH;
        else if (c == '\r')
            form->state = FORM_DELIMITER_CR;
        else if (c != ' ' && c != '\t')
            return fail(form, "a boundary is followed by neither CRLF nor \"--\"");
        return 0;
    case FORM_CLOSING_DASH:
        if (c != '-')
            return fail(form, "a boundary is followed by neither CRLF nor \"--\"");
        form->state = FORM_EPILOGUE;
        return 0;
    default:
        if (c != '\n')
            return fail(form, "a boundary is followed by neither CRLF nor \"--\"");
        start_part(form);
        return 0;
    }
}

int ingest_form_feed(ingest_form *form, const char *data, size_t size)
{
    while (size > 0) {
        long used;
        switch (form->state) {
        case FORM_FAILED:
            return -1;
        case FORM_EPILOGUE:
            return 0;
        case FORM_PREAMBLE:
        case FORM_VALUE:
            used = take_value(form, data, size);
            break;
        case FORM_HEADERS:
            used = take_headers(form, data, size);
            break;
        default:
            used = take_after_delimiter(form, *data) != 0 ? -1 : 1;
            break;
        }
        if (used < 0)
            return -1;
        data += used;
        size -= (size_t)used;
    }
    return form->state == FORM_FAILED ? -1 : 0;
}

int ingest_form_complete(const ingest_form *form)
{
    return form->state == FORM_EPILOGUE;
}

const char *ingest_form_error(const ingest_form *form)
{
    return form->error != NULL ? form->error : "the form ends before its closing boundary";
}
