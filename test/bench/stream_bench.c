/*
 * stream-bench: how long a like takes to reach the people watching its
 * post live.
 *
 * Against a running stack, it creates a few fresh posts, opens many
 * GET /v1/stream connections on loopback (one epoll loop, the subscribers
 * spread evenly over the posts), then likes the posts through the HTTP API
 * at a steady rate for a fixed time, each like by a user who has not liked
 * that post before, so every like raises its post's count by one.
 *
 * A post's likes all land on one Kafka partition and are counted in offset
 * order, so the like with the k-th smallest offset is in every count of at
 * least (first count + k). For each acknowledged like (202) and each
 * subscriber of its post, the delay is the time from the acknowledgement
 * to the arrival of the first event whose count includes it. The program
 * prints their distribution, the connections held and every error, and
 * stops by itself.
 *
 *   stream-bench [-n subscribers] [-p posts] [-r likes per second] [-d seconds]
 *                [-c like connections] [-i image] [-l likesctl]
 *
 * The port comes from LIKES_HTTP_PORT (8080 when unset); tokens are minted
 * with `likesctl token`, which needs LIKES_TOKEN_SECRET (scripts/env.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOST               "127.0.0.1"
#define MAX_POSTS          64
#define CONNECT_BATCH      500
#define CONNECT_TIMEOUT_S  120
#define DRAIN_TIMEOUT_S    20
#define LINE_MAX_LEN       256
#define TOKEN_MAX_LEN      128
#define MINT_BATCH         1000
#define RESPONSE_MAX_BYTES (64 * 1024)

typedef struct options {
    int subscribers;
    int posts;
    int rate;
    int seconds;
    int like_connections;
    int port;
    const char *image;
    const char *likesctl;
} options;

/* One event as it arrived. */
typedef struct arrival {
    int64_t at_us;
    int64_t count;
} arrival;

typedef struct subscriber {
    int fd;
    int post; /* index into the posts */
    int status;
    int in_body;
    int connected;
    int closed;
    int64_t first_count; /* -1 until the first event */
    char line[LINE_MAX_LEN];
    size_t line_len;
    arrival *arrivals;
    size_t arrival_count;
    size_t arrival_cap;
} subscriber;

typedef struct like {
    int post;
    int64_t user_id;
    int status;
    int64_t offset;
    int64_t acked_us;
} like;

typedef struct bench {
    options opt;
    int64_t post_ids[MAX_POSTS];
    char (*tokens)[TOKEN_MAX_LEN]; /* tokens[u] for user id u + 1 */
    int user_count;
    char author_token[TOKEN_MAX_LEN];

    subscriber *subs;
    int epoll_fd;
    int open_streams;
    int connect_errors;
    int stream_errors;
    int heartbeats;
    int64_t events;

    like *likes;
    int like_count;
    atomic_int likes_done;
    atomic_int like_errors;
    int64_t likes_started_us;
    int64_t likes_ended_us;
} bench;

static int64_t now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static void die(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "stream-bench: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

static void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count, size);
    if (p == NULL)
        die("out of memory");
    return p;
}

/* Blocking HTTP, for creating posts and for the likes */

static int connect_blocking(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, HOST, &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval timeout = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

/* Reads one response with a Content-Length body into `buf` (NUL-ended).
 * Returns the status, or -1. `*body` points into `buf`. */
static int read_response(int fd, char *buf, size_t cap, char **body)
{
    size_t used = 0;
    char *end = NULL;
    while (end == NULL) {
        if (used + 1 >= cap)
            return -1;
        ssize_t got = recv(fd, buf + used, cap - 1 - used, 0);
        if (got <= 0)
            return -1;
        used += (size_t)got;
        buf[used] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }

    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *length_header = strcasestr(buf, "\r\nContent-Length:");
    size_t length = length_header != NULL ? strtoul(length_header + 17, NULL, 10) : 0;
    size_t header_len = (size_t)(end - buf) + 4;
    if (header_len + length + 1 > cap)
        return -1;

    while (used < header_len + length) {
        ssize_t got = recv(fd, buf + used, header_len + length - used, 0);
        if (got <= 0)
            return -1;
        used += (size_t)got;
    }
    buf[header_len + length] = '\0';
    *body = buf + header_len;
    return status;
}

static int64_t json_number(const char *body, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "\"%s\":", key);
    const char *at = strstr(body, pattern);
    return at != NULL ? strtoll(at + strlen(pattern), NULL, 10) : -1;
}

