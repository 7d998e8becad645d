/*
 * Statements on the one PostgreSQL connection of ingest.
 */
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void copy_error(PGconn *conn, const PGresult *result, char *err, size_t errlen)
{
    const char *message = PQresultErrorMessage(result);
    if (message == NULL || message[0] == '\0')
        message = PQerrorMessage(conn);

    snprintf(err, errlen, "%s", message);
    err[strcspn(err, "\n")] = '\0';
}

PGresult *ingest_db_run(lk_pg *pg, const char *sql, int nparams, const char *const *params,
                        int retry, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        PGconn *conn = lk_pg_get(pg);
        if (conn == NULL) {
            snprintf(err, errlen, "postgres unreachable");
            return NULL;
        }

        PGresult *result = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType status = PQresultStatus(result);
        if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
            return result;

        copy_error(conn, result, err, errlen);
        PQclear(result);
        if (!lk_pg_check_broken(pg) || !retry || attempt > 0)
            return NULL;
    }
}

void ingest_db_id_array(const int64_t *ids, size_t count, char *out, size_t outlen)
{
    size_t used = (size_t)snprintf(out, outlen, "{");
    for (size_t i = 0; i < count && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%" PRId64, i > 0 ? "," : "", ids[i]);
    if (used < outlen)
        snprintf(out + used, outlen - used, "}");
}
