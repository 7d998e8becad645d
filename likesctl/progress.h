/*
 * Progress of a long likesctl operation, on stderr so that stdout keeps
 * only results. On a terminal it is one line rewritten in place with \r,
 * at most ten times a second; anywhere else (a log file, a pipe) it is a
 * plain line every five seconds, so that a log shows the pace without
 * drowning in it. Either way the last state is printed as a final line.
 *
 * A progress is used by one thread at a time and owns nothing.
 */
#ifndef LIKESCTL_PROGRESS_H
#define LIKESCTL_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    int on_terminal;
    int line_open; /* a line is shown without its newline */
    int64_t interval_ms;
    int64_t next_ms;
} progress;

/* Starts a progress on stderr, deciding with isatty() how to show it. */
void progress_start(progress *p);

/* Shows the formatted state if the last one was shown long enough ago;
 * cheap enough to call for every record (nothing is formatted otherwise). */
void progress_update(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Erases the in-place line, if any, so that other output starts on a clean
 * line; the next update draws it again. */
void progress_clear(progress *p);

/* Shows the final state as a complete line, whatever the time. */
void progress_done(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
