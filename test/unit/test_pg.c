/*
 * The PostgreSQL handle: a port where nothing listens, a port that never
 * answers, and a real server started here from a throwaway cluster on a
 * free port of 127.0.0.1, to read the server's own error text, the
 * statement timeout, and the reconnect after a restart. The tests that
 * need the server are skipped when initdb or postgres is not on PATH.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "check.h"
#include "ports.h"
#include "log.h"
#include "pg.h"

/* ---- stderr capture, to count the state changes logged ---- */

/* The first bytes of a line of lk_log: its time stamp with every digit
 * shown as d, a space, and the component with the pid. */
static void line_start(const char *line, char *out, size_t outlen)
{
    char component[64];
    int component_len = snprintf(component, sizeof(component), " test_pg[%d] ", (int)getpid());
    size_t len = 24 + (size_t)component_len;

    size_t i;
    for (i = 0; i < len && i + 1 < outlen && line[i] != '\0' && line[i] != '\n'; i++)
        out[i] = i < 24 && line[i] >= '0' && line[i] <= '9' ? 'd' : line[i];
    out[i] = '\0';
}

/* Keeps the lines of lk_log found in `raw`, without their time stamp (24
 * characters and a space). Lines libpq wrote by itself are left out: a
 * test of their own checks them. */
static void log_lines(const char *raw, char *out, size_t outlen)
{
    char expected_start[96];
    snprintf(expected_start, sizeof(expected_start), "dddd-dd-ddTdd:dd:dd.dddZ test_pg[%d] ",
             (int)getpid());

    size_t kept = 0;
    for (const char *line = raw; *line != '\0' && kept + 1 < outlen;) {
        const char *newline = strchr(line, '\n');
        size_t len = newline != NULL ? (size_t)(newline - line + 1) : strlen(line);

        char start[96];
        line_start(line, start, sizeof(start));
        if (strcmp(start, expected_start) == 0) {
            size_t keep = len - 25 < outlen - 1 - kept ? len - 25 : outlen - 1 - kept;
            memcpy(out + kept, line + 25, keep);
            kept += keep;
        }
        line += len;
    }
    out[kept] = '\0';
}

static void capture_end_lines(capture *cap, char *out, size_t outlen)
{
    char raw[8192];
    capture_end(cap, raw, sizeof(raw));
    log_lines(raw, out, outlen);
}

static long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

/* ---- a throwaway cluster ---- */

/* Made once by main() and shared by the tests, which start and stop their
 * own server on it one after the other. */
static char cluster_dir[64];
static char cluster_data[128];
static char cluster_missing[128]; /* why there is no cluster, if so */

typedef struct server {
    pid_t pid;
    int port;
    char dsn[256];
} server;

/* PostgreSQL refuses to run as root: as root, run it as user postgres. */
static int server_user(uid_t *uid, gid_t *gid)
{
    *uid = getuid();
    *gid = getgid();
    if (*uid != 0)
        return 0;

    struct passwd *user = getpwnam("postgres");
    if (user == NULL)
        return -1;
    *uid = user->pw_uid;
    *gid = user->pw_gid;
    return 0;
}

/* In a child: becomes the server user, silences output, dies with the
 * test, and runs `argv`. Never returns. */
