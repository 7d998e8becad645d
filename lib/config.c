#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copies the variable `name`, or `fallback` when it is unset or empty.
 * Returns -1 when the value does not fit. */
static int read_string(const char *name, const char *fallback, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0')
        value = fallback;

    if (strlen(value) >= outlen) {
        snprintf(err, errlen, "%s is too long (at most %zu characters)", name, outlen - 1);
        return -1;
    }
    memcpy(out, value, strlen(value) + 1);
    return 0;
}

static int read_integer(const char *name, int64_t fallback, int64_t min, int64_t max, int64_t *out,
                        char *err, size_t errlen)
{
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0') {
        *out = fallback;
        return 0;
    }

    /* strtoll alone would take leading blanks and a plus sign. */
    char *end;
    errno = 0;
    long long parsed = strtoll(value, &end, 10);
    int starts_well = value[0] == '-' || (value[0] >= '0' && value[0] <= '9');
    if (!starts_well || errno != 0 || *end != '\0' || parsed < min || parsed > max) {
        snprintf(err, errlen, "%s must be an integer from %lld to %lld, not \"%s\"", name,
                 (long long)min, (long long)max, value);
        return -1;
    }
    *out = parsed;
    return 0;
}

static int read_int(const char *name, int fallback, int min, int max, int *out, char *err,
                    size_t errlen)
{
    int64_t wide;
    if (read_integer(name, fallback, min, max, &wide, err, errlen) != 0)
        return -1;
    *out = (int)wide;
    return 0;
}

static void default_instance_id(char *out, size_t outlen)
{
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(out, outlen, "%s", host);
}

