/*
 * Uploads are decoded here, off the libmicrohttpd thread.
 *
 * One image can cost libvips seconds of work while being perfectly valid
 * (a progressive JPEG of thousands of scans, a zlib stream far longer than
 * its pixels): on the HTTP thread that would stall every other request,
 * health checks and likes included. Here it costs one worker.
 *
 * The handler submits a job and suspends the connection; a worker decodes
 * the image, writes the files and stores the outcome; the connection is
 * resumed and libmicrohttpd calls the handler again, which answers on its
 * own thread. `suspended`, under the pool's lock, says who resumes: the
 * thread that clears it, once, and never before the suspension.
 *
 * A job is shared by the request and the pool, counted in `refs` under the
 * pool's lock, and freed by whichever lets go of it last.
 */
#include "ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* On two cores, measured with one client posting a slow image (2 s of
 * inflate) in a loop beside three posting photos: with one worker the
 * photos went from 50 to 1.5 uploads/s, queued behind it; with two they
 * stayed at 48/s. Without a slow image, two gave 7-10% more than one, and
 * health checks answered in under 1 ms (p50) either way. */
#define IMAGE_WORKERS 2

/* Jobs in the pool at most, running or waiting: beyond, uploads get a 503
 * rather than a wait whose end nobody can tell. Each holds its image, up
 * to LIKES_MAX_UPLOAD_BYTES. */
#define IMAGE_QUEUE_MAX     8
#define IMAGE_POOL_CAPACITY (IMAGE_WORKERS + IMAGE_QUEUE_MAX)

struct ingest_image_job {
    ingest_image_pool *pool;
    struct MHD_Connection *conn;
    uint64_t request_id;
    ingest_image_job *next; /* in the queue */

    char *image; /* the upload; the worker frees it once decoded */
    size_t image_len;

    /* Under the pool's lock. */
    int refs;
    int suspended; /* the connection waits for this job */
    int finished;  /* the outcome below is final */
    ingest_media_status status;
    ingest_media media;
    char reason[512];
};

struct ingest_image_pool {
    const lk_config *cfg;
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, or the workers must stop */
    pthread_cond_t idle; /* a job ended, or a worker exited */

    /* Under `lock`. */
    ingest_image_job *head;
    ingest_image_job *tail;
    ingest_image_job *running[IMAGE_WORKERS];
    int waiting;
    int busy;
    int closing;  /* take no more jobs */
    int stopping; /* workers exit */
    int live_workers;

    pthread_t threads[IMAGE_WORKERS];
    int started;
};

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Waits on `cond` until `deadline_ms` (CLOCK_MONOTONIC); the pool's lock
 * is held. */
static void wait_until(ingest_image_pool *pool, pthread_cond_t *cond, int64_t deadline_ms)
{
    struct timespec until = {
        .tv_sec = (time_t)(deadline_ms / 1000),
        .tv_nsec = (long)(deadline_ms % 1000) * 1000000,
    };
    pthread_cond_timedwait(cond, &pool->lock, &until);
}

/* Lets go of one reference; the pool's lock is held. */
static void job_unref_locked(ingest_image_job *job)
{
    if (--job->refs > 0)
        return;
    free(job->image);
    free(job);
}

/* Ends a job with `status` unless it has ended already. Returns the
 * connection the caller must resume, outside the lock, or NULL. */
static struct MHD_Connection *job_end_locked(ingest_image_job *job, ingest_media_status status,
                                             const ingest_media *media, const char *reason)
{
    if (!job->finished) {
        job->finished = 1;
        job->status = status;
        if (media != NULL)
            job->media = *media;
        snprintf(job->reason, sizeof(job->reason), "%s", reason);
    }
    if (!job->suspended)
        return NULL;
    job->suspended = 0;
    return job->conn;
}

/* The workers */

static void run_job(ingest_image_pool *pool, ingest_image_job *job)
{
    ingest_media media;
    char reason[512] = "";
    ingest_media_status status =
        ingest_media_store(pool->cfg, job->image, job->image_len, &media, reason, sizeof(reason));
    free(job->image);
    job->image = NULL;

    /* A job given up at shutdown has already been answered: its files
     * stay, unreferenced, and nothing else happens. */
    pthread_mutex_lock(&pool->lock);
    struct MHD_Connection *resume = job_end_locked(job, status, &media, reason);
    pthread_mutex_unlock(&pool->lock);
    if (resume != NULL)
        MHD_resume_connection(resume);
}

static void *image_worker(void *arg)
{
    ingest_image_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    int slot = pool->live_workers++;

    while (!pool->stopping) {
        if (pool->head == NULL) {
            pthread_cond_wait(&pool->work, &pool->lock);
            continue;
        }
        ingest_image_job *job = pool->head;
        pool->head = job->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pool->waiting--;
        pool->busy++;
        pool->running[slot] = job;
        pthread_mutex_unlock(&pool->lock);

        run_job(pool, job);

        pthread_mutex_lock(&pool->lock);
        pool->running[slot] = NULL;
        pool->busy--;
        job_unref_locked(job);
        pthread_cond_broadcast(&pool->idle);
    }

    pool->live_workers--;
    pthread_cond_broadcast(&pool->idle);
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* The pool */

static int pool_init_sync(ingest_image_pool *pool)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int failed = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
                 pthread_mutex_init(&pool->lock, NULL) != 0 ||
                 pthread_cond_init(&pool->work, &attr) != 0 ||
                 pthread_cond_init(&pool->idle, &attr) != 0;
    pthread_condattr_destroy(&attr);
    return failed ? -1 : 0;
}

