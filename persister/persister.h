/*
 * The persister: a member of a consumer group on the deltas topic that
 * writes each batch of deltas to PostgreSQL in the same transaction as the
 * offsets it consumed. The offsets live in a table and are what the
 * consumer seeks to on every assignment; Kafka's own committed offsets are
 * never used.
 */
#ifndef PERSISTER_PERSISTER_H
#define PERSISTER_PERSISTER_H

#include <signal.h>

#include "config.h"

/* Runs until `*stop` is set, then commits the open batch, leaves the group
 * and returns 0; returns -1 when it cannot start or hits an error it cannot
 * recover from. */
int persister_run(const lk_config *cfg, volatile sig_atomic_t *stop);

#endif