static void exec_as_server_user(char *const argv[], pid_t test_pid)
{
    uid_t uid;
    gid_t gid;
    if (server_user(&uid, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        _exit(126);

    /* Set after setuid, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != test_pid)
        _exit(127);

    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execvp(argv[0], argv);
    _exit(127);
}

static int run_and_wait(char *const argv[])
{
    pid_t test_pid = getpid();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        exec_as_server_user(argv, test_pid);

    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void cluster_create(void)
{
    uid_t uid;
    gid_t gid;
    if (!on_path("initdb") || !on_path("postgres")) {
        snprintf(cluster_missing, sizeof(cluster_missing), "initdb or postgres is not on PATH");
        return;
    }
    if (server_user(&uid, &gid) != 0) {
        snprintf(cluster_missing, sizeof(cluster_missing),
                 "running as root without a postgres user");
        return;
    }

    snprintf(cluster_dir, sizeof(cluster_dir), "/tmp/lk-test-pg-XXXXXX");
    if (mkdtemp(cluster_dir) == NULL || chown(cluster_dir, uid, gid) != 0) {
        snprintf(cluster_missing, sizeof(cluster_missing), "cannot make a directory in /tmp");
        return;
    }
    snprintf(cluster_data, sizeof(cluster_data), "%s/data", cluster_dir);

    char *const argv[] = {"initdb",    "-D",         cluster_data, "-A",
                          "trust",     "-U",         "likes",      "-E",
                          "UTF8",      "--locale=C", "--no-sync",  "--no-instructions",
                          (char *)NULL};
    if (run_and_wait(argv) != 0)
        snprintf(cluster_missing, sizeof(cluster_missing), "initdb failed");
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void cluster_remove(void)
{
    if (cluster_dir[0] != '\0')
        nftw(cluster_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts postgres on srv->port of 127.0.0.1 and waits up to 10 s until it
 * accepts queries. */
static int server_start(server *srv)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", srv->port);
    snprintf(srv->dsn, sizeof(srv->dsn),
             "host=127.0.0.1 port=%d dbname=postgres user=likes connect_timeout=2", srv->port);

    char *const argv[] = {"postgres",
                          "-D",
                          cluster_data,
                          "-p",
                          port,
                          "-c",
                          "listen_addresses=127.0.0.1",
                          "-c",
                          "unix_socket_directories=",
                          "-c",
                          "fsync=off",
                          (char *)NULL};
    pid_t test_pid = getpid();
    fflush(stdout);
    srv->pid = fork();
    if (srv->pid < 0)
        return -1;
    if (srv->pid == 0)
        exec_as_server_user(argv, test_pid);

    for (int waited = 0; waited < 10000; waited += 50) {
        if (PQping(srv->dsn) == PQPING_OK)
            return 0;
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
            srv->pid = 0;
            return -1;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
        nanosleep(&pause, NULL);
    }
    return -1;
}

/* Stops the server with `signal`: SIGINT for a fast shutdown, SIGQUIT for
 * an immediate one that drops every connection as a crash would. */
static void server_stop(server *srv, int signal)
{
    if (srv->pid > 0) {
        kill(srv->pid, signal);
        waitpid(srv->pid, NULL, 0);
    }
    srv->pid = 0;
}

/* ---- without a server ---- */

static void check_dead_port(lk_pg *pg, int port)
{
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    long long start = now_ms();
    PGconn *first = lk_pg_get(pg);
    PGconn *second = lk_pg_get(pg);
    long long took = now_ms() - start;

    char lines[4096];
    capture_end_lines(&cap, lines, sizeof(lines));

    CHECK(first == NULL);
    CHECK(second == NULL);
    /* Refused at once, not after the 2 s connect_timeout. */
    CHECK_INT_RANGE(0, 1900, took);

    char expected[512];
    snprintf(expected, sizeof(expected),
             "test_pg[%d] WARN postgres unreachable (connection to server at \"127.0.0.1\", port "
             "%d failed: Connection refused), retrying until it answers\n",
             (int)getpid(), port);
    CHECK_STR_EQ(expected, lines);
}

static void test_dead_port(void)
{
    int port = free_port();
    CHECK(port > 0);
    char dsn[256];
    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=likes user=likes connect_timeout=2",
             port);
    lk_pg *pg = lk_pg_new(dsn);
    CHECK(pg != NULL);

    check_dead_port(pg, port);
    lk_pg_free(pg);
}

static void check_silent_port(lk_pg *pg, int port)
{
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    long long start = now_ms();
    PGconn *conn = lk_pg_get(pg);
    long long took = now_ms() - start;
    char lines[4096];
    capture_end_lines(&cap, lines, sizeof(lines));

    CHECK(conn == NULL);
    /* connect_timeout=2 gives up within seconds, not the minutes TCP
     * would; libpq counts it in whole seconds from a clock tick, so it may
     * end a little after 1 s. The bound is loose: a slow day must not fail
     * it, only a wait with no end. */
    CHECK_INT_RANGE(900, 10000, took);
    char expected[512];
    snprintf(expected, sizeof(expected),
             "test_pg[%d] WARN postgres unreachable (connection to server at \"127.0.0.1\", port "
             "%d failed: timeout expired), retrying until it answers\n",
             (int)getpid(), port);
    CHECK_STR_EQ(expected, lines);
}

static void test_silent_port(void)
{
    /* The kernel completes the handshake on a listening socket nobody
     * accepts from; the server then never says a word. */
    int port = 0;
    int listener = silent_listener(&port);
    CHECK(listener >= 0);

    char dsn[256];
    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=likes user=likes connect_timeout=2",
             port);
    lk_pg *pg = lk_pg_new(dsn);

    check_silent_port(pg, port);
    lk_pg_free(pg);
    close(listener);
}

