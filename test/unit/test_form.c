/*
 * The multipart/form-data reader of ingest/form.c: the exact parts and
 * values it hands on, whatever the pieces the body arrives in, and the
 * forms it refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ingest.h"

#define TYPE "multipart/form-data; boundary=xyz"

/* What the callbacks saw: "[name]=value|" per part. */
typedef struct record {
    char text[8192];
    size_t len;
    int empty_pieces;
    const char *refuse_name; /* on_part answers -1 for this name */
} record;

static void append(record *r, const char *data, size_t size)
{
    if (r->len + size < sizeof(r->text)) {
        memcpy(r->text + r->len, data, size);
        r->len += size;
        r->text[r->len] = '\0';
    }
}

static int on_part(void *cls, const char *name)
{
    record *r = cls;
    if (r->len > 0)
        append(r, "|", 1);
    append(r, "[", 1);
    append(r, name, strlen(name));
    append(r, "]=", 2);
    return r->refuse_name != NULL && strcmp(name, r->refuse_name) == 0 ? -1 : 0;
}

static int on_data(void *cls, const char *data, size_t size)
{
    record *r = cls;
    if (size == 0)
        r->empty_pieces++;
    append(r, data, size);
    return 0;
}

/* Feeds `body` in pieces of `piece` bytes, or in two at `split` when
 * `piece` is 0. Returns the last result of ingest_form_feed, and 1 more
 * when the form is complete. */
static int read_form(const char *type, const char *body, size_t len, size_t piece, size_t split,
                     record *r)
{
    memset(r, 0, sizeof(*r));
    ingest_form *form = ingest_form_new(type, on_part, on_data, r);
    if (form == NULL)
        return -2;

    int rc = 0;
    if (piece == 0) {
        rc = ingest_form_feed(form, body, split);
        if (rc == 0)
            rc = ingest_form_feed(form, body + split, len - split);
    } else {
        for (size_t at = 0; at < len && rc == 0; at += piece)
            rc = ingest_form_feed(form, body + at, len - at < piece ? len - at : piece);
    }
    if (rc == 0 && ingest_form_complete(form))
        rc = 1;
    ingest_form_free(form);
    return rc;
}

/* Every way of cutting the body in two, and byte by byte, reads alike. */
static void check_every_split(const char *type, const char *body, size_t len, int expected_rc,
                              const char *expected)
{
    record r;
    for (size_t split = 0; split <= len; split++) {
        CHECK_CONTEXT("cut at %zu", split);
        CHECK_INT_EQ(expected_rc, read_form(type, body, len, 0, split, &r));
        CHECK_STR_EQ(expected, r.text);
        CHECK_INT_EQ(0, r.empty_pieces);
    }
    CHECK_CONTEXT("byte by byte");
    CHECK_INT_EQ(expected_rc, read_form(type, body, len, 1, 0, &r));
    CHECK_STR_EQ(expected, r.text);
}

#define CHECK_FORM(type, body, rc, expected)                                                       \
    do {                                                                                           \
        check_every_split(type, body, sizeof(body) - 1, rc, expected);                             \
        if (check_failed)                                                                          \
            return;                                                                                \
    } while (0)

static void test_parts_and_values(void)
{
    CHECK_FORM(TYPE,
               "--xyz\r\n"
               "Content-Disposition: form-data; name=\"caption\"\r\n"
               "\r\n"
               "a cat\r\n"
               "--xyz\r\n"
               "Content-Disposition: form-data; name=\"image\"; filename=\"c.png\"\r\n"
               "Content-Type: image/png\r\n"
               "\r\n"
               "\x89PNG\r\n--xy\r\n--\r\r\n-xyz--xyz\r\n"
               "--xyz--\r\n",
               1, "[caption]=a cat|[image]=\x89PNG\r\n--xy\r\n--\r\r\n-xyz--xyz");
}

static void test_empty_part_then_another(void)
{
    CHECK_FORM(TYPE,
               "--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n"
               "\r\n--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n"
               "data\r\n--xyz--",
               1, "[image]=|[image]=data");
}

static void test_name_spellings(void)
{
    CHECK_FORM(
        TYPE,
        "--xyz\r\ncontent-disposition:form-data;name=image\r\n\r\nA\r\n"
        "--xyz\r\nContent-Disposition: FORM-DATA ; filename=\"name=x\" ; NAME = \"q\\\"t\"\r\n"
        "\r\nB\r\n--xyz--",
        1, "[image]=A|[q\"t]=B");
}

static void test_preamble_padding_and_epilogue(void)
{
    CHECK_FORM(TYPE,
               "preamble --xyz\r\n\r\n--xyz \t\r\nContent-Disposition: form-data; name=a\r\n\r\n"
               "1\r\n--xyz--  epilogue\r\n--xyz\r\n",
               1, "[a]=1");
}

static void test_incomplete(void)
{
    CHECK_FORM(TYPE, "--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--xy", 0,
               "[a]=1");
    CHECK_FORM(TYPE, "", 0, "");
}

static void check_refused(const char *body, const char *error)
{
    record r;
    ingest_form *form = ingest_form_new(TYPE, on_part, on_data, &r);
    memset(&r, 0, sizeof(r));
    CHECK(form != NULL);
    int rc = ingest_form_feed(form, body, strlen(body));
    int again = ingest_form_feed(form, "x", 1);
    char message[256];
    snprintf(message, sizeof(message), "%s", ingest_form_error(form));
    ingest_form_free(form);

    CHECK_CONTEXT("%s", body);
    CHECK_INT_EQ(-1, rc);
    CHECK_INT_EQ(-1, again);
    CHECK_STR_EQ(error, message);
}