/* Tokens and posts */

/* Mints tokens for user ids 1..count, plus one for the author (count + 1). */
static void mint_tokens(bench *b, int count)
{
    b->tokens = xcalloc((size_t)count + 1, TOKEN_MAX_LEN);
    b->user_count = count;
    for (int start = 0; start <= count; start += MINT_BATCH) {
        int end = start + MINT_BATCH <= count + 1 ? start + MINT_BATCH : count + 1;
        size_t cap = strlen(b->opt.likesctl) + 16 + (size_t)MINT_BATCH * 12;
        char *command = xcalloc(cap, 1);
        size_t used = (size_t)snprintf(command, cap, "%s token", b->opt.likesctl);
        for (int u = start; u < end; u++)
            used += (size_t)snprintf(command + used, cap - used, " %d", u + 1);

        FILE *out = popen(command, "r");
        if (out == NULL)
            die("running %s failed", b->opt.likesctl);
        for (int u = start; u < end; u++) {
            if (fgets(b->tokens[u], TOKEN_MAX_LEN, out) == NULL)
                die("%s token printed too few tokens (is LIKES_TOKEN_SECRET set?)",
                    b->opt.likesctl);
            b->tokens[u][strcspn(b->tokens[u], "\n")] = '\0';
        }
        if (pclose(out) != 0)
            die("%s token failed", b->opt.likesctl);
        free(command);
    }
    snprintf(b->author_token, sizeof(b->author_token), "%s", b->tokens[count]);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        die("cannot open %s: %s", path, strerror(errno));
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = xcalloc((size_t)size + 1, 1);
    if (size < 0 || fread(data, 1, (size_t)size, file) != (size_t)size)
        die("cannot read %s", path);
    fclose(file);
    *len = (size_t)size;
    return data;
}

static int64_t create_post(bench *b, const char *image, size_t image_len)
{
    const char *boundary = "stream-bench-boundary";
    char head[512];
    char tail[64];
    int head_len = snprintf(head, sizeof(head),
                            "--%s\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n"
                            "stream bench\r\n--%s\r\nContent-Disposition: form-data; "
                            "name=\"image\"; filename=\"bench.png\"\r\n"
                            "Content-Type: application/octet-stream\r\n\r\n",
                            boundary, boundary);
    int tail_len = snprintf(tail, sizeof(tail), "\r\n--%s--\r\n", boundary);

    char request[1024];
    int request_len =
        snprintf(request, sizeof(request),
                 "POST /v1/posts HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %zu\r\n\r\n",
                 HOST, b->author_token, boundary, (size_t)head_len + image_len + (size_t)tail_len);

    int fd = connect_blocking(b->opt.port);
    if (fd < 0)
        die("cannot connect to %s:%d", HOST, b->opt.port);
    if (send_all(fd, request, (size_t)request_len) != 0 ||
        send_all(fd, head, (size_t)head_len) != 0 || send_all(fd, image, image_len) != 0 ||
        send_all(fd, tail, (size_t)tail_len) != 0)
        die("sending a post failed");

    char response[8192];
    char *body;
    int status = read_response(fd, response, sizeof(response), &body);
    close(fd);
    if (status != 201)
        die("creating a post answered %d", status);
    return json_number(body, "id");
}

/* The subscribers */

static void add_arrival(subscriber *sub, int64_t at_us, int64_t count)
{
    if (sub->arrival_count == sub->arrival_cap) {
        sub->arrival_cap = sub->arrival_cap > 0 ? sub->arrival_cap * 2 : 16;
        sub->arrivals = realloc(sub->arrivals, sub->arrival_cap * sizeof(*sub->arrivals));
        if (sub->arrivals == NULL)
            die("out of memory");
    }
    sub->arrivals[sub->arrival_count++] = (arrival){.at_us = at_us, .count = count};
}

