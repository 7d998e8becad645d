/*
 * Logging: the exact line written to stderr, the threshold read from
 * LIKES_LOG_LEVEL, and one whole line per call even from many threads.
 *
 * stderr is captured by pointing file descriptor 2 at a pipe for the
 * duration of each test, so a failure is reported on stdout as usual.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "check.h"
#include "log.h"

static void init_with_level(const char *level)
{
    if (level != NULL)
        setenv("LIKES_LOG_LEVEL", level, 1);
    else
        unsetenv("LIKES_LOG_LEVEL");
    lk_log_init("test_log");
    unsetenv("LIKES_LOG_LEVEL");
}

/* Checks `line`, one log line with its newline, written between `before`
 * and `after` (whole seconds), against the exact text after the time
 * stamp, `rest`. */
static void expect_line(const char *line, time_t before, time_t after, const char *rest)
{
    /* 2026-12-04T16:06:10.123Z: 24 characters, digits shown as d. */
    char shape[25];
    size_t i;
    for (i = 0; i < 24 && line[i] != '\0'; i++)
        shape[i] = line[i] >= '0' && line[i] <= '9' ? 'd' : line[i];
    shape[i] = '\0';
    CHECK_STR_EQ("dddd-dd-ddTdd:dd:dd.dddZ", shape);

    struct tm utc;
    memset(&utc, 0, sizeof(utc));
    const char *end = strptime(line, "%Y-%m-%dT%H:%M:%S", &utc);
    CHECK(end == line + 19);
    CHECK_INT_RANGE(before, after, timegm(&utc));

    CHECK_STR_EQ(rest, line + 24);
}

static void test_line_format(void)
{
    init_with_level(NULL);
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    time_t before = time(NULL);
    lk_log_warn("redis %s:%d unreachable (%s), serving counts from postgres", "127.0.0.1", 16379,
                "Connection refused");
    time_t after = time(NULL);

    char out[4096];
    capture_end(&cap, out, sizeof(out));

    char rest[256];
    snprintf(rest, sizeof(rest),
             " test_log[%d] WARN redis 127.0.0.1:16379 unreachable (Connection refused), serving "
             "counts from postgres\n",
             (int)getpid());
    expect_line(out, before, after, rest);
}

static void test_level_names(void)
{
    init_with_level("debug");
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    time_t before = time(NULL);
    lk_log_debug("one");
    lk_log_info("two");
    lk_log_warn("three");
    lk_log_error("four");
    lk_log(LK_LOG_INFO, "five %d", 5);
    time_t after = time(NULL);

    char out[4096];
    capture_end(&cap, out, sizeof(out));

    static const char *const expected[] = {"DEBUG one", "INFO two", "WARN three", "ERROR four",
                                           "INFO five 5"};
    const char *line = out;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        CHECK_CONTEXT("line %zu", i + 1);
        const char *newline = strchr(line, '\n');
        CHECK(newline != NULL);

        char one[512], rest[256];
        snprintf(one, sizeof(one), "%.*s", (int)(newline - line + 1), line);
        snprintf(rest, sizeof(rest), " test_log[%d] %s\n", (int)getpid(), expected[i]);
        expect_line(one, before, after, rest);
        if (check_failed)
            return;
        line = newline + 1;
    }
    CHECK_CONTEXT("after the last line");
    CHECK_STR_EQ("", line);
}

static void test_filtering(void)
{
    init_with_level("warn");
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    lk_log_debug("hidden debug");
    lk_log_info("hidden info");
    lk_log_warn("shown warn");
    lk_log_error("shown error");

    char out[4096];
    capture_end(&cap, out, sizeof(out));

    CHECK(strstr(out, "hidden") == NULL);
    const char *warn = strstr(out, " WARN shown warn\n");
    const char *error = strstr(out, " ERROR shown error\n");
    CHECK(warn != NULL);
    CHECK(error != NULL);
    CHECK(warn < error);

    /* Two lines, nothing else. */
    int lines = 0;
    for (const char *p = out; *p != '\0'; p++)
        lines += *p == '\n';
    CHECK_INT_EQ(2, lines);
}

/* The lowest level enabled after lk_log_init with LIKES_LOG_LEVEL=`name`. */
static int threshold_for(const char *name)
{
    init_with_level(name);
    for (int level = LK_LOG_DEBUG; level <= LK_LOG_ERROR; level++) {
        if (lk_log_enabled((lk_log_level)level))
            return level;
    }
    return -1;
}

