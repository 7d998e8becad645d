/*
 * Configuration from the environment: the defaults of the local stack,
 * overrides, and the exact message for each value refused.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static const char *const variables[] = {
    "LIKES_HTTP_ADDR",     "LIKES_HTTP_PORT",        "LIKES_HTTP_MAX_CONNECTIONS",
    "LIKES_KAFKA_BROKERS", "LIKES_TOPIC_LIKES",      "LIKES_TOPIC_DELTAS",
    "LIKES_TOPIC_DLQ",     "LIKES_AGGREGATOR_GROUP", "LIKES_PERSISTER_GROUP",
    "LIKES_INSTANCE_ID",   "LIKES_REDIS_HOST",       "LIKES_REDIS_PORT",
    "LIKES_PG_DSN",        "LIKES_TOKEN_SECRET",     "LIKES_MEDIA_DIR",
    "LIKES_WINDOW_MS",     "LIKES_MAX_UPLOAD_BYTES", "LIKES_MAX_IMAGE_PIXELS",
    "LIKES_CORS_ORIGINS",  "LIKES_APP_DIR",          "LIKES_MAX_CONCURRENT_UPLOADS",
};

/* 32 characters: the shortest secret accepted. */
#define SECRET_32 "0123456789abcdef0123456789abcdef"

static void clear_environment(void)
{
    for (size_t i = 0; i < sizeof(variables) / sizeof(variables[0]); i++)
        unsetenv(variables[i]);
}

static void test_defaults(void)
{
    clear_environment();
    lk_config cfg;
    char err[256] = "";

    CHECK_INT_EQ(0, lk_config_load(&cfg, 0, err, sizeof(err)));
    CHECK_STR_EQ("", err);
    CHECK_STR_EQ("127.0.0.1", cfg.http_addr);
    CHECK_INT_EQ(8080, cfg.http_port);
    CHECK_INT_EQ(16000, cfg.http_max_connections);
    CHECK_STR_EQ("127.0.0.1:19092", cfg.kafka_brokers);
    CHECK_STR_EQ("likes", cfg.topic_likes);
    CHECK_STR_EQ("like-deltas", cfg.topic_deltas);
    CHECK_STR_EQ("likes-dlq", cfg.topic_dlq);
    CHECK_STR_EQ("likes-aggregator", cfg.aggregator_group);
    CHECK_STR_EQ("likes-persister", cfg.persister_group);
    CHECK_STR_EQ("127.0.0.1", cfg.redis_host);
    CHECK_INT_EQ(16379, cfg.redis_port);
    CHECK_STR_EQ("host=127.0.0.1 port=15432 dbname=likes user=likes connect_timeout=5", cfg.pg_dsn);
    CHECK_STR_EQ("", cfg.token_secret);
    CHECK_STR_EQ("./run/media", cfg.media_dir);
    CHECK_STR_EQ("./app/dist", cfg.app_dir);
    CHECK_INT_EQ(200, cfg.window_ms);
    CHECK_INT_EQ(20971520, cfg.max_upload_bytes);
    CHECK_INT_EQ(40000000, cfg.max_image_pixels);
    CHECK_INT_EQ(8, cfg.max_concurrent_uploads);
    CHECK_STR_EQ("", cfg.cors_origins);
}

static void test_default_instance_id(void)
{
    clear_environment();
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);

    lk_config cfg;
    char err[256] = "";
    CHECK_INT_EQ(0, lk_config_load(&cfg, 0, err, sizeof(err)));
    CHECK_STR_EQ(host, cfg.instance_id);
}