/* One line of the response: status line, headers, then the event stream
 * with the chunk sizes of the transfer encoding between events. */
static void take_line(bench *b, subscriber *sub, const char *line, int64_t at_us)
{
    if (sub->status == 0) {
        if (sscanf(line, "HTTP/1.%*d %d", &sub->status) != 1 || sub->status != 200)
            sub->status = sub->status != 0 ? sub->status : -1;
        return;
    }
    if (!sub->in_body) {
        sub->in_body = line[0] == '\0' || strcmp(line, "\r") == 0;
        return;
    }

    if (line[0] == ':') {
        b->heartbeats++;
        return;
    }
    int64_t post_id;
    int64_t count;
    if (sscanf(line, "data: {\"post_id\":%" SCNd64 ",\"like_count\":%" SCNd64 "}", &post_id,
               &count) != 2)
        return;
    if (post_id != b->post_ids[sub->post]) {
        b->stream_errors++;
        return;
    }
    b->events++;
    if (sub->first_count < 0) {
        sub->first_count = count;
        if (!sub->connected) {
            sub->connected = 1;
            b->open_streams++;
        }
        return;
    }
    add_arrival(sub, at_us, count);
}

static void sub_close(bench *b, subscriber *sub, int error)
{
    if (sub->closed)
        return;
    epoll_ctl(b->epoll_fd, EPOLL_CTL_DEL, sub->fd, NULL);
    close(sub->fd);
    sub->closed = 1;
    if (sub->connected)
        b->open_streams--;
    if (error)
        b->stream_errors++;
}

static void sub_read(bench *b, subscriber *sub)
{
    char buf[16384];
    while (1) {
        ssize_t got = recv(sub->fd, buf, sizeof(buf), 0);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            sub_close(b, sub, 1);
            return;
        }

        int64_t at_us = now_us();
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != '\n') {
                if (sub->line_len + 1 < LINE_MAX_LEN)
                    sub->line[sub->line_len++] = buf[i];
                continue;
            }
            sub->line[sub->line_len] = '\0';
            take_line(b, sub, sub->line, at_us);
            sub->line_len = 0;
        }
        if (sub->status < 0 || sub->status > 200) {
            sub_close(b, sub, 1);
            return;
        }
    }
}

static int sub_open(bench *b, subscriber *sub)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->opt.port)};
    inet_pton(AF_INET, HOST, &addr.sin_addr);
    sub->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (sub->fd < 0)
        return -1;
    if (connect(sub->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS) {
        close(sub->fd);
        return -1;
    }
    struct epoll_event event = {.events = EPOLLOUT, .data.ptr = sub};
    return epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, sub->fd, &event);
}

/* The connection is up: send the request, then only read. */
static void sub_send_request(bench *b, subscriber *sub)
{
    char request[256];
    int len = snprintf(request, sizeof(request),
                       "GET /v1/stream?posts=%" PRId64 " HTTP/1.1\r\nHost: %s\r\n"
                       "Accept: text/event-stream\r\n\r\n",
                       b->post_ids[sub->post], HOST);
    if (send(sub->fd, request, (size_t)len, MSG_NOSIGNAL) != len) {
        b->connect_errors++;
        sub_close(b, sub, 0);
        return;
    }
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = sub};
    epoll_ctl(b->epoll_fd, EPOLL_CTL_MOD, sub->fd, &event);
}

static void poll_once(bench *b, int timeout_ms)
{
    struct epoll_event events[1024];
    int ready = epoll_wait(b->epoll_fd, events, 1024, timeout_ms);
    for (int i = 0; i < ready; i++) {
        subscriber *sub = events[i].data.ptr;
        if (sub->closed)
            continue;
        if ((events[i].events & EPOLLOUT) && sub->status == 0 && !sub->in_body) {
            int error = 0;
            socklen_t len = sizeof(error);
            getsockopt(sub->fd, SOL_SOCKET, SO_ERROR, &error, &len);
            if (error != 0) {
                b->connect_errors++;
                sub_close(b, sub, 0);
                continue;
            }
            sub_send_request(b, sub);
            continue;
        }
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            sub_read(b, sub);
    }
}