static void test_threshold_from_environment(void)
{
    static const struct {
        const char *name;
        int threshold;
    } cases[] = {
        {NULL, LK_LOG_INFO},      {"", LK_LOG_INFO},       {"debug", LK_LOG_DEBUG},
        {"DEBUG", LK_LOG_DEBUG},  {"info", LK_LOG_INFO},   {"warn", LK_LOG_WARN},
        {"Warning", LK_LOG_WARN}, {"error", LK_LOG_ERROR}, {"ERROR", LK_LOG_ERROR},
        {"verbose", LK_LOG_INFO}, {"3", LK_LOG_INFO},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_CONTEXT("LIKES_LOG_LEVEL=%s", cases[i].name != NULL ? cases[i].name : "(unset)");
        CHECK_INT_EQ(cases[i].threshold, threshold_for(cases[i].name));
    }
}

static void test_enabled_above_threshold(void)
{
    init_with_level("warn");
    CHECK_INT_EQ(0, lk_log_enabled(LK_LOG_DEBUG));
    CHECK_INT_EQ(0, lk_log_enabled(LK_LOG_INFO));
    CHECK_INT_EQ(1, lk_log_enabled(LK_LOG_WARN));
    CHECK_INT_EQ(1, lk_log_enabled(LK_LOG_ERROR));
}

static void test_long_message_truncated(void)
{
    init_with_level(NULL);
    char message[5000];
    memset(message, 'x', sizeof(message) - 1);
    message[sizeof(message) - 1] = '\0';

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    lk_log_info("%s", message);
    char out[8192];
    size_t len = capture_end(&cap, out, sizeof(out));

    /* The line fills a 2048-byte buffer but for its NUL: 2047 bytes, the
     * last one the newline, still one line. */
    CHECK_INT_EQ(2047, len);
    CHECK_INT_EQ('\n', out[len - 1]);
    CHECK(strchr(out, '\n') == out + len - 1);
    CHECK_INT_EQ('x', out[len - 2]);
}

typedef struct writer {
    int id;
} writer;

#define THREADS          4
#define LINES_PER_THREAD 100

static void *write_lines(void *arg)
{
    const writer *self = arg;
    for (int i = 0; i < LINES_PER_THREAD; i++)
        lk_log_info("thread %d line %03d %s", self->id, i, "abcdefghijklmnopqrstuvwxyz");
    return NULL;
}

static void check_thread_lines(const char *out)
{
    int next_line[THREADS] = {0};
    char prefix[64];
    int prefix_len = snprintf(prefix, sizeof(prefix), " test_log[%d] INFO thread ", (int)getpid());

    const char *line = out;
    int lines = 0;
    while (*line != '\0') {
        const char *newline = strchr(line, '\n');
        CHECK(newline != NULL);
        CHECK_INT_EQ(24 + prefix_len + 37, newline - line);
        CHECK(strncmp(line + 24, prefix, (size_t)prefix_len) == 0);

        /* Each thread's lines arrive whole and in its own order. */
        int id = -1, number = -1;
        char letters[32];
        CHECK_INT_EQ(3, sscanf(line + 24 + prefix_len, "%d line %d %31s", &id, &number, letters));
        CHECK_INT_RANGE(0, THREADS - 1, id);
        CHECK_INT_EQ(next_line[id], number);
        CHECK_STR_EQ("abcdefghijklmnopqrstuvwxyz", letters);
        next_line[id]++;
        lines++;
        line = newline + 1;
    }
    CHECK_INT_EQ(THREADS * LINES_PER_THREAD, lines);
}

static void test_threads_write_whole_lines(void)
{
    init_with_level(NULL);
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    /* About 35 kB in all: less than a pipe holds, so no reader is needed
     * while the threads write. */
    pthread_t threads[THREADS];
    writer writers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        writers[i].id = i;
        pthread_create(&threads[i], NULL, write_lines, &writers[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);

    static char out[65536];
    capture_end(&cap, out, sizeof(out));
    check_thread_lines(out);
}

int main(void)
{
    static const check_case cases[] = {
        {"a line has time, component, pid, level and message", test_line_format},
        {"each level has its name", test_level_names},
        {"messages below the threshold are not written", test_filtering},
        {"LIKES_LOG_LEVEL sets the threshold, info by default", test_threshold_from_environment},
        {"lk_log_enabled answers for each level", test_enabled_above_threshold},
        {"a long message is cut to one line of 2047 bytes", test_long_message_truncated},
        {"threads write whole lines", test_threads_write_whole_lines},
    };
    return CHECK_RUN(cases);
}
