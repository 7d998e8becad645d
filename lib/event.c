#include "event.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static const char *action_name(lk_action action)
{
    switch (action) {
    case LK_ACTION_LIKE:
        return "like";
    case LK_ACTION_UNLIKE:
        return "unlike";
    }
    return NULL;
}

int lk_event_encode(const lk_like_event *ev, char *buf, size_t buflen)
{
    const char *type = action_name(ev->action);
    if (type == NULL || ev->user_id <= 0 || ev->post_id <= 0)
        return -1;

    int len = snprintf(buf, buflen,
                       "{\"type\":\"%s\",\"user_id\":%" PRId64 ",\"post_id\":%" PRId64
                       ",\"ts\":%" PRId64 "}",
                       type, ev->user_id, ev->post_id, ev->ts_ms);
    if (len < 0 || (size_t)len >= buflen)
        return -1;
    return len;
}

static int decode_action(json_object *doc, lk_action *action)
{
    json_object *type;
    if (!json_object_object_get_ex(doc, "type", &type) ||
        !json_object_is_type(type, json_type_string))
        return -1;

    /* Compared with their lengths: a JSON string may hold a NUL. */
    const char *name = json_object_get_string(type);
    size_t len = (size_t)json_object_get_string_len(type);
    if (len == 4 && memcmp(name, "like", 4) == 0)
        *action = LK_ACTION_LIKE;
    else if (len == 6 && memcmp(name, "unlike", 6) == 0)
        *action = LK_ACTION_UNLIKE;
    else
        return -1;
    return 0;
}

int lk_event_decode(const char *buf, size_t len, lk_like_event *ev, char *err, size_t errlen)
{
    json_object *doc = lk_json_parse(buf, len, err, errlen);
    if (doc == NULL)
        return -1;

    int rc = -1;
    if (!json_object_is_type(doc, json_type_object)) {
        snprintf(err, errlen, "an event must be a JSON object");
        goto done;
    }
    if (decode_action(doc, &ev->action) != 0) {
        snprintf(err, errlen, "\"type\" must be \"like\" or \"unlike\"");
        goto done;
    }
    if (lk_json_get_id(doc, "user_id", &ev->user_id) != 0) {
        snprintf(err, errlen, "\"user_id\" must be a positive integer");
        goto done;
    }
    if (lk_json_get_id(doc, "post_id", &ev->post_id) != 0) {
        snprintf(err, errlen, "\"post_id\" must be a positive integer");
        goto done;
    }

    /* The timestamp is informational: a hand-written event may omit it. */
    json_object *ts;
    ev->ts_ms = 0;
    if (json_object_object_get_ex(doc, "ts", &ts) && json_object_is_type(ts, json_type_int))
        ev->ts_ms = json_object_get_int64(ts);
    rc = 0;

done:
    json_object_put(doc);
    return rc;
}

int lk_event_key(int64_t post_id, char *buf, size_t buflen)
{
    return snprintf(buf, buflen, "%" PRId64, post_id);
}

/* Appends ,"name":[ids] to `out`. */
static int add_id_array(json_object *out, const char *name, const int64_t *ids, size_t count)
{
    json_object *array = json_object_new_array_ext((int)count);
    if (array == NULL)
        return -1;

    for (size_t i = 0; i < count; i++) {
        if (json_object_array_add(array, json_object_new_int64(ids[i])) != 0) {
            json_object_put(array);
            return -1;
        }
    }
    return json_object_object_add(out, name, array);
}

char *lk_delta_encode(const lk_delta *delta, size_t *len)
{
    char *text = NULL;
    json_object *doc = json_object_new_object();
    if (doc == NULL)
        return NULL;

    if (json_object_object_add(doc, "post_id", json_object_new_int64(delta->post_id)) != 0 ||
        add_id_array(doc, "liked", delta->liked, delta->liked_count) != 0 ||
        add_id_array(doc, "unliked", delta->unliked, delta->unliked_count) != 0)
        goto done;

    size_t text_len;
    const char *shown = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN, &text_len);
    text = malloc(text_len + 1);
    if (text != NULL) {
        memcpy(text, shown, text_len + 1);
        *len = text_len;
    }

done:
    json_object_put(doc);
    return text;
}

/* Copies the array member `name` of positive ids into a new allocation. */
static int decode_id_array(json_object *doc, const char *name, int64_t **ids, size_t *count,
                           char *err, size_t errlen)
{
    json_object *array;
    if (!json_object_object_get_ex(doc, name, &array) ||
        !json_object_is_type(array, json_type_array)) {
        snprintf(err, errlen, "\"%s\" must be an array of user ids", name);
        return -1;
    }

    size_t n = json_object_array_length(array);
    *ids = malloc((n ? n : 1) * sizeof(**ids));
    if (*ids == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(array, i);
        int64_t value = 0;
        if (!json_object_is_type(item, json_type_int) || lk_json_int64(item, &value) != 0 ||
            value <= 0) {
            snprintf(err, errlen, "\"%s\"[%zu] must be a positive integer", name, i);
            free(*ids);
            *ids = NULL;
            return -1;
        }
        (*ids)[i] = value;
    }
    *count = n;
    return 0;
}

int lk_delta_decode(const char *buf, size_t len, lk_delta *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));

    json_object *doc = lk_json_parse(buf, len, err, errlen);
    if (doc == NULL)
        return -1;

    int rc = -1;
    if (!json_object_is_type(doc, json_type_object)) {
        snprintf(err, errlen, "a delta must be a JSON object");
        goto done;
    }
    if (lk_json_get_id(doc, "post_id", &out->post_id) != 0) {
        snprintf(err, errlen, "\"post_id\" must be a positive integer");
        goto done;
    }
    if (decode_id_array(doc, "liked", &out->liked, &out->liked_count, err, errlen) != 0)
        goto done;
    if (decode_id_array(doc, "unliked", &out->unliked, &out->unliked_count, err, errlen) != 0) {
        lk_delta_clear(out);
        goto done;
    }
    rc = 0;

done:
    json_object_put(doc);
    return rc;
}

void lk_delta_clear(lk_delta *delta)
{
    free(delta->liked);
    free(delta->unliked);
    memset(delta, 0, sizeof(*delta));
}