static void test_overrides(void)
{
    clear_environment();
    setenv("LIKES_HTTP_ADDR", "0.0.0.0", 1);
    setenv("LIKES_HTTP_PORT", "18080", 1);
    setenv("LIKES_HTTP_MAX_CONNECTIONS", "16", 1);
    setenv("LIKES_KAFKA_BROKERS", "127.0.0.1:9092,127.0.0.1:9093", 1);
    setenv("LIKES_TOPIC_LIKES", "t-likes", 1);
    setenv("LIKES_TOPIC_DELTAS", "t-deltas", 1);
    setenv("LIKES_TOPIC_DLQ", "t-dlq", 1);
    setenv("LIKES_AGGREGATOR_GROUP", "g-aggregator", 1);
    setenv("LIKES_PERSISTER_GROUP", "g-persister", 1);
    setenv("LIKES_INSTANCE_ID", "aggregator-2", 1);
    setenv("LIKES_REDIS_HOST", "localhost", 1);
    setenv("LIKES_REDIS_PORT", "6379", 1);
    setenv("LIKES_PG_DSN", "dbname=other", 1);
    setenv("LIKES_TOKEN_SECRET", SECRET_32, 1);
    setenv("LIKES_MEDIA_DIR", "/var/lib/likes", 1);
    setenv("LIKES_APP_DIR", "/srv/likes-app", 1);
    setenv("LIKES_WINDOW_MS", "60000", 1);
    setenv("LIKES_MAX_UPLOAD_BYTES", "4294967296", 1);
    setenv("LIKES_MAX_IMAGE_PIXELS", "1099511627776", 1);
    setenv("LIKES_MAX_CONCURRENT_UPLOADS", "10000", 1);
    setenv("LIKES_CORS_ORIGINS", "https://app.example", 1);

    lk_config cfg;
    char err[256] = "";
    int rc = lk_config_load(&cfg, 1, err, sizeof(err));
    clear_environment();

    CHECK_INT_EQ(0, rc);
    CHECK_STR_EQ("0.0.0.0", cfg.http_addr);
    CHECK_INT_EQ(18080, cfg.http_port);
    CHECK_INT_EQ(16, cfg.http_max_connections);
    CHECK_STR_EQ("127.0.0.1:9092,127.0.0.1:9093", cfg.kafka_brokers);
    CHECK_STR_EQ("t-likes", cfg.topic_likes);
    CHECK_STR_EQ("t-deltas", cfg.topic_deltas);
    CHECK_STR_EQ("t-dlq", cfg.topic_dlq);
    CHECK_STR_EQ("g-aggregator", cfg.aggregator_group);
    CHECK_STR_EQ("g-persister", cfg.persister_group);
    CHECK_STR_EQ("aggregator-2", cfg.instance_id);
    CHECK_STR_EQ("localhost", cfg.redis_host);
    CHECK_INT_EQ(6379, cfg.redis_port);
    CHECK_STR_EQ("dbname=other", cfg.pg_dsn);
    CHECK_STR_EQ(SECRET_32, cfg.token_secret);
    CHECK_STR_EQ("/var/lib/likes", cfg.media_dir);
    CHECK_STR_EQ("/srv/likes-app", cfg.app_dir);
    CHECK_INT_EQ(60000, cfg.window_ms);
    CHECK_INT_EQ(INT64_C(4294967296), cfg.max_upload_bytes);
    CHECK_INT_EQ(INT64_C(1099511627776), cfg.max_image_pixels);
    CHECK_INT_EQ(10000, cfg.max_concurrent_uploads);
    CHECK_STR_EQ("https://app.example", cfg.cors_origins);
}

static void test_empty_means_default(void)
{
    clear_environment();
    setenv("LIKES_HTTP_PORT", "", 1);
    setenv("LIKES_TOPIC_LIKES", "", 1);

    lk_config cfg;
    char err[256] = "";
    int rc = lk_config_load(&cfg, 0, err, sizeof(err));
    clear_environment();

    CHECK_INT_EQ(0, rc);
    CHECK_INT_EQ(8080, cfg.http_port);
    CHECK_STR_EQ("likes", cfg.topic_likes);
}

static void test_range_bounds_accepted(void)
{
    clear_environment();
    setenv("LIKES_HTTP_PORT", "1", 1);
    setenv("LIKES_REDIS_PORT", "65535", 1);
    setenv("LIKES_WINDOW_MS", "1", 1);
    setenv("LIKES_MAX_UPLOAD_BYTES", "1024", 1);
    setenv("LIKES_MAX_IMAGE_PIXELS", "1", 1);
    setenv("LIKES_MAX_CONCURRENT_UPLOADS", "1", 1);

    lk_config cfg;
    char err[256] = "";
    int rc = lk_config_load(&cfg, 0, err, sizeof(err));
    clear_environment();

    CHECK_INT_EQ(0, rc);
    CHECK_INT_EQ(1, cfg.http_port);
    CHECK_INT_EQ(65535, cfg.redis_port);
    CHECK_INT_EQ(1, cfg.window_ms);
    CHECK_INT_EQ(1024, cfg.max_upload_bytes);
    CHECK_INT_EQ(1, cfg.max_image_pixels);
    CHECK_INT_EQ(1, cfg.max_concurrent_uploads);
}

typedef struct bad_value {
    const char *name;
    const char *value;
    const char *err;
} bad_value;