static void test_refused_forms(void)
{
    static const struct {
        const char *body;
        const char *error;
    } cases[] = {
        {"--xyz\r\nContent-Type: text/plain\r\n\r\n1\r\n--xyz--", "a part of the form has no name"},
        {"--xyz\r\nContent-Disposition: form-data; name=image\n\r\n",
         "a part header line does not end with CRLF"},
        {"--xyz\r\nContent-Disposition: attachment; name=image\r\n\r\n",
         "a part's Content-Disposition is not form-data with one name"},
        {"--xyz\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\n",
         "a part's Content-Disposition is not form-data with one name"},
        {"--xyz\r\nContent-Disposition: form-data; name=\"image\r\n\r\n",
         "a part's Content-Disposition is not form-data with one name"},
        {"--xyz\r\nContent-Disposition: form-data; name=\r\n\r\n",
         "a part's Content-Disposition is not form-data with one name"},
        {"--xyz\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; "
         "name=b\r\n\r\n",
         "a part has two Content-Disposition headers"},
        {"--xyz\r\nno colon here\r\n\r\n", "a part header has no colon"},
        {"--xyzz\r\n", "a boundary is followed by neither CRLF nor \"--\""},
        {"--xyz-x", "a boundary is followed by neither CRLF nor \"--\""},
        {"--xyz\rx", "a boundary is followed by neither CRLF nor \"--\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_refused(cases[i].body, cases[i].error);
        if (check_failed)
            return;
    }
}

static void test_part_headers_too_long(void)
{
    size_t len = 9000;
    char *body = malloc(len + 1);
    CHECK(body != NULL);
    memset(body, 'h', len);
    memcpy(body, "--xyz\r\nX: ", 10);
    body[len] = '\0';
    check_refused(body, "the headers of a part are longer than 8 KiB");
    free(body);
}

static void test_names_up_to_the_limit(void)
{
    char body[1024];
    char expected[600];
    char name[INGEST_FORM_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[INGEST_FORM_NAME_MAX] = '\0';
    snprintf(body, sizeof(body),
             "--xyz\r\nContent-Disposition: form-data; name=%s\r\n\r\nv\r\n--xyz--", name);
    snprintf(expected, sizeof(expected), "[%s]=v", name);
    record r;
    CHECK_INT_EQ(1, read_form(TYPE, body, strlen(body), 4096, 0, &r));
    CHECK_STR_EQ(expected, r.text);

    name[INGEST_FORM_NAME_MAX] = 'n';
    name[INGEST_FORM_NAME_MAX + 1] = '\0';
    snprintf(body, sizeof(body),
             "--xyz\r\nContent-Disposition: form-data; name=%s\r\n\r\nv\r\n--xyz--", name);
    CHECK_INT_EQ(-1, read_form(TYPE, body, strlen(body), 4096, 0, &r));
}

static void test_a_refusing_callback_stops_the_form(void)
{
    static const char body[] =
        "--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
        "--xyz\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
        "--xyz\r\nContent-Disposition: form-data; name=c\r\n\r\n3\r\n--xyz--";
    record r;
    ingest_form *form = ingest_form_new(TYPE, on_part, on_data, &r);
    memset(&r, 0, sizeof(r));
    r.refuse_name = "b";
    CHECK(form != NULL);
    int rc = ingest_form_feed(form, body, sizeof(body) - 1);
    int complete = ingest_form_complete(form);
    ingest_form_free(form);

    CHECK_INT_EQ(-1, rc);
    CHECK_INT_EQ(0, complete);
    CHECK_STR_EQ("[a]=1|[b]=", r.text);
}

static void test_content_types(void)
{
    static const char body[] =
        "--a b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--a b--";
    record r;
    CHECK_INT_EQ(1, read_form("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b\"", body,
                              sizeof(body) - 1, 7, 0, &r));
    CHECK_STR_EQ("[x]=1", r.text);

    char longest[128];
    snprintf(longest, sizeof(longest), "multipart/form-data; boundary=%070d", 0);
    CHECK(read_form(longest, "", 0, 1, 0, &r) != -2);

    static const char *const refused[] = {
        NULL,
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=0000000000000000000000000000000000000000000000000000000000"
        "0000000000000",
        "multipart/form-data; boundary=a; boundary=b",
        "multipart/form-datax; boundary=a",
        "multipart/mixed; boundary=a",
        "multipart/form-data; boundary=a b",
        "multipart/form-data; boundary=\"a",
        "multipart/form-data boundary=a",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CHECK_CONTEXT("%s", refused[i] != NULL ? refused[i] : "(none)");
        CHECK_INT_EQ(-2, read_form(refused[i], "", 0, 1, 0, &r));
    }
}

int main(void)
{
    static const check_case cases[] = {
        {"parts and values, however the body is cut", test_parts_and_values},
        {"an empty part and another of its name are two parts", test_empty_part_then_another},
        {"names quoted or not, any case, with escapes", test_name_spellings},
        {"preamble, padding and epilogue are dropped", test_preamble_padding_and_epilogue},
        {"a form without its closing boundary is incomplete", test_incomplete},
        {"malformed forms are refused with their reason", test_refused_forms},
        {"part headers over 8 KiB are refused", test_part_headers_too_long},
        {"names of up to 256 bytes are taken", test_names_up_to_the_limit},
        {"a callback's refusal stops the form", test_a_refusing_callback_stops_the_form},
        {"boundaries from the Content-Type", test_content_types},
    };
    return CHECK_RUN(cases);
}
