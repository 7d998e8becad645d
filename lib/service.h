/*
 * What the main() of a long-running consumer does around its loop: logging
 * named after the component, configuration from the environment, SIGTERM
 * and SIGINT turned into a stop request, SIGPIPE ignored.
 */
#ifndef LK_SERVICE_H
#define LK_SERVICE_H

#include <signal.h>

#include "config.h"

typedef int (*lk_service_run_fn)(const lk_config *cfg, volatile sig_atomic_t *stop);

/* Runs `run` until it returns; `*stop` is set on SIGTERM or SIGINT. Returns
 * the exit status: 0 when `run` returned 0, 1 when it failed, 2 when the
 * configuration was refused. Call from main() only. */
int lk_service_main(const char *component, lk_service_run_fn run);

#endif