static int load_strings(lk_config *cfg, char *err, size_t errlen)
{
    char instance[128];
    default_instance_id(instance, sizeof(instance));

    struct {
        const char *name;
        const char *fallback;
        char *out;
        size_t outlen;
    } strings[] = {
        {"LIKES_HTTP_ADDR", "127.0.0.1", cfg->http_addr, sizeof(cfg->http_addr)},
        {"LIKES_KAFKA_BROKERS", "127.0.0.1:19092", cfg->kafka_brokers, sizeof(cfg->kafka_brokers)},
        {"LIKES_TOPIC_LIKES", "likes", cfg->topic_likes, sizeof(cfg->topic_likes)},
        {"LIKES_TOPIC_DELTAS", "like-deltas", cfg->topic_deltas, sizeof(cfg->topic_deltas)},
        {"LIKES_TOPIC_DLQ", "likes-dlq", cfg->topic_dlq, sizeof(cfg->topic_dlq)},
        {"LIKES_AGGREGATOR_GROUP", "likes-aggregator", cfg->aggregator_group,
         sizeof(cfg->aggregator_group)},
        {"LIKES_PERSISTER_GROUP", "likes-persister", cfg->persister_group,
         sizeof(cfg->persister_group)},
        {"LIKES_INSTANCE_ID", instance, cfg->instance_id, sizeof(cfg->instance_id)},
        {"LIKES_REDIS_HOST", "127.0.0.1", cfg->redis_host, sizeof(cfg->redis_host)},
        {"LIKES_PG_DSN", "host=127.0.0.1 port=15432 dbname=likes user=likes connect_timeout=5",
         cfg->pg_dsn, sizeof(cfg->pg_dsn)},
        {"LIKES_TOKEN_SECRET", "", cfg->token_secret, sizeof(cfg->token_secret)},
        {"LIKES_MEDIA_DIR", "./run/media", cfg->media_dir, sizeof(cfg->media_dir)},
        {"LIKES_APP_DIR", "./app/dist", cfg->app_dir, sizeof(cfg->app_dir)},
    };

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (read_string(strings[i].name, strings[i].fallback, strings[i].out, strings[i].outlen,
                        err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int load_numbers(lk_config *cfg, char *err, size_t errlen)
{
    if (read_int("LIKES_HTTP_PORT", 8080, 1, 65535, &cfg->http_port, err, errlen) != 0)
        return -1;
    if (read_int("LIKES_HTTP_MAX_CONNECTIONS", 16000, 16, 1000000, &cfg->http_max_connections, err,
                 errlen) != 0)
        return -1;
    if (read_int("LIKES_REDIS_PORT", 16379, 1, 65535, &cfg->redis_port, err, errlen) != 0)
        return -1;
    if (read_int("LIKES_WINDOW_MS", 200, 1, 60000, &cfg->window_ms, err, errlen) != 0)
        return -1;
    if (read_integer("LIKES_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, 1024, INT64_C(1) << 32,
                     &cfg->max_upload_bytes, err, errlen) != 0)
        return -1;
    if (read_integer("LIKES_MAX_IMAGE_PIXELS", 40000000, 1, INT64_C(1) << 40,
                     &cfg->max_image_pixels, err, errlen) != 0)
        return -1;
    if (read_int("LIKES_MAX_CONCURRENT_UPLOADS", 8, 1, 10000, &cfg->max_concurrent_uploads, err,
                 errlen) != 0)
        return -1;
    return 0;
}

/* An origin as a browser sends it: a lowercase scheme, "://", and a
 * lowercase host with an optional port, nothing after. Anything else could
 * never equal an Origin header, so it is refused rather than ignored. */
static int is_origin(const char *text, size_t len)
{
    if (len == 1 && text[0] == '*')
        return 1;

    size_t scheme = 0;
    while (scheme < len && ((text[scheme] >= 'a' && text[scheme] <= 'z') ||
                            (scheme > 0 && strchr("0123456789+-.", text[scheme]) != NULL)))
        scheme++;
    if (scheme == 0 || len - scheme < 4 || memcmp(text + scheme, "://", 3) != 0)
        return 0;

    for (size_t i = scheme + 3; i < len; i++) {
        if (strchr("abcdefghijklmnopqrstuvwxyz0123456789.-:[]", text[i]) == NULL)
            return 0;
    }
    return 1;
}

/* LIKES_CORS_ORIGINS: origins separated by commas, blanks around them
 * dropped, kept joined by single commas. */
static int load_cors_origins(lk_config *cfg, char *err, size_t errlen)
{
    const char *value = getenv("LIKES_CORS_ORIGINS");
    size_t used = 0;
    cfg->cors_origins[0] = '\0';

    while (value != NULL && *value != '\0') {
        value += strspn(value, " \t,");
        size_t len = strcspn(value, ",");
        while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
            len--;
        if (len == 0)
            continue;

        if (!is_origin(value, len)) {
            snprintf(err, errlen,
                     "LIKES_CORS_ORIGINS: \"%.*s\" is neither * nor an origin such as "
                     "https://app.example (lowercase, no path)",
                     (int)(len > 200 ? 200 : len), value);
            return -1;
        }
        if (used + len + 2 > sizeof(cfg->cors_origins)) {
            snprintf(err, errlen, "LIKES_CORS_ORIGINS is too long (at most %zu characters)",
                     sizeof(cfg->cors_origins) - 1);
            return -1;
        }
        if (used > 0)
            cfg->cors_origins[used++] = ',';
        memcpy(cfg->cors_origins + used, value, len);
        used += len;
        cfg->cors_origins[used] = '\0';
        value += len;
    }
    return 0;
}

int lk_config_load(lk_config *cfg, int need_secret, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));

    if (load_strings(cfg, err, errlen) != 0 || load_numbers(cfg, err, errlen) != 0 ||
        load_cors_origins(cfg, err, errlen) != 0)
        return -1;

    if (need_secret && strlen(cfg->token_secret) < 32) {
        snprintf(err, errlen,
                 "LIKES_TOKEN_SECRET must be set to at least 32 characters "
                 "(scripts/env.sh provides one for the local stack)");
        return -1;
    }
    return 0;
}
