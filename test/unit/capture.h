/*
 * Capturing what a test's code writes to stderr (lk_log's lines), to check
 * them exactly.
 */
#ifndef LK_TEST_CAPTURE_H
#define LK_TEST_CAPTURE_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct capture {
    int saved_stderr;
    int read_end;
} capture;

/* Sends stderr into a pipe until capture_end(). Returns 0, or -1. */
static inline int capture_start(capture *cap)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stderr);
    cap->saved_stderr = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    cap->read_end = fds[0];
    return 0;
}

/* Restores stderr and returns what was written meanwhile, NUL-terminated
 * in `out` (at most outlen - 1 bytes kept, the rest read and dropped).
 * Returns the length kept. */
static inline size_t capture_end(capture *cap, char *out, size_t outlen)
{
    fflush(stderr);
    dup2(cap->saved_stderr, STDERR_FILENO);
    close(cap->saved_stderr);

    size_t used = 0;
    for (;;) {
        char chunk[4096];
        ssize_t got = read(cap->read_end, chunk, sizeof(chunk));
        if (got <= 0)
            break;
        size_t keep = (size_t)got < outlen - 1 - used ? (size_t)got : outlen - 1 - used;
        memcpy(out + used, chunk, keep);
        used += keep;
    }
    out[used] = '\0';
    close(cap->read_end);
    return used;
}

/* Writes the lines of `log` without their time stamp (24 characters and a
 * space), so that they compare exactly. */
static inline void capture_strip_times(const char *log, char *out, size_t outlen)
{
    size_t used = 0;
    while (*log != '\0' && used + 1 < outlen) {
        const char *newline = strchr(log, '\n');
        size_t len = newline != NULL ? (size_t)(newline - log + 1) : strlen(log);
        size_t skip = len > 25 ? 25 : len;
        size_t keep = len - skip < outlen - 1 - used ? len - skip : outlen - 1 - used;
        memcpy(out + used, log + skip, keep);
        used += keep;
        log += len;
    }
    out[used] = '\0';
}

#endif
