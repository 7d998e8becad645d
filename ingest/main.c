/*
 * likes-ingest: the HTTP front door of the like pipeline. Starts the
 * pieces, serves until SIGTERM or SIGINT, then stops taking connections,
 * lets the likes in flight reach Kafka and exits 0. After a fatal Kafka
 * producer error it stops the same way and then runs itself afresh.
 */
#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

#define FLUSH_TIMEOUT_MS        10000
#define PG_STATEMENT_TIMEOUT_MS 2000
#define REDIS_TIMEOUT_MS        200
#define STREAM_CLOSE_GRACE_MS   2000
#define IMAGE_CLOSE_GRACE_MS    3000
#define IMAGE_WORKERS_WAIT_MS   2000

/* Descriptors beyond the connections: the listener, Kafka, Redis,
 * PostgreSQL, media files being served, libvips. */
#define SPARE_DESCRIPTORS 256

/* Blocked in every thread (all start later and inherit the mask), so that
 * main() alone takes them, with sigwait. */
static int block_stop_signals(sigset_t *signals)
{
    sigemptyset(signals);
    sigaddset(signals, SIGTERM);
    sigaddset(signals, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    return pthread_sigmask(SIG_BLOCK, signals, NULL);
}

static void raise_descriptor_limit(int connections)
{
    struct rlimit limit;
    rlim_t wanted = (rlim_t)connections + SPARE_DESCRIPTORS;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted)
        return;

    limit.rlim_cur =
        limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted ? limit.rlim_max : wanted;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < wanted)
        lk_log_warn("open file limit is %llu, below %llu: connections past it will be refused",
                    (unsigned long long)limit.rlim_cur, (unsigned long long)wanted);
}

static int app_open(ingest_app *app, char *err, size_t errlen)
{
    if (lk_config_load(&app->cfg, 1, err, errlen) != 0)
        return -1;
    raise_descriptor_limit(app->cfg.http_max_connections);

    if (ingest_media_init(&app->cfg, err, errlen) != 0)
        return -1;
    app->images = ingest_image_pool_new(&app->cfg, err, errlen);
    if (app->images == NULL)
        return -1;

    app->pg = lk_pg_new(app->cfg.pg_dsn);
    app->redis = lk_redis_new(app->cfg.redis_host, app->cfg.redis_port, REDIS_TIMEOUT_MS);
    app->known_posts = ingest_post_set_new();
    if (app->pg == NULL || app->redis == NULL || app->known_posts == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    lk_pg_set_statement_timeout(app->pg, PG_STATEMENT_TIMEOUT_MS);

    /* Connect now rather than on the first request. One that is down is
     * logged here and tried again on use. */
    lk_pg_get(app->pg);
    lk_redis_get(app->redis);

    app->producer = ingest_producer_new(&app->cfg, err, errlen);
    if (app->producer == NULL)
        return -1;

    app->streams = ingest_streams_new(&app->cfg, err, errlen);
    return app->streams != NULL ? 0 : -1;
}

static void app_close(ingest_app *app)
{
    ingest_streams_free(app->streams);
    ingest_producer_free(app->producer);
    ingest_post_set_free(app->known_posts);
    lk_redis_free(app->redis);
    lk_pg_free(app->pg);

    /* libvips cannot be shut down under a worker still inside it. */
    if (ingest_image_pool_free(app->images, IMAGE_WORKERS_WAIT_MS) == 0)
        ingest_media_shutdown();
}

/* Live count streams end; requests already in are answered; an upload
 * being decoded gets its answer (or a 503) and a like in flight its
 * delivery report (or a 503) before the daemon goes. libmicrohttpd must
 * not be stopped with a connection still suspended. */
static void stop_serving(ingest_app *app, struct MHD_Daemon *daemon)
{
    MHD_socket listener = MHD_quiesce_daemon(daemon);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);

    ingest_streams_close_all(app->streams, STREAM_CLOSE_GRACE_MS);
    ingest_image_pool_close(app->images, IMAGE_CLOSE_GRACE_MS);
    int undelivered = ingest_producer_drain(app->producer, FLUSH_TIMEOUT_MS);
    MHD_stop_daemon(daemon);
    lk_log_info("http stopped, %d like events left undelivered", undelivered);
}

/* Replaces this process with a fresh run of the same program: the pid,
 * the arguments and the environment stay, so whatever supervises ingest
 * sees no exit, while the Kafka producer, beyond repair, starts anew. */
static int run_afresh(char **argv, const sigset_t *stop_signals)
{
    lk_log_warn("the kafka producer failed beyond repair: starting afresh in 1 s");

    /* A fault that persists then costs one fresh start a second, not a
     * busy loop. */
    sleep(1);
    sigprocmask(SIG_UNBLOCK, stop_signals, NULL);
    execv("/proc/self/exe", argv);
    lk_log_error("starting afresh failed: %s; exiting", strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    (void)argc;
    lk_log_init("ingest");

    sigset_t stop_signals;
    if (block_stop_signals(&stop_signals) != 0) {
        lk_log_error("blocking SIGTERM and SIGINT failed, exiting");
        return 1;
    }

    ingest_app app;
    memset(&app, 0, sizeof(app));
    char err[512];
    struct MHD_Daemon *daemon = NULL;
    if (app_open(&app, err, sizeof(err)) != 0 ||
        (daemon = ingest_http_start(&app, err, sizeof(err))) == NULL) {
        lk_log_error("startup failed: %s; exiting", err);
        app_close(&app);
        return 1;
    }
    lk_log_info("listening on %s:%d (at most %d connections), likes go to topic %s",
                app.cfg.http_addr, app.cfg.http_port, app.cfg.http_max_connections,
                app.cfg.topic_likes);

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    lk_log_info("%s received: taking no new connections, finishing the requests in flight",
                strsignal(signal_number));

    stop_serving(&app, daemon);
    int failed = ingest_producer_failed(app.producer);
    app_close(&app);
    lk_log_info("stopped");
    return failed ? run_afresh(argv, &stop_signals) : 0;
}