/* Opens the streams a batch at a time, so that the listen backlog never
 * overflows, and waits until each has its first count. */
static void open_streams(bench *b)
{
    int n = b->opt.subscribers;
    int64_t deadline = now_us() + (int64_t)CONNECT_TIMEOUT_S * 1000000;
    int opened = 0;
    while (now_us() < deadline) {
        int settled = b->open_streams + b->connect_errors + b->stream_errors;
        if (settled >= n)
            break;
        while (opened < n && opened - settled < CONNECT_BATCH) {
            subscriber *sub = &b->subs[opened];
            sub->post = opened % b->opt.posts;
            sub->first_count = -1;
            if (sub_open(b, sub) != 0) {
                sub->closed = 1;
                b->connect_errors++;
            }
            opened++;
        }
        poll_once(b, 100);
    }
}

/* The likes */

typedef struct liker {
    bench *b;
    int index;
} liker;

static void do_like(bench *b, int *fd, like *l)
{
    char request[512];
    int len = snprintf(request, sizeof(request),
                       "PUT /v1/posts/%" PRId64 "/like HTTP/1.1\r\nHost: %s\r\n"
                       "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n",
                       b->post_ids[l->post], HOST, b->tokens[l->user_id - 1]);
    char response[4096];
    char *body = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*fd < 0)
            *fd = connect_blocking(b->opt.port);
        if (*fd >= 0 && send_all(*fd, request, (size_t)len) == 0 &&
            (l->status = read_response(*fd, response, sizeof(response), &body)) > 0)
            break;
        /* A keep-alive connection the server closed meanwhile. */
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        l->status = -1;
    }
    l->acked_us = now_us();
    if (l->status == 202)
        l->offset = json_number(body, "offset");
    else
        atomic_fetch_add(&b->like_errors, 1);
}

/* Each liker takes every like_connections-th like, at its share of the
 * rate, from its own keep-alive connection. */
