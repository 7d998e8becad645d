#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "likes";
static lk_log_level log_threshold = LK_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static lk_log_level level_from_name(const char *name)
{
    if (name == NULL)
        return LK_LOG_INFO;
    if (strcasecmp(name, "debug") == 0)
        return LK_LOG_DEBUG;
    if (strcasecmp(name, "warn") == 0 || strcasecmp(name, "warning") == 0)
        return LK_LOG_WARN;
    if (strcasecmp(name, "error") == 0)
        return LK_LOG_ERROR;
    return LK_LOG_INFO;
}

void lk_log_init(const char *component)
{
    log_component = component;
    log_threshold = level_from_name(getenv("LIKES_LOG_LEVEL"));
}

int lk_log_enabled(lk_log_level level)
{
    return level >= log_threshold;
}

void lk_log(lk_log_level level, const char *fmt, ...)
{
    if (!lk_log_enabled(level))
        return;

    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);

    /* Format the whole line first so that concurrent threads never
     * interleave within a line: one write(2) per line. */
    char line[2048];
    int used = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s ",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                        utc.tm_sec, now.tv_nsec / 1000000, log_component, (int)getpid(),
                        level_names[level]);

    va_list args;
    va_start(args, fmt);
    used += vsnprintf(line + used, sizeof(line) - (size_t)used - 1, fmt, args);
    va_end(args);

    if (used > (int)sizeof(line) - 2)
        used = (int)sizeof(line) - 2;
    line[used++] = '\n';

    ssize_t ignored = write(STDERR_FILENO, line, (size_t)used);
    (void)ignored;
}
