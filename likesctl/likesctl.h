/*
 * The commands of likesctl, one file each. A command gets the
 * configuration and its own arguments (after its name), prints what it does
 * and returns the process's exit status: 0 done, 1 done but something is
 * wrong (differences found), 2 could not run.
 */
#ifndef LIKESCTL_LIKESCTL_H
#define LIKESCTL_LIKESCTL_H

#include "config.h"

/* rebuild.c: restores Redis from PostgreSQL and the deltas topic. */
int likesctl_rebuild_redis(const lk_config *cfg, int argc, char **argv);

/* verify.c: compares the counts of every post in Redis and PostgreSQL. */
int likesctl_verify(const lk_config *cfg, int argc, char **argv);

/* lag.c: the consumer groups' lag per partition. */
int likesctl_lag(const lk_config *cfg, int argc, char **argv);

/* replay.c: rebuilds PostgreSQL's likes from the topic `likes`. */
int likesctl_replay(const lk_config *cfg, int argc, char **argv);

#endif