static void *run_liker(void *arg)
{
    liker *me = arg;
    bench *b = me->b;
    int fd = -1;
    int64_t interval_us = (int64_t)1000000 * b->opt.like_connections / b->opt.rate;
    int64_t start = b->likes_started_us + interval_us * me->index / b->opt.like_connections;
    int64_t step = 0;
    for (int i = me->index; i < b->like_count; i += b->opt.like_connections, step++) {
        int64_t due = start + step * interval_us;
        int64_t wait = due - now_us();
        if (wait > 0) {
            struct timespec pause = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
            nanosleep(&pause, NULL);
        }
        do_like(b, &fd, &b->likes[i]);
        atomic_fetch_add(&b->likes_done, 1);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Like i goes to post i mod P from user i div P + 1: nobody likes the
 * same post twice. */
static void plan_likes(bench *b)
{
    b->like_count = b->opt.rate * b->opt.seconds;
    b->likes = xcalloc((size_t)b->like_count, sizeof(*b->likes));
    for (int i = 0; i < b->like_count; i++) {
        b->likes[i].post = i % b->opt.posts;
        b->likes[i].user_id = i / b->opt.posts + 1;
        b->likes[i].offset = -1;
    }
}

/* Every subscriber has seen its post reach the count the acknowledged
 * likes imply. */
static int all_caught_up(bench *b, const int64_t *expected)
{
    for (int i = 0; i < b->opt.subscribers; i++) {
        const subscriber *sub = &b->subs[i];
        if (sub->closed || !sub->connected)
            continue;
        int64_t last =
            sub->arrival_count > 0 ? sub->arrivals[sub->arrival_count - 1].count : sub->first_count;
        if (last - sub->first_count < expected[sub->post])
            return 0;
    }
    return 1;
}

static void drive_likes(bench *b, int64_t *acked_per_post)
{
    pthread_t threads[256];
    liker likers[256];
    b->likes_started_us = now_us() + 100000;
    for (int t = 0; t < b->opt.like_connections; t++) {
        likers[t] = (liker){.b = b, .index = t};
        if (pthread_create(&threads[t], NULL, run_liker, &likers[t]) != 0)
            die("starting a like thread failed");
    }

    while (atomic_load(&b->likes_done) < b->like_count)
        poll_once(b, 50);
    for (int t = 0; t < b->opt.like_connections; t++)
        pthread_join(threads[t], NULL);
    b->likes_ended_us = now_us();

    for (int i = 0; i < b->like_count; i++) {
        if (b->likes[i].status == 202)
            acked_per_post[b->likes[i].post]++;
    }
    int64_t deadline = now_us() + (int64_t)DRAIN_TIMEOUT_S * 1000000;
    while (now_us() < deadline && !all_caught_up(b, acked_per_post))
        poll_once(b, 50);
}

/* The figures */

static int compare_like_offset(const void *x, const void *y)
{
    const like *a = *(const like *const *)x;
    const like *c = *(const like *const *)y;
    return (a->offset > c->offset) - (a->offset < c->offset);
}

static int compare_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x;
    int64_t c = *(const int64_t *)y;
    return (a > c) - (a < c);
}

/* The delays of one subscriber: like k of its post (by offset) arrived
 * with the first event counting at least k likes past the first count. */
static size_t sub_delays(const subscriber *sub, like *const *ranked, size_t ranked_count,
                         int64_t *out, size_t *missing)
{
    size_t used = 0;
    size_t next_arrival = 0;
    for (size_t k = 0; k < ranked_count; k++) {
        while (next_arrival < sub->arrival_count &&
               sub->arrivals[next_arrival].count - sub->first_count < (int64_t)k + 1)
            next_arrival++;
        if (next_arrival == sub->arrival_count) {
            *missing += ranked_count - k;
            break;
        }
        out[used++] = sub->arrivals[next_arrival].at_us - ranked[k]->acked_us;
    }
    return used;
}

static double percentile_ms(const int64_t *sorted, size_t count, double p)
{
    size_t index = (size_t)(p * (double)(count - 1) + 0.5);
    return (double)sorted[index] / 1000.0;
}

static void report(bench *b, const int64_t *acked_per_post)
{
    double seconds_run = (double)(b->likes_ended_us - b->likes_started_us) / 1e6;
    size_t total = 0;
    for (int i = 0; i < b->opt.subscribers; i++) {
        if (b->subs[i].connected)
            total += (size_t)acked_per_post[b->subs[i].post];
    }
    int64_t *delays = xcalloc(total + 1, sizeof(*delays));
    size_t used = 0;
    size_t missing = 0;

    for (int post = 0; post < b->opt.posts; post++) {
        like **ranked = xcalloc((size_t)b->like_count + 1, sizeof(*ranked));
        size_t ranked_count = 0;
        for (int i = 0; i < b->like_count; i++) {
            if (b->likes[i].post == post && b->likes[i].status == 202)
                ranked[ranked_count++] = &b->likes[i];
        }
        qsort(ranked, ranked_count, sizeof(*ranked), compare_like_offset);
        for (int i = 0; i < b->opt.subscribers; i++) {
            if (b->subs[i].connected && b->subs[i].post == post)
                used += sub_delays(&b->subs[i], ranked, ranked_count, delays + used, &missing);
        }
        free(ranked);
    }
    qsort(delays, used, sizeof(*delays), compare_i64);

    int acked = 0;
    for (int p = 0; p < b->opt.posts; p++)
        acked += (int)acked_per_post[p];
    printf("subscribers    %d asked, %d held to the end, %d failed to connect, %d stream "
           "errors\n",
           b->opt.subscribers, b->open_streams, b->connect_errors, b->stream_errors);
    printf("likes          %d sent in %.1f s over %d connections to %d posts, %d acknowledged "
           "(202), %d errors\n",
           b->like_count, seconds_run, b->opt.like_connections, b->opt.posts, acked,
           atomic_load(&b->like_errors));
    printf("events         %" PRId64 " count events, %d heartbeats\n", b->events, b->heartbeats);
    if (used == 0) {
        printf("delay          no samples\n");
    } else {
        printf("delay          acknowledgement to event at each subscriber, %zu samples, %zu "
               "never arrived\n",
               used, missing);
        printf("               min %.1f ms  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n",
               (double)delays[0] / 1000.0, percentile_ms(delays, used, 0.50),
               percentile_ms(delays, used, 0.90), percentile_ms(delays, used, 0.99),
               (double)delays[used - 1] / 1000.0);
    }
    free(delays);
}

/* Setup */

static void usage(void)
{
    fprintf(stderr, "usage: stream-bench [-n subscribers] [-p posts] [-r likes/s] [-d seconds] "
                    "[-c like connections] [-i image] [-l likesctl]\n");
    exit(2);
}

static int positive(const char *text, int max)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*end != '\0' || value <= 0 || value > max)
        usage();
    return (int)value;
}