static void check_exec_unreachable(lk_pg *pg)
{
    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    char err[256] = "";
    const char *params[] = {"17"};
    int rc = lk_pg_exec(pg, "INSERT INTO likes (user_id) VALUES ($1)", 1, params, err, sizeof(err));
    int broken = lk_pg_check_broken(pg);
    char lines[4096];
    capture_end_lines(&cap, lines, sizeof(lines));

    CHECK_INT_EQ(-1, rc);
    CHECK_STR_EQ("postgres unreachable", err);
    /* Without a connection there is nothing good to keep. */
    CHECK_INT_EQ(1, broken);
}

static void test_exec_unreachable(void)
{
    char dsn[256];
    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=likes user=likes connect_timeout=2",
             free_port());
    lk_pg *pg = lk_pg_new(dsn);
    CHECK(pg != NULL);

    check_exec_unreachable(pg);
    lk_pg_free(pg);
}

static void test_free_null(void)
{
    lk_pg_free(NULL);
}

/* ---- against a real server ---- */

static int exec_ok(lk_pg *pg, const char *sql)
{
    char err[256];
    return lk_pg_exec(pg, sql, 0, NULL, err, sizeof(err));
}

/* Reads one value of a one-row query on the handle's connection. */
static void query_value(lk_pg *pg, const char *sql, char *out, size_t outlen)
{
    PGconn *conn = lk_pg_get(pg);
    PGresult *result = conn != NULL ? PQexec(conn, sql) : NULL;
    if (result != NULL && PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
        snprintf(out, outlen, "%s", PQgetvalue(result, 0, 0));
    else
        snprintf(out, outlen, "(no value)");
    PQclear(result);
}

static void check_exec_against_server(lk_pg *pg)
{
    char err[256] = "";

    CHECK_INT_EQ(0, exec_ok(pg, "CREATE TABLE counts (post_id bigint PRIMARY KEY, n bigint)"));

    const char *params[] = {"3", "17"};
    CHECK_INT_EQ(0,
                 lk_pg_exec(pg, "INSERT INTO counts VALUES ($1, $2)", 2, params, err, sizeof(err)));
    CHECK_STR_EQ("", err);

    char value[64];
    query_value(pg, "SELECT n FROM counts WHERE post_id = 3", value, sizeof(value));
    CHECK_STR_EQ("17", value);

    /* The server's message, its first line only: the LINE and caret lines
     * libpq adds would break the log line in three. */
    CHECK_INT_EQ(-1,
                 lk_pg_exec(pg, "INSERT INTO missing_table VALUES (1)", 0, NULL, err, sizeof(err)));
    CHECK_STR_EQ("ERROR:  relation \"missing_table\" does not exist", err);

    CHECK_INT_EQ(-1,
                 lk_pg_exec(pg, "INSERT INTO counts VALUES ($1, $2)", 2, params, err, sizeof(err)));
    CHECK_STR_EQ("ERROR:  duplicate key value violates unique constraint \"counts_pkey\"", err);

    const char *bad[] = {"three", "17"};
    CHECK_INT_EQ(-1,
                 lk_pg_exec(pg, "INSERT INTO counts VALUES ($1, $2)", 2, bad, err, sizeof(err)));
    CHECK_STR_EQ("ERROR:  invalid input syntax for type bigint: \"three\"", err);

    /* A statement's failure leaves the connection good. */
    PGconn *before = lk_pg_get(pg);
    CHECK_INT_EQ(0, lk_pg_check_broken(pg));
    CHECK(lk_pg_get(pg) == before);

    CHECK_INT_EQ(0, exec_ok(pg, "DROP TABLE counts"));
}

static void check_statement_timeout(lk_pg *pg)
{
    char err[256] = "";
    char value[64];

    query_value(pg, "SHOW statement_timeout", value, sizeof(value));
    CHECK_STR_EQ("150ms", value);

    long long start = now_ms();
    int rc = lk_pg_exec(pg, "SELECT pg_sleep(3)", 0, NULL, err, sizeof(err));
    long long took = now_ms() - start;

    CHECK_INT_EQ(-1, rc);
    CHECK_STR_EQ("ERROR:  canceling statement due to statement timeout", err);
    CHECK_INT_RANGE(100, 2000, took);
    CHECK_INT_EQ(0, lk_pg_check_broken(pg));
}

static void check_reconnects_after_restart(lk_pg *pg, server *srv)
{
    char err[256] = "";
    CHECK_INT_EQ(0, lk_pg_exec(pg, "SELECT 1", 0, NULL, err, sizeof(err)));

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));

    server_stop(srv, SIGQUIT);
    int on_dropped = lk_pg_exec(pg, "SELECT 1", 0, NULL, err, sizeof(err));
    char dropped_err[256];
    snprintf(dropped_err, sizeof(dropped_err), "%s", err);
    int while_down = lk_pg_exec(pg, "SELECT 1", 0, NULL, err, sizeof(err));
    char down_err[256];
    snprintf(down_err, sizeof(down_err), "%s", err);
    int restarted = server_start(srv);
    int after = restarted == 0 ? lk_pg_exec(pg, "SELECT 1", 0, NULL, err, sizeof(err)) : -2;

    char lines[4096];
    capture_end_lines(&cap, lines, sizeof(lines));

    CHECK_INT_EQ(-1, on_dropped);
    CHECK(dropped_err[0] != '\0');
    CHECK_INT_EQ(-1, while_down);
    CHECK_STR_EQ("postgres unreachable", down_err);
    CHECK_INT_EQ(0, restarted);
    CHECK_INT_EQ(0, after);

    /* One line when lost, one when back; the reason of the first is
     * libpq's, so only its start and end are fixed. */
    char lost_start[64], back[128];
    snprintf(lost_start, sizeof(lost_start), "test_pg[%d] WARN postgres unreachable (",
             (int)getpid());
    snprintf(back, sizeof(back),
             "), retrying until it answers\ntest_pg[%d] INFO postgres reachable again\n",
             (int)getpid());
    /* The server's farewell notice, if it sent one, comes first. */
    const char *lost = strstr(lines, " WARN postgres unreachable (");
    while (lost != NULL && lost > lines && lost[-1] != '\n')
        lost--;
    char lines_start[sizeof(lost_start)];
    snprintf(lines_start, sizeof(lines_start), "%.*s", (int)strlen(lost_start),
             lost != NULL ? lost : lines);
    CHECK_STR_EQ(lost_start, lines_start);
    CHECK_STR_EQ(back, strstr(lines, "), retrying"));
}

