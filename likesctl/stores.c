#include "stores.h"

#include <stdio.h>
#include <string.h>

/* libpq messages may span lines, indented with tabs; one line reads better
 * after a prefix. */
static void print_one_line(const char *prefix, const char *message)
{
    char line[512];
    size_t len = 0;
    for (const char *c = message; *c != '\0' && len + 1 < sizeof(line); c++) {
        int blank = *c == '\n' || *c == '\t' || *c == ' ';
        if (blank && (len == 0 || line[len - 1] == ' '))
            continue;
        line[len++] = blank ? ' ' : *c;
    }
    while (len > 0 && line[len - 1] == ' ')
        len--;
    line[len] = '\0';
    fprintf(stderr, "%s%s\n", prefix, line);
}

PGconn *stores_pg_connect(const lk_config *cfg, const char *who)
{
    PGconn *conn = PQconnectdb(cfg->pg_dsn);
    if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
        return conn;

    char prefix[256];
    if (conn == NULL) {
        fprintf(stderr, "%s: cannot reach PostgreSQL: out of memory\n", who);
        return NULL;
    }
    /* The host and port, never the whole DSN: it may hold a password. */
    const char *host = PQhost(conn);
    const char *port = PQport(conn);
    snprintf(prefix, sizeof(prefix), "%s: cannot reach PostgreSQL at %s:%s: ", who,
             host != NULL && host[0] != '\0' ? host : "(default host)",
             port != NULL && port[0] != '\0' ? port : "(default port)");
    print_one_line(prefix, PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
}

PGresult *stores_pg_run(PGconn *conn, const char *who, const char *what, const char *sql,
                        int nparams, const char *const *params, ExecStatusType expected)
{
    PGresult *result = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(result) == expected)
        return result;

    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s: %s failed: ", who, what);
    print_one_line(prefix, result != NULL ? PQresultErrorMessage(result) : PQerrorMessage(conn));
    PQclear(result);
    return NULL;
}

redisContext *stores_redis_connect(const lk_config *cfg, const char *who)
{
    struct timeval timeout = {.tv_sec = 10, .tv_usec = 0};
    redisContext *context = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, timeout);
    if (context == NULL || context->err != 0) {
        fprintf(stderr, "%s: cannot reach Redis at %s:%d: %s\n", who, cfg->redis_host,
                cfg->redis_port, context != NULL ? context->errstr : "out of memory");
        redisFree(context);
        return NULL;
    }
    redisSetTimeout(context, timeout);

    redisReply *reply = redisCommand(context, "PING");
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        stores_redis_failed(cfg, who, context, reply);
        freeReplyObject(reply);
        redisFree(context);
        return NULL;
    }
    freeReplyObject(reply);
    return context;
}

void stores_redis_failed(const lk_config *cfg, const char *who, const redisContext *context,
                         const redisReply *reply)
{
    const char *why = "an unexpected reply";
    if (reply == NULL)
        why = context->errstr[0] != '\0' ? context->errstr : "connection lost";
    else if (reply->type == REDIS_REPLY_ERROR)
        why = reply->str;
    fprintf(stderr, "%s: Redis at %s:%d failed: %s\n", who, cfg->redis_host, cfg->redis_port, why);
}
