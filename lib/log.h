/*
 * Logging: one line per event on stderr, with a UTC timestamp in
 * milliseconds, the component name, the pid and the level.
 *
 *   2026-12-04T16:06:10.123Z ingest[4242] WARN redis unreachable (...), serving counts from
 * postgres
 *
 * The level threshold comes from LIKES_LOG_LEVEL (debug, info, warn, error;
 * default info). Every function here may be called from any thread.
 */
#ifndef LK_LOG_H
#define LK_LOG_H

typedef enum lk_log_level {
    LK_LOG_DEBUG = 0,
    LK_LOG_INFO = 1,
    LK_LOG_WARN = 2,
    LK_LOG_ERROR = 3,
} lk_log_level;

/* Names the component in every later line and reads LIKES_LOG_LEVEL.
 * Call once from main() before any other thread starts; `component` must
 * stay valid for the life of the process. */
void lk_log_init(const char *component);

/* Returns 1 when a message at `level` would be written. */
int lk_log_enabled(lk_log_level level);

void lk_log(lk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lk_log_debug(...) lk_log(LK_LOG_DEBUG, __VA_ARGS__)
#define lk_log_info(...)  lk_log(LK_LOG_INFO, __VA_ARGS__)
#define lk_log_warn(...)  lk_log(LK_LOG_WARN, __VA_ARGS__)
#define lk_log_error(...) lk_log(LK_LOG_ERROR, __VA_ARGS__)

#endif
