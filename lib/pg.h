/*
 * A PostgreSQL connection that reconnects by itself.
 * A handle is used by one thread at a time.
 */
#ifndef LK_PG_H
#define LK_PG_H

#include <libpq-fe.h>
#include <stddef.h>

typedef struct lk_pg lk_pg;

/* Creates a handle for the libpq connection string `dsn`; nothing is
 * connected until lk_pg_get(). Returns NULL when out of memory. */
lk_pg *lk_pg_new(const char *dsn);

void lk_pg_free(lk_pg *pg);

/* Returns the live connection, connecting first when needed (and setting
 * statement_timeout to `statement_timeout_ms` if positive), or NULL when
 * PostgreSQL cannot be reached. A change between reachable and unreachable
 * is logged once. The connection stays owned by `pg`. */
PGconn *lk_pg_get(lk_pg *pg);

/* Sets the statement timeout applied to each new connection. */
void lk_pg_set_statement_timeout(lk_pg *pg, int statement_timeout_ms);

/* Call after a failed command: when the connection itself is gone, drops
 * it so that the next lk_pg_get() reconnects, and returns 1; returns 0 when
 * the connection is still good (the failure was the statement's). */
int lk_pg_check_broken(lk_pg *pg);

/* Runs a statement that returns no rows, with text parameters. Returns 0,
 * or -1 with the server's message in `err`. */
int lk_pg_exec(lk_pg *pg, const char *sql, int nparams, const char *const *params, char *err,
               size_t errlen);

#endif
