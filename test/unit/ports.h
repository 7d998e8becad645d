/*
 * What unit tests need for the servers they start and restart themselves:
 * free ports, a listener that never answers, and whether a program is
 * installed.
 */
#ifndef LK_TEST_PORTS_H
#define LK_TEST_PORTS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A port of 127.0.0.1 that was free a moment ago, below Linux's range of
 * ephemeral ports (32768 and up). A port from that range can be taken as
 * the source port of a client's own connect() while the test's server is
 * down, and a connect() to it then reaches itself: a server restarted
 * there finds its port taken. */
static inline int free_port(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int tries = 0; tries < 200; tries++) {
        int port = 20000 + rand() % 12000;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int bound = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
        close(fd);
        if (bound)
            return port;
    }
    return -1;
}

/* Listens on a free port of 127.0.0.1 but never accepts nor answers: the
 * kernel completes the handshake, then silence. Returns the socket. */
static inline int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);

    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

static inline int on_path(const char *program)
{
    const char *path = getenv("PATH");
    while (path != NULL && *path != '\0') {
        const char *colon = strchr(path, ':');
        size_t len = colon != NULL ? (size_t)(colon - path) : strlen(path);
        char candidate[1024];
        snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)len, path, program);
        if (access(candidate, X_OK) == 0)
            return 1;
        path = colon != NULL ? colon + 1 : NULL;
    }
    return 0;
}

#endif
