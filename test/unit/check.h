/*
 * A header-only harness for the unit tests, with no dependency.
 *
 * Each test is a void function; main() lists them in a table and hands it
 * to CHECK_RUN(), which runs them in order and prints exactly one line per
 * test on stdout:
 *
 *   ok - test_event.c: encode writes the exact text
 *   not ok - test_event.c: encode writes the exact text: len at test_event.c:42, expected 59, got
 * 58 ok - test_redis.c: get count after set # SKIP redis-server is not on PATH
 *
 * The first failed check ends its test (the macros return from the test
 * function), so a test that owns a resource releases it in a wrapper that
 * calls the checking part. The binary exits 1 when any test failed.
 */
#ifndef LK_CHECK_H
#define LK_CHECK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* Runs every test of `cases`, prints one line each, and returns the exit
 * status of the binary: 0 when all passed, 1 otherwise. */
static inline int check_run(const char *file, const check_case *cases, size_t count)
{
    int failures = 0;
    for (size_t i = 0; i < count; i++) {
        check_failed = 0;
        check_reason[0] = '\0';
        check_skip[0] = '\0';
        check_context[0] = '\0';

        cases[i].run();

        if (check_failed) {
            printf("not ok - %s: %s: %s\n", check_basename(file), cases[i].name, check_reason);
            failures++;
        } else if (check_skip[0] != '\0') {
            printf("ok - %s: %s # SKIP %s\n", check_basename(file), cases[i].name, check_skip);
        } else {
            printf("ok - %s: %s\n", check_basename(file), cases[i].name);
        }
        fflush(stdout);
    }
    return failures > 0 ? 1 : 0;
}

#define CHECK_RUN(cases) check_run(__FILE__, (cases), sizeof(cases) / sizeof((cases)[0]))

#endif