static void check_notices_logged(lk_pg *pg)
{
    CHECK(lk_pg_get(pg) != NULL);

    capture cap;
    CHECK_INT_EQ(0, capture_start(&cap));
    char err[256] = "";
    int rc = lk_pg_exec(pg, "DO $$BEGIN RAISE NOTICE 'hello from the server'; END$$", 0, NULL, err,
                        sizeof(err));
    char raw[8192];
    capture_end(&cap, raw, sizeof(raw));

    CHECK_INT_EQ(0, rc);

    /* Whatever reaches stderr is a line of lk_log, with time stamp and
     * component, not libpq's own "NOTICE:  ..." printed as is. */
    char expected_start[96];
    snprintf(expected_start, sizeof(expected_start), "dddd-dd-ddTdd:dd:dd.dddZ test_pg[%d] ",
             (int)getpid());
    for (const char *line = raw; *line != '\0';) {
        char start[96];
        line_start(line, start, sizeof(start));
        CHECK_STR_EQ(expected_start, start);

        const char *newline = strchr(line, '\n');
        line = newline != NULL ? newline + 1 : line + strlen(line);
    }
}

/* Runs `body` against a server of its own on the shared cluster. */
static void with_server(void (*body)(lk_pg *pg, server *srv), int statement_timeout_ms)
{
    server srv = {.port = free_port()};
    CHECK(srv.port > 0);
    int started = server_start(&srv);
    lk_pg *pg = lk_pg_new(srv.dsn);
    if (statement_timeout_ms > 0)
        lk_pg_set_statement_timeout(pg, statement_timeout_ms);

    if (started == 0)
        body(pg, &srv);
    else
        CHECK_INT_EQ(0, started);

    lk_pg_free(pg);
    server_stop(&srv, SIGINT);
}

