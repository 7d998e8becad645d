/*
 * A header-only harness for the unit tests, with no dependency.
 *
 * Each test is a void function; main() lists them in a table and hands it
 * to CHECK_RUN(), which runs them in order and prints exactly one line per
 * test on stdout, such as:
 *
 *   ok - test_event.c: encode writes the exact text
 *   not ok - test_event.c: encode refuses a buffer too small: lk_event_encode(&ev, buf, 59)
 *     at test_event.c:86, expected -1, got 59                     (on one line)
 *   ok - test_redis.c: get count after set # SKIP redis-server is not on PATH
 *
 * The first failed check ends its test (the macros return from the test
 * function), so a test that owns a resource releases it in a wrapper that
 * calls the checking part.
 *
 * Each test runs in a child process of its own, so that a crash, a
 * sanitizer report or a leak is charged to the test that caused it and the
 * tests after it still run. The binary exits 1 when any test failed.
 */
#ifndef LK_CHECK_H
#define LK_CHECK_H

#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Seconds a test may take before its process is stopped. */
#define CHECK_TIMEOUT_S 120

typedef struct check_case {
    const char *name;
    void (*run)(void);
} check_case;

/* The state of the test that is running. */
static int check_failed;
static char check_reason[1024];
static char check_skip[256];
static char check_context[256];

static inline const char *check_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* Writes `text` quoted into `out`, with quotes and backslashes escaped
 * and control and non-ASCII bytes shown as \xNN, so that a failure stays
 * on one line and shows every byte. */