static void test_invalid_numbers(void)
{
    static const bad_value cases[] = {
        {"LIKES_HTTP_PORT", "0", "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"0\""},
        {"LIKES_HTTP_PORT", "65536",
         "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"65536\""},
        {"LIKES_HTTP_PORT", "-1", "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"-1\""},
        {"LIKES_HTTP_PORT", "80x",
         "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"80x\""},
        {"LIKES_HTTP_PORT", "8080 ",
         "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"8080 \""},
        {"LIKES_HTTP_PORT", "http",
         "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"http\""},
        {"LIKES_HTTP_PORT", "80.5",
         "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"80.5\""},
        {"LIKES_HTTP_PORT", "0x50",
         "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"0x50\""},
        {"LIKES_HTTP_PORT", "99999999999999999999",
         "LIKES_HTTP_PORT must be an integer from 1 to 65535, not \"99999999999999999999\""},
        {"LIKES_HTTP_MAX_CONNECTIONS", "15",
         "LIKES_HTTP_MAX_CONNECTIONS must be an integer from 16 to 1000000, not \"15\""},
        {"LIKES_REDIS_PORT", "70000",
         "LIKES_REDIS_PORT must be an integer from 1 to 65535, not \"70000\""},
        {"LIKES_WINDOW_MS", "0", "LIKES_WINDOW_MS must be an integer from 1 to 60000, not \"0\""},
        {"LIKES_WINDOW_MS", "60001",
         "LIKES_WINDOW_MS must be an integer from 1 to 60000, not \"60001\""},
        {"LIKES_WINDOW_MS", "200ms",
         "LIKES_WINDOW_MS must be an integer from 1 to 60000, not \"200ms\""},
        {"LIKES_MAX_UPLOAD_BYTES", "1023",
         "LIKES_MAX_UPLOAD_BYTES must be an integer from 1024 to 4294967296, not \"1023\""},
        {"LIKES_MAX_UPLOAD_BYTES", "4294967297",
         "LIKES_MAX_UPLOAD_BYTES must be an integer from 1024 to 4294967296, not \"4294967297\""},
        {"LIKES_MAX_UPLOAD_BYTES", "20M",
         "LIKES_MAX_UPLOAD_BYTES must be an integer from 1024 to 4294967296, not \"20M\""},
        {"LIKES_MAX_CONCURRENT_UPLOADS", "0",
         "LIKES_MAX_CONCURRENT_UPLOADS must be an integer from 1 to 10000, not \"0\""},
        {"LIKES_MAX_CONCURRENT_UPLOADS", "10001",
         "LIKES_MAX_CONCURRENT_UPLOADS must be an integer from 1 to 10000, not \"10001\""},
        {"LIKES_MAX_IMAGE_PIXELS", "0",
         "LIKES_MAX_IMAGE_PIXELS must be an integer from 1 to 1099511627776, not \"0\""},
        {"LIKES_MAX_IMAGE_PIXELS", "1099511627777",
         "LIKES_MAX_IMAGE_PIXELS must be an integer from 1 to 1099511627776, "
         "not \"1099511627777\""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_CONTEXT("%s=\"%s\"", cases[i].name, cases[i].value);
        clear_environment();
        setenv(cases[i].name, cases[i].value, 1);

        lk_config cfg;
        char err[256] = "";
        int rc = lk_config_load(&cfg, 0, err, sizeof(err));
        clear_environment();

        CHECK_INT_EQ(-1, rc);
        CHECK_STR_EQ(cases[i].err, err);
    }
}

static void test_string_too_long(void)
{
    /* http_addr holds 63 characters and the NUL. */
    char value[65];
    memset(value, 'a', 64);
    value[64] = '\0';

    clear_environment();
    setenv("LIKES_HTTP_ADDR", value, 1);
    lk_config cfg;
    char err[256] = "";
    int rc = lk_config_load(&cfg, 0, err, sizeof(err));
    CHECK_INT_EQ(-1, rc);
    CHECK_STR_EQ("LIKES_HTTP_ADDR is too long (at most 63 characters)", err);

    value[63] = '\0';
    setenv("LIKES_HTTP_ADDR", value, 1);
    rc = lk_config_load(&cfg, 0, err, sizeof(err));
    clear_environment();
    CHECK_INT_EQ(0, rc);
    CHECK_STR_EQ(value, cfg.http_addr);
}

static void test_cors_origins_are_listed_without_blanks(void)
{
    static const struct {
        const char *value;
        const char *expected;
    } cases[] = {
        {"*", "*"},
        {" https://app.example , http://127.0.0.1:3000,",
         "https://app.example,http://127.0.0.1:3000"},
        {"http://[::1]:8080,*", "http://[::1]:8080,*"},
        {" , ", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_CONTEXT("LIKES_CORS_ORIGINS=\"%s\"", cases[i].value);
        clear_environment();
        setenv("LIKES_CORS_ORIGINS", cases[i].value, 1);

        lk_config cfg;
        char err[256] = "";
        int rc = lk_config_load(&cfg, 0, err, sizeof(err));
        clear_environment();

        CHECK_INT_EQ(0, rc);
        CHECK_STR_EQ("", err);
        CHECK_STR_EQ(cases[i].expected, cfg.cors_origins);
    }
}

static void test_cors_origins_refused(void)
{
    static const struct {
        const char *value;
        const char *err;
    } cases[] = {
        {"https://app.example/", "LIKES_CORS_ORIGINS: \"https://app.example/\" is neither * nor an "
                                 "origin such as https://app.example (lowercase, no path)"},
        {"http://a.example,https://App.example",
         "LIKES_CORS_ORIGINS: \"https://App.example\" is neither * nor an origin such as "
         "https://app.example (lowercase, no path)"},
        {"app.example", "LIKES_CORS_ORIGINS: \"app.example\" is neither * nor an origin such as "
                        "https://app.example (lowercase, no path)"},
        {"https://", "LIKES_CORS_ORIGINS: \"https://\" is neither * nor an origin such as "
                     "https://app.example (lowercase, no path)"},
        {"http://a b", "LIKES_CORS_ORIGINS: \"http://a b\" is neither * nor an origin such as "
                       "https://app.example (lowercase, no path)"},
        {"**", "LIKES_CORS_ORIGINS: \"**\" is neither * nor an origin such as "
               "https://app.example (lowercase, no path)"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_CONTEXT("LIKES_CORS_ORIGINS=\"%s\"", cases[i].value);
        clear_environment();
        setenv("LIKES_CORS_ORIGINS", cases[i].value, 1);

        lk_config cfg;
        char err[256] = "";
        int rc = lk_config_load(&cfg, 0, err, sizeof(err));
        clear_environment();

        CHECK_INT_EQ(-1, rc);
        CHECK_STR_EQ(cases[i].err, err);
    }
}

static void test_cors_origins_too_long(void)
{
    /* 100 origins of 21 characters and their commas: 2,199 characters. */
    char value[2400] = "";
    for (int i = 0; i < 100; i++) {
        size_t used = strlen(value);
        snprintf(value + used, sizeof(value) - used, "%shttps://app%03d.example", i > 0 ? "," : "",
                 i);
    }

    clear_environment();
    setenv("LIKES_CORS_ORIGINS", value, 1);
    lk_config cfg;
    char err[256] = "";
    int rc = lk_config_load(&cfg, 0, err, sizeof(err));
    clear_environment();

    CHECK_INT_EQ(-1, rc);
    CHECK_STR_EQ("LIKES_CORS_ORIGINS is too long (at most 1023 characters)", err);
}

static void test_missing_secret(void)
{
    static const char message[] = "LIKES_TOKEN_SECRET must be set to at least 32 characters "
                                  "(scripts/env.sh provides one for the local stack)";
    lk_config cfg;
    char err[256] = "";

    clear_environment();
    CHECK_INT_EQ(-1, lk_config_load(&cfg, 1, err, sizeof(err)));
    CHECK_STR_EQ(message, err);

    setenv("LIKES_TOKEN_SECRET", "", 1);
    err[0] = '\0';
    CHECK_INT_EQ(-1, lk_config_load(&cfg, 1, err, sizeof(err)));
    CHECK_STR_EQ(message, err);

    /* 31 characters. */
    setenv("LIKES_TOKEN_SECRET", "0123456789abcdef0123456789abcde", 1);
    err[0] = '\0';
    int rc = lk_config_load(&cfg, 1, err, sizeof(err));
    clear_environment();
    CHECK_INT_EQ(-1, rc);
    CHECK_STR_EQ(message, err);
}

static void test_secret_not_needed(void)
{
    lk_config cfg;
    char err[256] = "";

    clear_environment();
    CHECK_INT_EQ(0, lk_config_load(&cfg, 0, err, sizeof(err)));
    CHECK_STR_EQ("", cfg.token_secret);

    setenv("LIKES_TOKEN_SECRET", SECRET_32, 1);
    int rc = lk_config_load(&cfg, 1, err, sizeof(err));
    clear_environment();
    CHECK_INT_EQ(0, rc);
    CHECK_STR_EQ(SECRET_32, cfg.token_secret);
}

int main(void)
{
    static const check_case cases[] = {
        {"defaults match the local stack", test_defaults},
        {"the default instance id is the host name", test_default_instance_id},
        {"every variable overrides its default", test_overrides},
        {"an empty variable means the default", test_empty_means_default},
        {"the bounds of each range are accepted", test_range_bounds_accepted},
        {"invalid numbers are refused naming the variable", test_invalid_numbers},
        {"a string too long is refused naming the variable", test_string_too_long},
        {"CORS origins are kept without blanks", test_cors_origins_are_listed_without_blanks},
        {"a CORS origin no browser sends is refused", test_cors_origins_refused},
        {"CORS origins too long are refused", test_cors_origins_too_long},
        {"a missing or short secret is refused when required", test_missing_secret},
        {"the secret is optional when not required", test_secret_not_needed},
    };
    return CHECK_RUN(cases);
}
