#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "backoff.h"

#define TERMINAL_INTERVAL_MS 100
#define PLAIN_INTERVAL_MS    5000

void progress_start(progress *p)
{
    p->on_terminal = isatty(STDERR_FILENO);
    p->line_open = 0;
    p->interval_ms = p->on_terminal ? TERMINAL_INTERVAL_MS : PLAIN_INTERVAL_MS;
    /* The first line waits one interval: an operation that ends sooner
     * shows only its final line. */
    p->next_ms = lk_monotonic_ms() + p->interval_ms;
}

static void show(progress *p, int final, const char *fmt, va_list args)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, args);

    /* \033[K erases what a longer previous line left to the right. */
    if (p->on_terminal)
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    else
        fprintf(stderr, "%s\n", line);
    fflush(stderr);
    p->line_open = p->on_terminal && !final;
}

void progress_update(progress *p, const char *fmt, ...)
{
    int64_t now = lk_monotonic_ms();
    if (now < p->next_ms)
        return;
    p->next_ms = now + p->interval_ms;

    va_list args;
    va_start(args, fmt);
    show(p, 0, fmt, args);
    va_end(args);
}

void progress_clear(progress *p)
{
    if (!p->line_open)
        return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->line_open = 0;
}

void progress_done(progress *p, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    show(p, 1, fmt, args);
    va_end(args);
}
