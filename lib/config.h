/*
 * Configuration shared by every process, read once from the environment.
 * Each variable has a default that matches the local stack started by
 * scripts/stack.sh, so that a bare `make up` needs no settings at all.
 *
 *   LIKES_HTTP_ADDR           127.0.0.1
 *   LIKES_HTTP_PORT           8080
 *   LIKES_KAFKA_BROKERS       127.0.0.1:19092
 *   LIKES_REDIS_HOST          127.0.0.1
 *   LIKES_REDIS_PORT          16379
 *   LIKES_PG_DSN              host=127.0.0.1 port=15432 dbname=likes user=likes connect_timeout=5
 *   LIKES_TOKEN_SECRET        (required, at least 32 characters)
 *   LIKES_MEDIA_DIR           ./run/media
 *   LIKES_APP_DIR             ./app/dist   the built app that ingest serves
 *                             at / (index.html, /assets/, the service worker)
 *   LIKES_TOPIC_LIKES         likes
 *   LIKES_TOPIC_DELTAS        like-deltas
 *   LIKES_TOPIC_DLQ           likes-dlq
 *   LIKES_AGGREGATOR_GROUP    likes-aggregator
 *   LIKES_PERSISTER_GROUP     likes-persister
 *   LIKES_WINDOW_MS           200    aggregation window
 *   LIKES_INSTANCE_ID         the host name: names this member of a consumer
 *                             group and its transactional id, so it must be
 *                             stable across restarts and distinct between
 *                             members running at once
 *   LIKES_MAX_UPLOAD_BYTES    20971520
 *   LIKES_MAX_IMAGE_PIXELS    40000000
 *   LIKES_MAX_CONCURRENT_UPLOADS 8  uploads whose bodies are being received
 *                             at once; the next one is answered 503
 *   LIKES_HTTP_MAX_CONNECTIONS 16000
 *   LIKES_CORS_ORIGINS        (empty: no CORS headers) the origins whose
 *                             browser pages may call the API, exact and
 *                             comma-separated ("https://app.example"), or *
 *                             for any origin
 */
#ifndef LK_CONFIG_H
#define LK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct lk_config {
    char http_addr[64];
    int http_port;
    int http_max_connections;
    char cors_origins[1024]; /* "" or exact origins joined by commas, blanks removed */

    char kafka_brokers[256];
    char topic_likes[128];
    char topic_deltas[128];
    char topic_dlq[128];
    char aggregator_group[128];
    char persister_group[128];
    char instance_id[128];

    char redis_host[128];
    int redis_port;

    char pg_dsn[512];

    char token_secret[256];
    char media_dir[512];
    char app_dir[512];

    int window_ms;
    int64_t max_upload_bytes;
    int64_t max_image_pixels;
    int max_concurrent_uploads;
} lk_config;

/* Fills `cfg` from the environment. Returns 0, or -1 with a message naming
 * the offending variable in `err`. A missing token secret is an error only
 * when `need_secret` is set: the consumers never see a token. */
int lk_config_load(lk_config *cfg, int need_secret, char *err, size_t errlen);

#endif
