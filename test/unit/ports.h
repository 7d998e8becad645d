/*
 * Ports for the servers that unit tests start and restart themselves.
 */
#ifndef LK_TEST_PORTS_H
#define LK_TEST_PORTS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
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

#endif
