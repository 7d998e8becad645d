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

/* json-c's strict mode still takes NaN, Infinity, single quotes and some
 * malformed UTF-8, none of which is JSON (RFC 8259). This pass refuses them
 * before json-c sees the text: outside strings every word must be true,
 * false or null; inside strings every byte sequence must be UTF-8 and no
 * control character may appear raw. */
static int check_strict_syntax(const char *text, size_t len, char *err, size_t errlen)
{
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;

    while (i < len) {
        unsigned char c = bytes[i];
        if (c == '"') {
            for (i++; i < len && bytes[i] != '"';) {
                size_t step = bytes[i] == '\\' ? 2 : utf8_sequence_length(bytes + i, len - i);
                if (step == 0 || bytes[i] < 0x20) {
                    snprintf(err, errlen, "invalid utf-8 string at byte %zu", i);
                    return -1;
                }
                i += step;
            }
            i++;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t start = i;
            while (i < len &&
                   ((bytes[i] >= 'a' && bytes[i] <= 'z') || (bytes[i] >= 'A' && bytes[i] <= 'Z')))
                i++;
            size_t word = i - start;
            int number_exponent = word == 1 && (c == 'e' || c == 'E') && start > 0 &&
                                  bytes[start - 1] >= '0' && bytes[start - 1] <= '9';
            if (!number_exponent && !(word == 4 && memcmp(text + start, "true", 4) == 0) &&
                !(word == 5 && memcmp(text + start, "false", 5) == 0) &&
                !(word == 4 && memcmp(text + start, "null", 4) == 0)) {
                snprintf(err, errlen, "unexpected character at byte %zu", start);
                return -1;
            }
        } else if (c == '\'') {
            snprintf(err, errlen, "unexpected character at byte %zu", i);
            return -1;
        } else {
            i++;
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

    int64_t value = json_object_get_int64(member);
    /* json-c saturates out-of-range integers at INT64_MAX; such a value is
     * no real id, so refusing it costs nothing. */
    if (value <= 0 || value == INT64_MAX)
        return -1;
    *out = value;
    return 0;
}
