/*
 * Parsing untrusted JSON: one whole value, bounded nesting, strict UTF-8,
 * and ids read as positive integers only.
 */
#include <string.h>

#include "check.h"
#include "json.h"

typedef struct refusal {
    const char *input;
    const char *err;
} refusal;

/* Parses every input of `cases` and expects NULL with the exact message,
 * or only NULL and some message when `err` is NULL. */
static void expect_refusals(const refusal *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char shown[200];
        check_quote(cases[i].input, shown, sizeof(shown));
        CHECK_CONTEXT("input %s", shown);

        char err[256] = "";
        json_object *doc = lk_json_parse(cases[i].input, strlen(cases[i].input), err, sizeof(err));
        if (doc != NULL) {
            char accepted_as[200];
            snprintf(accepted_as, sizeof(accepted_as), "%s",
                     json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
            json_object_put(doc);
            CHECK_STR_EQ(NULL, accepted_as);
        }
        if (cases[i].err != NULL)
            CHECK_STR_EQ(cases[i].err, err);
        else
            CHECK(err[0] != '\0');
    }
}

#define EXPECT_REFUSALS(cases) expect_refusals((cases), sizeof(cases) / sizeof(*(cases)))

/* Parses `input`, expects success, and compares the document written back
 * plainly with `expected`. */