static void exec_body(lk_pg *pg, server *srv)
{
    (void)srv;
    check_exec_against_server(pg);
}

static void timeout_body(lk_pg *pg, server *srv)
{
    (void)srv;
    check_statement_timeout(pg);
}

static void notices_body(lk_pg *pg, server *srv)
{
    (void)srv;
    check_notices_logged(pg);
}

static void test_notices_logged(void)
{
    if (cluster_missing[0] != '\0')
        CHECK_SKIP("%s", cluster_missing);
    with_server(notices_body, 0);
}

static void test_exec_against_server(void)
{
    if (cluster_missing[0] != '\0')
        CHECK_SKIP("%s", cluster_missing);
    with_server(exec_body, 0);
}

static void test_statement_timeout(void)
{
    if (cluster_missing[0] != '\0')
        CHECK_SKIP("%s", cluster_missing);
    with_server(timeout_body, 150);
}

static void test_reconnects_after_restart(void)
{
    if (cluster_missing[0] != '\0')
        CHECK_SKIP("%s", cluster_missing);
    with_server(check_reconnects_after_restart, 0);
}

int main(void)
{
    /* The expected log lines are at warn and info: whatever threshold the
     * caller's environment asks for, use the default. */
    unsetenv("LIKES_LOG_LEVEL");
    lk_log_init("test_pg");
    cluster_create();

    static const check_case cases[] = {
        {"a dead port fails at once and is logged once", test_dead_port},
        {"connect_timeout bounds a server that never answers", test_silent_port},
        {"lk_pg_exec says postgres unreachable", test_exec_unreachable},
        {"lk_pg_free accepts NULL", test_free_null},
        {"lk_pg_exec runs statements and returns the server's first line",
         test_exec_against_server},
        {"the statement timeout applies to each new connection", test_statement_timeout},
        {"a handle reconnects after the server restarts", test_reconnects_after_restart},
        {"server notices reach stderr as log lines", test_notices_logged},
    };
    int rc = CHECK_RUN(cases);

    cluster_remove();
    return rc;
}