static void parse_options(options *opt, int argc, char **argv)
{
    const char *port = getenv("LIKES_HTTP_PORT");
    *opt = (options){
        .subscribers = 10000,
        .posts = 4,
        .rate = 200,
        .seconds = 30,
        .like_connections = 32,
        .port = port != NULL && port[0] != '\0' ? atoi(port) : 8080,
        .image = "test/data/images/coffee.png",
        .likesctl = "build/bin/likesctl",
    };

    int c;
    while ((c = getopt(argc, argv, "n:p:r:d:c:i:l:")) != -1) {
        switch (c) {
        case 'n':
            opt->subscribers = positive(optarg, 100000);
            break;
        case 'p':
            opt->posts = positive(optarg, MAX_POSTS);
            break;
        case 'r':
            opt->rate = positive(optarg, 10000);
            break;
        case 'd':
            opt->seconds = positive(optarg, 600);
            break;
        case 'c':
            opt->like_connections = positive(optarg, 256);
            break;
        case 'i':
            opt->image = optarg;
            break;
        case 'l':
            opt->likesctl = optarg;
            break;
        default:
            usage();
        }
    }
    if (opt->rate * opt->seconds > 1000000)
        die("at most 1,000,000 likes a run");
}

/* Each stream is a descriptor here as well as in the service. */
static void raise_descriptor_limit(int wanted)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    if (limit.rlim_cur < (rlim_t)wanted) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur < (rlim_t)wanted)
        die("the open file limit is %llu, %d subscribers need %d",
            (unsigned long long)limit.rlim_cur, wanted - 64, wanted);
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof(b));
    parse_options(&b.opt, argc, argv);
    raise_descriptor_limit(b.opt.subscribers + 64);
    setvbuf(stdout, NULL, _IOLBF, 0);

    plan_likes(&b);
    mint_tokens(&b, b.like_count / b.opt.posts + 1);
    size_t image_len;
    char *image = read_file(b.opt.image, &image_len);
    for (int p = 0; p < b.opt.posts; p++)
        b.post_ids[p] = create_post(&b, image, image_len);
    free(image);
    printf("posts          %d new posts, ids %" PRId64 "..%" PRId64 ", on 127.0.0.1:%d\n",
           b.opt.posts, b.post_ids[0], b.post_ids[b.opt.posts - 1], b.opt.port);

    b.epoll_fd = epoll_create1(0);
    b.subs = xcalloc((size_t)b.opt.subscribers, sizeof(*b.subs));
    int64_t started = now_us();
    open_streams(&b);
    printf("connect        %d of %d streams open with their first count in %.1f s\n",
           b.open_streams, b.opt.subscribers, (double)(now_us() - started) / 1e6);
    if (b.open_streams == 0)
        die("no stream opened");

    int64_t acked_per_post[MAX_POSTS] = {0};
    drive_likes(&b, acked_per_post);
    report(&b, acked_per_post);

    for (int i = 0; i < b.opt.subscribers; i++) {
        sub_close(&b, &b.subs[i], 0);
        free(b.subs[i].arrivals);
    }
    int failed = b.connect_errors + b.stream_errors + atomic_load(&b.like_errors);
    close(b.epoll_fd);
    free(b.subs);
    free(b.likes);
    free(b.tokens);
    return failed > 0 ? 1 : 0;
}
