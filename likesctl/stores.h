/*
 * Connections of likesctl to PostgreSQL and Redis. A command runs once and
 * cannot wait for a store to come back, so unlike lib/pg.h and lib/redis.h
 * these never retry: they connect, or say plainly which store at which
 * address could not be reached, so that the command can exit with 2.
 */
#ifndef LIKESCTL_STORES_H
#define LIKESCTL_STORES_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "config.h"

/* Connects to LIKES_PG_DSN. Returns the connection, which the caller
 * closes with PQfinish(), or NULL after printing on stderr, prefixed with
 * `who` ("likesctl verify"), where PostgreSQL was sought and why it did
 * not answer. */
PGconn *stores_pg_connect(const lk_config *cfg, const char *who);

/* Runs one statement with text parameters. Returns the result, which the
 * caller frees with PQclear(), when its status is `expected`; otherwise
 * prints "<who>: <what> failed: <server message>" on stderr and returns
 * NULL. */
PGresult *stores_pg_run(PGconn *conn, const char *who, const char *what, const char *sql,
                        int nparams, const char *const *params, ExecStatusType expected);

/* Connects to LIKES_REDIS_HOST:LIKES_REDIS_PORT and checks with PING that
 * Redis serves commands (not, say, still loading its data). Returns the
 * context, which the caller frees with redisFree(), or NULL after printing
 * on stderr why not. Commands time out after 10 s. */
redisContext *stores_redis_connect(const lk_config *cfg, const char *who);

/* Prints on stderr why a Redis command got no usable reply: the
 * connection's error, or the error reply itself. */
void stores_redis_failed(const lk_config *cfg, const char *who, const redisContext *context,
                         const redisReply *reply);

#endif
