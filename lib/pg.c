#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"

struct lk_pg {
    char *dsn;
    PGconn *conn;
    int statement_timeout_ms;
    int reachable; /* last known state, for logging changes only */

    /* After a failed connect, the next waits for the backoff: a server that
     * does not answer would otherwise cost every caller the full connect
     * timeout. A connection lost while in use is retried at once. */
    lk_backoff reconnect;
    int64_t next_attempt_ms;
};

lk_pg *lk_pg_new(const char *dsn)
{
    lk_pg *pg = calloc(1, sizeof(*pg));
    if (pg == NULL)
        return NULL;

    pg->dsn = strdup(dsn);
    if (pg->dsn == NULL) {
        free(pg);
        return NULL;
    }
    pg->reachable = 1;
    lk_backoff_init(&pg->reconnect, 50, 2000);
    return pg;
}

void lk_pg_free(lk_pg *pg)
{
    if (pg == NULL)
        return;
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    free(pg->dsn);
    free(pg);
}

void lk_pg_set_statement_timeout(lk_pg *pg, int statement_timeout_ms)
{
    pg->statement_timeout_ms = statement_timeout_ms;
}

static void note_unreachable(lk_pg *pg, const char *why)
{
    if (pg->reachable) {
        /* libpq messages end with a newline; keep the log to one line. */
        char reason[256];
        snprintf(reason, sizeof(reason), "%s", why);
        reason[strcspn(reason, "\n")] = '\0';
        lk_log_warn("postgres unreachable (%s), retrying until it answers", reason);
    }
    pg->reachable = 0;
}

/* Server notices go through our log rather than straight to stderr. */
static void log_notice(void *unused, const char *message)
{
    (void)unused;
    char line[512];
    snprintf(line, sizeof(line), "%s", message);
    line[strcspn(line, "\n")] = '\0';
    lk_log_info("postgres says: %s", line);
}

static int apply_session_settings(lk_pg *pg)
{
    if (pg->statement_timeout_ms <= 0)
        return 0;

    char sql[64];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d", pg->statement_timeout_ms);
    PGresult *result = PQexec(pg->conn, sql);
    int ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    return ok ? 0 : -1;
}

PGconn *lk_pg_get(lk_pg *pg)
{
    if (pg->conn != NULL)
        return pg->conn;
    if (lk_monotonic_ms() < pg->next_attempt_ms)
        return NULL;

    pg->conn = PQconnectdb(pg->dsn);
    PQsetNoticeProcessor(pg->conn, log_notice, NULL);
    if (PQstatus(pg->conn) != CONNECTION_OK || apply_session_settings(pg) != 0) {
        pg->next_attempt_ms = lk_monotonic_ms() + lk_backoff_next(&pg->reconnect);
        note_unreachable(pg, PQerrorMessage(pg->conn));
        PQfinish(pg->conn);
        pg->conn = NULL;
        return NULL;
    }

    if (!pg->reachable)
        lk_log_info("postgres reachable again");
    pg->reachable = 1;
    lk_backoff_reset(&pg->reconnect);
    return pg->conn;
}

int lk_pg_check_broken(lk_pg *pg)
{
    if (pg->conn == NULL)
        return 1;
    if (PQstatus(pg->conn) == CONNECTION_OK)
        return 0;

    note_unreachable(pg, PQerrorMessage(pg->conn));
    PQfinish(pg->conn);
    pg->conn = NULL;
    return 1;
}

int lk_pg_exec(lk_pg *pg, const char *sql, int nparams, const char *const *params, char *err,
               size_t errlen)
{
    PGconn *conn = lk_pg_get(pg);
    if (conn == NULL) {
        snprintf(err, errlen, "postgres unreachable");
        return -1;
    }

    PGresult *result = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(result));
        err[strcspn(err, "\n")] = '\0';
        lk_pg_check_broken(pg);
        rc = -1;
    }
    PQclear(result);
    return rc;
}