static void expect_parsed(const char *input, size_t len, const char *expected)
{
    char shown[200];
    check_quote(input, shown, sizeof(shown));
    CHECK_CONTEXT("input %s", shown);

    char err[256] = "";
    json_object *doc = lk_json_parse(input, len, err, sizeof(err));
    CHECK_STR_EQ("", err);
    CHECK(doc != NULL);

    char written[256];
    snprintf(written, sizeof(written), "%s",
             json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    json_object_put(doc);
    CHECK_STR_EQ(expected, written);
}

static void test_parse_object(void)
{
    const char *text = "{\"type\":\"like\",\"user_id\":17,\"list\":[1,2],\"s\":\"caf\xc3\xa9\"}";
    expect_parsed(text, strlen(text),
                  "{\"type\":\"like\",\"user_id\":17,\"list\":[1,2],\"s\":\"caf\xc3\xa9\"}");
}

static void test_whitespace_around(void)
{
    const char *text = " \t\r\n{\"a\":1} \t\r\n";
    expect_parsed(text, strlen(text), "{\"a\":1}");
    if (check_failed)
        return;

    expect_parsed("[1,2] ", 6, "[1,2]");
}

static void test_only_len_bytes(void)
{
    /* Bytes past `len` are not part of the document. */
    expect_parsed("{\"a\":1}{\"b\":2}", 7, "{\"a\":1}");
}

static void test_trailing_data_refused(void)
{
    static const refusal cases[] = {
        {"{\"a\":1}x", "unexpected character at byte 7"},
        {"{\"a\":1} x", "unexpected character at byte 8"},
        {"{\"a\":1}{\"b\":2}", "unexpected character at byte 7"},
        {"{\"a\":1}\n{\"b\":2}", "unexpected character at byte 8"},
        {"[1] [2]", "unexpected character at byte 4"},
        {"{\"a\":1}/* comment */", "unexpected character at byte 10"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_trailing_nul_refused(void)
{
    /* A NUL inside `len` ends what json-c reads; it is still data. */
    char err[256] = "";
    json_object *doc = lk_json_parse("{\"a\":1}\0", 8, err, sizeof(err));
    CHECK(doc == NULL);
    CHECK_STR_EQ("trailing data after the document at byte 7", err);
}

static void test_null_document_refused(void)
{
    static const refusal cases[] = {
        {"null ", "document is null"},
        {"null\n", "document is null"},
        {" null \r\n", "document is null"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_scalar_document(void)
{
    /* A number or a literal is one whole value too: it must not need a
     * byte after it to count as complete. */
    expect_parsed("123", 3, "123");
    if (check_failed)
        return;
    expect_parsed("true", 4, "true");
    if (check_failed)
        return;

    static const refusal null_case[] = {{"null", "document is null"}};
    EXPECT_REFUSALS(null_case);
}

static void test_incomplete_refused(void)
{
    static const refusal cases[] = {
        {"", "unexpected end of document"},
        {" \n", "unexpected end of document"},
        {"{", "unexpected end of document"},
        {"[1,2", "unexpected end of document"},
        {"{\"a\":\"text", "unexpected end of document"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_syntax_refused(void)
{
    static const refusal cases[] = {
        {"{\"a\":1,}", "unexpected character at byte 7"},
        {"[1,]", "unexpected character at byte 3"},
        {"[01]", "unexpected character at byte 1"},
        {"[+1]", "unexpected character at byte 1"},
        {"[0x10]", "unexpected character at byte 2"},
        {"{a:1}", "unexpected character at byte 1"},
        {"[True]", "unexpected character at byte 1"},
        {"[1 2]", "array value separator ',' expected at byte 3"},
        {"{\"a\" 1}", "object property name separator ':' expected at byte 5"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_non_json_literals_refused(void)
{
    /* NaN and Infinity are JavaScript, not JSON (RFC 8259, section 6). */
    static const refusal cases[] = {
        {"{\"a\":NaN}", NULL},
        {"{\"a\":Infinity}", NULL},
        {"{\"a\":-Infinity}", NULL},
    };
    EXPECT_REFUSALS(cases);
}

static void test_single_quotes_refused(void)
{
    /* JSON strings, member names included, use double quotes only. */
    static const refusal cases[] = {
        {"{'a':1}", NULL},
        {"{'type':\"like\"}", NULL},
        {"['a']", "unexpected character at byte 1"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_valid_utf8_accepted(void)
{
    /* Two, three and four byte sequences: e acute, the euro sign, and
     * U+10FFFF, the last code point. */
    const char *text = "[\"\xc3\xa9\",\"\xe2\x82\xac\",\"\xf4\x8f\xbf\xbf\"]";
    expect_parsed(text, strlen(text), "[\"\xc3\xa9\",\"\xe2\x82\xac\",\"\xf4\x8f\xbf\xbf\"]");
}

static void test_malformed_utf8_refused(void)
{
    static const refusal cases[] = {
        {"[\"\xff\"]", "invalid utf-8 string at byte 2"},
        {"[\"\x80\"]", "invalid utf-8 string at byte 2"},
        /* 0xc3 expects one continuation byte, the quote at 3 is not. */
        {"[\"\xc3\"]", "invalid utf-8 string at byte 2"},
        {"[\"\xf8\x88\x80\x80\x80\"]", "invalid utf-8 string at byte 2"},
        /* A byte order mark is not whitespace. */
        {"\xef\xbb\xbf[]", "invalid utf-8 string at byte 0"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_non_shortest_utf8_refused(void)
{
    /* Well-formed bytes that RFC 3629 still forbids: an overlong "/", a
     * UTF-16 surrogate (U+D800), and U+110000, past the last code point. */
    static const refusal cases[] = {
        {"[\"\xc0\xaf\"]", NULL},
        {"[\"\xe0\x80\xaf\"]", NULL},
        {"[\"\xed\xa0\x80\"]", NULL},
        {"[\"\xf4\x90\x80\x80\"]", NULL},
    };
    EXPECT_REFUSALS(cases);
}

static void test_nesting_depth(void)
{
    char text[64];

    /* 16 levels: the deepest accepted. */
    memset(text, '[', 16);
    memset(text + 16, ']', 16);
    expect_parsed(text, 32, "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]");
    if (check_failed)
        return;

    /* 17 levels: refused at the bracket that opens level 17, byte 16. */
    memset(text, '[', 17);
    memset(text + 17, ']', 17);
    text[34] = '\0';
    refusal too_deep = {text, "nesting too deep at byte 16"};
    expect_refusals(&too_deep, 1);
}

static void check_get_id(json_object *doc)
{
    int64_t id = -1;
    CHECK_INT_EQ(0, lk_json_get_id(doc, "small", &id));
    CHECK_INT_EQ(1, id);
    CHECK_INT_EQ(0, lk_json_get_id(doc, "big", &id));
    CHECK_INT_EQ(INT64_MAX - 1, id);
    /* The largest id a token can carry must be readable too. */
    CHECK_INT_EQ(0, lk_json_get_id(doc, "max", &id));
    CHECK_INT_EQ(INT64_MAX, id);

    static const char *const refused[] = {"zero", "negative", "float", "exponent", "string",
                                          "bool", "null",     "huge",  "tiny",     "absent"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CHECK_CONTEXT("member %s", refused[i]);

        /* On refusal `*out` keeps its value. */
        id = 42;
        CHECK_INT_EQ(-1, lk_json_get_id(doc, refused[i], &id));
        CHECK_INT_EQ(42, id);
    }
}

static void test_get_id(void)
{
    const char *text = "{\"small\":1,\"big\":9223372036854775806,\"zero\":0,\"negative\":-5,"
                       "\"float\":5.0,\"exponent\":5e0,\"string\":\"5\",\"bool\":true,"
                       "\"null\":null,\"max\":9223372036854775807,"
                       "\"huge\":99999999999999999999,\"tiny\":-99999999999999999999}";
    char err[256] = "";
    json_object *doc = lk_json_parse(text, strlen(text), err, sizeof(err));
    CHECK_STR_EQ("", err);
    CHECK(doc != NULL);

    check_get_id(doc);
    json_object_put(doc);
}

static void test_number_grammar_refused(void)
{
    static const refusal cases[] = {
        {"[1.]", "unexpected character at byte 1"},
        {"[-.5]", "unexpected character at byte 1"},
        {"[00]", "unexpected character at byte 1"},
        {"[1e]", "unexpected character at byte 1"},
        {"[-]", "unexpected character at byte 1"},
        {"[1.5e+]", "unexpected character at byte 1"},
        {"[1.2.3]", "unexpected character at byte 1"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_escapes_refused(void)
{
    static const refusal cases[] = {
        {"[\"\\ud800\"]", "invalid utf-8 string at byte 2"},
        {"[\"\\udc00\"]", "invalid utf-8 string at byte 2"},
        {"[\"\\ud800\\u0041\"]", "invalid utf-8 string at byte 2"},
        {"{\"a\\u0000b\":1}", "invalid utf-8 string at byte 3"},
        {"[\"\\x41\"]", "invalid utf-8 string at byte 2"},
        {"[\"\\u12\"]", "invalid utf-8 string at byte 2"},
    };
    EXPECT_REFUSALS(cases);
}

static void test_valid_numbers_and_escapes_parse(void)
{
    static const char *const documents[] = {
        "[0]",
        "[-0]",
        "[0.5]",
        "[-12.25e+3]",
        "[1E-2]",
        "[10]",
        "[\"\\ud83d\\ude00\"]",
        "[\"\\u00e9\\n\\t\\\"\\\\\\/\"]",
    };
    for (size_t i = 0; i < sizeof(documents) / sizeof(documents[0]); i++) {
        CHECK_CONTEXT("input %s", documents[i]);
        char err[128] = "";
        json_object *doc = lk_json_parse(documents[i], strlen(documents[i]), err, sizeof(err));
        CHECK_STR_EQ("", err);
        CHECK(doc != NULL);
        json_object_put(doc);
    }
}

int main(void)
{
    static const check_case cases[] = {
        {"numbers outside RFC 8259's grammar are refused", test_number_grammar_refused},
        {"lone surrogates, escaped NUL and bad escapes are refused", test_escapes_refused},
        {"valid numbers and escapes parse", test_valid_numbers_and_escapes_parse},
        {"parses an object", test_parse_object},
        {"whitespace around the document is fine", test_whitespace_around},
        {"reads only len bytes", test_only_len_bytes},
        {"trailing data is refused", test_trailing_data_refused},
        {"a trailing NUL inside len is refused", test_trailing_nul_refused},
        {"a null document is refused", test_null_document_refused},
        {"a scalar document needs no trailing whitespace", test_scalar_document},
        {"an incomplete document is refused", test_incomplete_refused},
        {"syntax errors are refused", test_syntax_refused},
        {"NaN and Infinity are refused", test_non_json_literals_refused},
        {"single-quoted strings and names are refused", test_single_quotes_refused},
        {"valid UTF-8 is accepted", test_valid_utf8_accepted},
        {"malformed UTF-8 is refused", test_malformed_utf8_refused},
        {"overlong, surrogate and out-of-range UTF-8 is refused", test_non_shortest_utf8_refused},
        {"nesting of 16 is accepted, 17 refused", test_nesting_depth},
        {"lk_json_get_id reads positive integers only", test_get_id},
    };
    return CHECK_RUN(cases);
}