ingest_image_pool *ingest_image_pool_new(const lk_config *cfg, char *err, size_t errlen)
{
    ingest_image_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL || pool_init_sync(pool) != 0) {
        snprintf(err, errlen, "out of memory for the image workers");
        free(pool);
        return NULL;
    }
    pool->cfg = cfg;

    for (int i = 0; i < IMAGE_WORKERS; i++) {
        if (pthread_create(&pool->threads[i], NULL, image_worker, pool) != 0) {
            snprintf(err, errlen, "starting image worker %d failed", i + 1);
            ingest_image_pool_free(pool, 1000);
            return NULL;
        }
        pool->started++;
    }
    return pool;
}

int ingest_image_pool_submit(ingest_image_pool *pool, struct MHD_Connection *conn,
                             uint64_t request_id, char *image, size_t image_len,
                             ingest_image_job **job_out, char *err, size_t errlen)
{
    ingest_image_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        snprintf(err, errlen, "no memory for an image job");
        return -1;
    }
    job->pool = pool;
    job->conn = conn;
    job->request_id = request_id;
    job->refs = 2; /* the request's and the pool's */

    pthread_mutex_lock(&pool->lock);
    if (pool->closing || pool->waiting + pool->busy >= IMAGE_POOL_CAPACITY) {
        snprintf(err, errlen,
                 pool->closing ? "shutting down, no more uploads taken"
                               : "%d uploads are being decoded or wait for it, the most taken",
                 pool->waiting + pool->busy);
        pthread_mutex_unlock(&pool->lock);
        free(job);
        return -1;
    }

    job->image = image;
    job->image_len = image_len;
    if (pool->tail != NULL)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    pool->waiting++;
    pthread_cond_signal(&pool->work);
    pthread_mutex_unlock(&pool->lock);

    *job_out = job;
    return 0;
}

void ingest_image_job_wait(ingest_image_job *job)
{
    ingest_image_pool *pool = job->pool;
    pthread_mutex_lock(&pool->lock);
    int ended = job->finished;
    if (!ended)
        job->suspended = 1;
    pthread_mutex_unlock(&pool->lock);

    if (ended)
        MHD_resume_connection(job->conn);
}

ingest_media_status ingest_image_job_outcome(ingest_image_job *job, ingest_media *media,
                                             char *reason, size_t reasonlen)
{
    ingest_image_pool *pool = job->pool;
    pthread_mutex_lock(&pool->lock);
    ingest_media_status status = job->finished ? job->status : INGEST_MEDIA_FAILED;
    *media = job->media;
    snprintf(reason, reasonlen, "%s", job->finished ? job->reason : "the image job has not ended");
    pthread_mutex_unlock(&pool->lock);
    return status;
}

void ingest_image_job_release(ingest_image_job *job)
{
    if (job == NULL)
        return;
    ingest_image_pool *pool = job->pool;
    pthread_mutex_lock(&pool->lock);
    job_unref_locked(job);
    pthread_mutex_unlock(&pool->lock);
}

/* Ends one waiting job as cancelled; returns 0 once none is left. */
static int cancel_one_waiting(ingest_image_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    ingest_image_job *job = pool->head;
    if (job == NULL) {
        pthread_mutex_unlock(&pool->lock);
        return 0;
    }
    pool->head = job->next;
    if (pool->head == NULL)
        pool->tail = NULL;
    pool->waiting--;
    free(job->image);
    job->image = NULL;
    struct MHD_Connection *resume =
        job_end_locked(job, INGEST_MEDIA_CANCELLED, NULL, "shutting down before it was decoded");
    job_unref_locked(job);
    pthread_mutex_unlock(&pool->lock);

    if (resume != NULL)
        MHD_resume_connection(resume);
    return 1;
}

/* Ends the running job of worker `slot` as cancelled, if there is one. */
static void cancel_running(ingest_image_pool *pool, int slot)
{
    pthread_mutex_lock(&pool->lock);
    ingest_image_job *job = pool->running[slot];
    struct MHD_Connection *resume = NULL;
    if (job != NULL) {
        lk_log_warn("request %" PRIu64 ": image still decoding at shutdown, answering 503",
                    job->request_id);
        resume =
            job_end_locked(job, INGEST_MEDIA_CANCELLED, NULL, "shutting down while it was decoded");
    }
    pthread_mutex_unlock(&pool->lock);

    if (resume != NULL)
        MHD_resume_connection(resume);
}

void ingest_image_pool_close(ingest_image_pool *pool, int grace_ms)
{
    pthread_mutex_lock(&pool->lock);
    pool->closing = 1;
    pthread_mutex_unlock(&pool->lock);

    while (cancel_one_waiting(pool))
        ;

    int64_t deadline = monotonic_ms() + grace_ms;
    pthread_mutex_lock(&pool->lock);
    while (pool->busy > 0 && monotonic_ms() < deadline)
        wait_until(pool, &pool->idle, deadline);
    pthread_mutex_unlock(&pool->lock);

    for (int slot = 0; slot < IMAGE_WORKERS; slot++)
        cancel_running(pool, slot);
}

int ingest_image_pool_free(ingest_image_pool *pool, int wait_ms)
{
    if (pool == NULL)
        return 0;

    int64_t deadline = monotonic_ms() + wait_ms;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work);
    while (pool->live_workers > 0 && monotonic_ms() < deadline)
        wait_until(pool, &pool->idle, deadline);
    int left = pool->live_workers;
    pthread_mutex_unlock(&pool->lock);

    /* A worker deep in libvips cannot be interrupted: leave the pool to it
     * rather than hold up the exit. */
    if (left > 0) {
        lk_log_warn("%d image workers still decoding after %d ms, exiting without them", left,
                    wait_ms);
        return -1;
    }

    for (int i = 0; i < pool->started; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->idle);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
    return 0;
}
