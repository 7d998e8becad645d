#include "json.h"

#include <stdio.h>

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

    json_tokener *tokener = json_tokener_new_ex(LK_JSON_MAX_DEPTH);
    if (tokener == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

    json_object *doc = json_tokener_parse_ex(tokener, text, (int)len);
    enum json_tokener_error status = json_tokener_get_error(tokener);

    if (status == json_tokener_continue) {
        snprintf(err, errlen, "unexpected end of document");
    } else if (status != json_tokener_success) {
        snprintf(err, errlen, "%s at byte %zu", json_tokener_error_desc(status),
                 json_tokener_get_parse_end(tokener));
    } else if (!only_whitespace(text + json_tokener_get_parse_end(tokener),
                                len - json_tokener_get_parse_end(tokener))) {
        snprintf(err, errlen, "trailing data after the document at byte %zu",
                 json_tokener_get_parse_end(tokener));
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
    if (!json_object_object_get_ex(obj, key, &member) || !json_object_is_type(member, json_type_int))
        return -1;

    int64_t value = json_object_get_int64(member);
    /* json-c saturates out-of-range integers at INT64_MAX; such a value is
     * no real id, so refusing it costs nothing. */
    if (value <= 0 || value == INT64_MAX)
        return -1;
    *out = value;
    return 0;
}
