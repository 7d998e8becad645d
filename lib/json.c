#include "json.h"

#include <stdio.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at `text` (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when it is not. */
static size_t utf8_sequence_length(const unsigned char *text, size_t left)
{
    unsigned char lead = text[0];
    size_t length;
    unsigned char second_min = 0x80, second_max = 0xBF;

    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        length = 2;
    else if (lead >= 0xE0 && lead <= 0xEF)
        length = 3;
    else if (lead >= 0xF0 && lead <= 0xF4)
        length = 4;
    else
        return 0;

    if (lead == 0xE0)
        second_min = 0xA0;
    else if (lead == 0xED)
        second_max = 0x9F;
    else if (lead == 0xF0)
        second_min = 0x90;
    else if (lead == 0xF4)
        second_max = 0x8F;

    if (left < length || text[1] < second_min || text[1] > second_max)
        return 0;
    for (size_t i = 2; i < length; i++) {
        if (text[i] < 0x80 || text[i] > 0xBF)
            return 0;
    }
    return length;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the four hex digits of a \uXXXX escape at `text`; -1 if malformed. */
static long escape_code(const unsigned char *text, size_t left)
{
    if (left < 6 || text[0] != '\\' || text[1] != 'u')
        return -1;
    long code = 0;
    for (int i = 2; i < 6; i++) {
        int digit = hex_value(text[i]);
        if (digit < 0)
            return -1;
        code = code * 16 + digit;
    }
    return code;
}

/* Length of the escape at `text` (a backslash), or 0 when it is not one
 * JSON allows, encodes NUL, or is half of a surrogate pair. */
static size_t escape_length(const unsigned char *text, size_t left)
{
    if (left >= 2 && text[1] != 'u')
        return strchr("\"\\/bfnrt", text[1]) != NULL && text[1] != '\0' ? 2 : 0;

    long code = escape_code(text, left);
    if (code <= 0 || (code >= 0xDC00 && code <= 0xDFFF))
        return 0;
    if (code < 0xD800 || code > 0xDBFF)
        return 6;
    long low = escape_code(text + 6, left - 6);
    return low >= 0xDC00 && low <= 0xDFFF ? 12 : 0;
}

/* Checks the string starting at the quote at bytes[*at]; leaves *at after
 * its closing quote. */
static int scan_string(const unsigned char *bytes, size_t len, size_t *at)
{
    size_t i = *at + 1;
    while (i < len && bytes[i] != '"') {
        size_t step = bytes[i] == '\\' ? escape_length(bytes + i, len - i)
                                       : utf8_sequence_length(bytes + i, len - i);
        if (step == 0 || bytes[i] < 0x20) {
            *at = i;
            return -1;
        }
        i += step;
    }
    *at = i + 1;
    return 0;
}

static size_t skip_digits(const unsigned char *bytes, size_t len, size_t i)
{
    while (i < len && bytes[i] >= '0' && bytes[i] <= '9')
        i++;
    return i;
}

/* Checks the number at bytes[*at] against RFC 8259's grammar:
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(const unsigned char *bytes, size_t len, size_t *at)
{
    size_t i = *at;
    if (bytes[i] == '-')
        i++;
    if (i >= len || bytes[i] < '0' || bytes[i] > '9')
        return -1;
    i = bytes[i] == '0' ? i + 1 : skip_digits(bytes, len, i);

    if (i < len && bytes[i] == '.') {
        size_t digits = skip_digits(bytes, len, i + 1);
        if (digits == i + 1)
            return -1;
        i = digits;
    }
    if (i < len && (bytes[i] == 'e' || bytes[i] == 'E')) {
        i++;
        if (i < len && (bytes[i] == '+' || bytes[i] == '-'))
            i++;
        size_t digits = skip_digits(bytes, len, i);
        if (digits == i)
            return -1;
        i = digits;
    }
    /* A number runs into the next token only through a character that
     * could have continued it: 01, 1.2.3, 1e5e5. */
    if (i < len && ((bytes[i] >= '0' && bytes[i] <= '9') || bytes[i] == '.' || bytes[i] == 'e' ||
                    bytes[i] == 'E' || bytes[i] == '+' || bytes[i] == '-'))
        return -1;
    *at = i;
    return 0;
}

