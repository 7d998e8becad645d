/*
 * The aggregator: a member of a consumer group on the likes topic that
 * collapses events into short windows, applies each window to the counts in
 * Redis, and hands the window's changes to the persister as deltas on
 * their own topic, in a Kafka transaction that also commits the consumed
 * offsets. Redis skips what it already holds, so a window read twice
 * (after a crash or an aborted transaction) changes nothing twice.
 */
#ifndef AGGREGATOR_AGGREGATOR_H
#define AGGREGATOR_AGGREGATOR_H

#include <signal.h>

#include "config.h"

/* Runs until `*stop` is set, then finishes the open window, leaves the
 * group and returns 0; returns -1 when it cannot start or hits an error it
 * cannot recover from (fenced by a newer instance, for one). */
int aggregator_run(const lk_config *cfg, volatile sig_atomic_t *stop);

#endif
