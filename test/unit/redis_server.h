/*
 * A real redis-server for unit tests: started as a child on a free port of
 * 127.0.0.1, without persistence, killed with the test if it dies.
 */
#ifndef LK_TEST_REDIS_SERVER_H
#define LK_TEST_REDIS_SERVER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ports.h"

typedef struct server {
    pid_t pid;
    int port;
    char dir[64];
} server;

static inline int can_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

static inline int server_spawn(server *srv)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", srv->port);
    fflush(stdout);

    pid_t test_pid = getpid();
    srv->pid = fork();
    if (srv->pid < 0)
        return -1;
    if (srv->pid == 0) {
        /* Should the test crash, the server goes with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != test_pid)
            _exit(127);

        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", srv->dir, (char *)NULL);
        _exit(127);
    }

    for (int waited = 0; waited < 5000; waited += 20) {
        if (can_connect(srv->port))
            return 0;
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
            srv->pid = 0;
            return -1;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        nanosleep(&pause, NULL);
    }
    return -1;
}

/* Starts redis-server on srv->port of 127.0.0.1, without persistence, in
 * srv->dir, and waits up to 5 s for it to accept connections. The
 * directory exists only while the server starts: it writes nothing there,
 * and a test that crashes leaves nothing behind. */
static inline int server_start(server *srv)
{
    if (mkdir(srv->dir, 0700) != 0)
        return -1;
    int rc = server_spawn(srv);
    rmdir(srv->dir);
    return rc;
}

/* Ends the server the hard way, as a crash would, and returns once its
 * port stops answering. A test runs in a child of the process that may
 * have started the server, so waitpid() cannot always wait for it; the
 * port closing is what a restart on the same port needs anyway. */
static inline void server_kill(server *srv)
{
    if (srv->pid > 0) {
        kill(srv->pid, SIGKILL);
        if (waitpid(srv->pid, NULL, 0) != srv->pid) {
            for (int waited = 0; waited < 5000 && can_connect(srv->port); waited += 10) {
                struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
                nanosleep(&pause, NULL);
            }
        }
    }
    srv->pid = 0;
}

/* Picks a free port and the name of a new directory; returns -1 when
 * either fails. */
static inline int server_prepare(server *srv)
{
    memset(srv, 0, sizeof(*srv));
    srv->port = free_port();
    snprintf(srv->dir, sizeof(srv->dir), "/tmp/lk-test-redis-XXXXXX");
    if (srv->port <= 0 || mkdtemp(srv->dir) == NULL)
        return -1;
    rmdir(srv->dir);
    return 0;
}

static inline void server_cleanup(server *srv)
{
    server_kill(srv);
}

#endif