static int is_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Outside strings, every word must be true, false or null. */
static int scan_word(const char *text, size_t len, size_t *at)
{
    const unsigned char *bytes = (const unsigned char *)text;
    size_t start = *at, i = *at;
    while (i < len && is_letter(bytes[i]))
        i++;
    size_t word = i - start;
    if ((word == 4 && memcmp(text + start, "true", 4) == 0) ||
        (word == 5 && memcmp(text + start, "false", 5) == 0) ||
        (word == 4 && memcmp(text + start, "null", 4) == 0)) {
        *at = i;
        return 0;
    }
    return -1;
}

/* json-c's strict mode still takes NaN, Infinity, single quotes, numbers
 * such as 1. or 01, lone surrogates and some malformed UTF-8, none of which
 * is JSON (RFC 8259). This pass refuses them, and escaped NUL characters
 * (json-c would cut a member name there), before json-c sees the text. */
static int check_strict_syntax(const char *text, size_t len, char *err, size_t errlen)
{
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;

    while (i < len) {
        unsigned char c = bytes[i];
        size_t start = i;
        int rc = 0;
        if (c == '"') {
            rc = scan_string(bytes, len, &i);
            start = i;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            rc = scan_number(bytes, len, &i);
        } else if (is_letter(c)) {
            rc = scan_word(text, len, &i);
        } else if (c == '\'') {
            rc = -1;
        } else {
            i++;
        }

        if (rc != 0) {
            snprintf(err, errlen,
                     c == '"' ? "invalid utf-8 string at byte %zu"
                              : "unexpected character at byte %zu",
                     start);
            return -1;
        }
    }
    return 0;
}

static int only_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return 0;
    }
    return 1;
}

json_object *lk_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (len > INT32_MAX) {
        snprintf(err, errlen, "document too large");
        return NULL;
    }

    if (check_strict_syntax(text, len, err, errlen) != 0)
        return NULL;

    json_tokener *tokener = json_tokener_new_ex(LK_JSON_MAX_DEPTH);
    if (tokener == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

    json_object *doc = json_tokener_parse_ex(tokener, text, (int)len);
    enum json_tokener_error status = json_tokener_get_error(tokener);
    size_t parse_end = json_tokener_get_parse_end(tokener);

    /* A bare number or word at the very end may go on in a later chunk as
     * far as json-c knows: one space tells it the document is complete. */
    if (status == json_tokener_continue && doc == NULL) {
        doc = json_tokener_parse_ex(tokener, " ", 1);
        status = json_tokener_get_error(tokener);
        parse_end = len;
    }

    if (status == json_tokener_continue) {
        snprintf(err, errlen, "unexpected end of document");
    } else if (status != json_tokener_success) {
        snprintf(err, errlen, "%s at byte %zu", json_tokener_error_desc(status), parse_end);
    } else if (!only_whitespace(text + parse_end, len - parse_end)) {
        snprintf(err, errlen, "trailing data after the document at byte %zu", parse_end);
        json_object_put(doc);
        doc = NULL;
    } else if (doc == NULL) {
        snprintf(err, errlen, "document is null");
    }

    json_tokener_free(tokener);
    return status == json_tokener_success ? doc : NULL;
}

int lk_json_get_id(json_object *obj, const char *key, int64_t *out)
{
    json_object *member;
    if (!json_object_object_get_ex(obj, key, &member) ||
        !json_object_is_type(member, json_type_int))
        return -1;

    int64_t value;
    if (lk_json_int64(member, &value) != 0 || value <= 0)
        return -1;
    *out = value;
    return 0;
}

int lk_json_int64(json_object *number, int64_t *out)
{
    /* json-c saturates integers beyond INT64_MAX at INT64_MAX when read
     * as int64; read as uint64 they keep their size, which tells a real
     * INT64_MAX from a saturated larger number. */
    int64_t value = json_object_get_int64(number);
    if (value == INT64_MAX && json_object_get_uint64(number) != (uint64_t)INT64_MAX)
        return -1;
    *out = value;
    return 0;
}