static inline void check_quote(const char *text, char *out, size_t outlen)
{
    if (text == NULL) {
        snprintf(out, outlen, "NULL");
        return;
    }

    size_t used = 0;
    out[used++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (used + 8 >= outlen) {
            used += (size_t)snprintf(out + used, outlen - used, "...");
            break;
        }
        if (*p == '"' || *p == '\\')
            used += (size_t)snprintf(out + used, outlen - used, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            used += (size_t)snprintf(out + used, outlen - used, "\\x%02x", *p);
        else
            out[used++] = (char)*p;
    }
    snprintf(out + used, outlen - used, "\"");
}

static inline void check_fail(const char *what, const char *file, int line, const char *expected,
                              const char *actual)
{
    if (check_failed)
        return;
    check_failed = 1;

    size_t used = 0;
    if (check_context[0] != '\0')
        used = (size_t)snprintf(check_reason, sizeof(check_reason), "%s: ", check_context);
    if (expected != NULL)
        snprintf(check_reason + used, sizeof(check_reason) - used,
                 "%s at %s:%d, expected %s, got %s", what, check_basename(file), line, expected,
                 actual);
    else
        snprintf(check_reason + used, sizeof(check_reason) - used, "%s at %s:%d", what,
                 check_basename(file), line);
}

static inline int check_int_eq(intmax_t expected, intmax_t actual, const char *what,
                               const char *file, int line)
{
    if (expected == actual)
        return 1;

    char shown_expected[32], shown_actual[32];
    snprintf(shown_expected, sizeof(shown_expected), "%jd", expected);
    snprintf(shown_actual, sizeof(shown_actual), "%jd", actual);
    check_fail(what, file, line, shown_expected, shown_actual);
    return 0;
}

static inline int check_int_range(intmax_t low, intmax_t high, intmax_t actual, const char *what,
                                  const char *file, int line)
{
    if (actual >= low && actual <= high)
        return 1;

    char shown_expected[64], shown_actual[32];
    snprintf(shown_expected, sizeof(shown_expected), "%jd..%jd", low, high);
    snprintf(shown_actual, sizeof(shown_actual), "%jd", actual);
    check_fail(what, file, line, shown_expected, shown_actual);
    return 0;
}

static inline int check_str_eq(const char *expected, const char *actual, const char *what,
                               const char *file, int line)
{
    if (expected != NULL && actual != NULL && strcmp(expected, actual) == 0)
        return 1;
    if (expected == NULL && actual == NULL)
        return 1;

    char shown_expected[400], shown_actual[400];
    check_quote(expected, shown_expected, sizeof(shown_expected));
    check_quote(actual, shown_actual, sizeof(shown_actual));
    check_fail(what, file, line, shown_expected, shown_actual);
    return 0;
}

/* Fails the test unless `cond` holds. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            check_fail("expected (" #cond ") to hold", __FILE__, __LINE__, NULL, NULL);            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Compares two integers of any integer type, shown in decimal. */
#define CHECK_INT_EQ(expected, actual)                                                             \
    do {                                                                                           \
        if (!check_int_eq((intmax_t)(expected), (intmax_t)(actual), #actual, __FILE__, __LINE__))  \
            return;                                                                                \
    } while (0)

/* Checks that an integer lies in [low, high], bounds included. */
#define CHECK_INT_RANGE(low, high, actual)                                                         \
    do {                                                                                           \
        if (!check_int_range((intmax_t)(low), (intmax_t)(high), (intmax_t)(actual), #actual,       \
                             __FILE__, __LINE__))                                                  \
            return;                                                                                \
    } while (0)

/* Compares two NUL-terminated strings; either may be NULL. */
#define CHECK_STR_EQ(expected, actual)                                                             \
    do {                                                                                           \
        if (!check_str_eq((expected), (actual), #actual, __FILE__, __LINE__))                      \
            return;                                                                                \
    } while (0)

/* Names what the next checks are about (an input of a table, say); the
 * text prefixes the reason of a failure, until the next CHECK_CONTEXT. */
#define CHECK_CONTEXT(...) snprintf(check_context, sizeof(check_context), __VA_ARGS__)

/* Ends the test as passed but skipped, for a missing outside program. */
#define CHECK_SKIP(...)                                                                            \
    do {                                                                                           \
        snprintf(check_skip, sizeof(check_skip), __VA_ARGS__);                                     \
        return;                                                                                    \
    } while (0)

/* Provided by the sanitizer runtime when there is one. */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

/* Sends sanitizer reports to a copy of stderr taken now, so that a report
 * stays visible while a test points stderr at a pipe to capture logs. */
static inline void check_keep_reports_visible(void)
{
    if (__sanitizer_set_report_fd != NULL)
        __sanitizer_set_report_fd((void *)(intptr_t)dup(STDERR_FILENO));
}

/* Runs one test in this process and writes its verdict to `fd`: "o" for
 * passed, "s" and the reason for skipped, "f" and the reason for failed. */
static inline void check_run_here(const check_case *test, int fd)
{
    check_failed = 0;
    check_reason[0] = '\0';
    check_skip[0] = '\0';
    check_context[0] = '\0';

    test->run();

    char verdict[sizeof(check_reason) + 1];
    if (check_failed)
        snprintf(verdict, sizeof(verdict), "f%s", check_reason);
    else if (check_skip[0] != '\0')
        snprintf(verdict, sizeof(verdict), "s%s", check_skip);
    else
        snprintf(verdict, sizeof(verdict), "o");

    size_t len = strlen(verdict);
    ssize_t written = write(fd, verdict, len);
    (void)written;
}

/* Reads the verdict of a child until it closes the pipe or exits. */
static inline void check_read_verdict(int fd, char *verdict, size_t verdict_len)
{
    size_t used = 0;
    ssize_t got;
    while (used < verdict_len - 1 && (got = read(fd, verdict + used, verdict_len - 1 - used)) > 0)
        used += (size_t)got;
    verdict[used] = '\0';
}

/* Prints the line of one test from its verdict and how its process ended;
 * returns 1 when the test failed. */
static inline int check_report(const char *file, const char *name, const char *verdict, int status)
{
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char ending[128];
    if (WIFSIGNALED(status))
        snprintf(ending, sizeof(ending), "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(ending, sizeof(ending), "exit status %d, a sanitizer report is on stderr",
                 WEXITSTATUS(status));

    if (verdict[0] == 'f') {
        printf("not ok - %s: %s: %s\n", file, name, verdict + 1);
    } else if (verdict[0] == '\0') {
        printf("not ok - %s: %s: ended before its verdict: %s\n", file, name, ending);
    } else if (!clean) {
        printf("not ok - %s: %s: passed its checks, then failed at exit: %s\n", file, name, ending);
    } else if (verdict[0] == 's') {
        printf("ok - %s: %s # SKIP %s\n", file, name, verdict + 1);
        return 0;
    } else {
        printf("ok - %s: %s\n", file, name);
        return 0;
    }
    return 1;
}

/* Runs every test of `cases`, each in a child process, prints one line
 * each, and returns the exit status of the binary: 0 when all passed, 1
 * otherwise. */
static inline int check_run(const char *path, const check_case *cases, size_t count)
{
    const char *file = check_basename(path);
    int failures = 0;

    for (size_t i = 0; i < count; i++) {
        int fds[2];
        fflush(stdout);
        fflush(stderr);
        if (pipe(fds) != 0) {
            printf("not ok - %s: %s: pipe failed\n", file, cases[i].name);
            failures++;
            continue;
        }

        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            alarm(CHECK_TIMEOUT_S);
            check_keep_reports_visible();
            check_run_here(&cases[i], fds[1]);
            close(fds[1]);
            /* exit, not _exit: the leak check runs at exit. */
            exit(0);
        }
        close(fds[1]);

        char verdict[sizeof(check_reason) + 2] = "";
        int status = 0;
        if (pid > 0) {
            check_read_verdict(fds[0], verdict, sizeof(verdict));
            waitpid(pid, &status, 0);
        } else {
            snprintf(verdict, sizeof(verdict), "ffork failed");
        }
        close(fds[0]);

        failures += check_report(file, cases[i].name, verdict, status);
        fflush(stdout);
    }
    return failures > 0 ? 1 : 0;
}

#define CHECK_RUN(cases) check_run(__FILE__, (cases), sizeof(cases) / sizeof((cases)[0]))

#endif
