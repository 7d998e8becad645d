/*
 * Parsing untrusted JSON: bounded nesting, strict UTF-8, and the whole
 * input must be exactly one value.
 */
#ifndef LK_JSON_H
#define LK_JSON_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define LK_JSON_MAX_DEPTH 16

/* Parses `len` bytes at `text`. Returns a new object the caller releases
 * with json_object_put(), or NULL with a reason in `err`. A JSON `null`
 * document is refused too, so that NULL always means failure. */
json_object *lk_json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Reads a JSON integer as an int64. Returns 0, or -1 when it does not fit
 * (json-c keeps larger ones as unsigned). */
int lk_json_int64(json_object *number, int64_t *out);

/* Reads member `key` of `obj` as a positive int64 (JSON integer, not a
 * float or a string). Returns 0, or -1 when missing or of another type. */
int lk_json_get_id(json_object *obj, const char *key, int64_t *out);

#endif
