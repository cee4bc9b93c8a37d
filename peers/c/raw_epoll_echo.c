/*
 * raw_epoll_echo - the "nothing but system calls" floor for TCP echo.
 *
 * One thread, one level-triggered epoll set, non-blocking sockets. Whatever
 * a client sends is written straight back from one 64 KiB stack of bytes;
 * only when the kernel takes less than we read do we keep the rest in a
 * per-socket heap buffer and watch for EPOLLOUT instead of EPOLLIN (so a
 * slow reader stops us reading from it: back-pressure, no unbounded queue).
 * An idle connection owns no user-space memory at all.
 *
 * compare.py uses it as the baseline of the echo section (MiB/s and CPU per
 * MiB, driven by pingpong_client) and as a row of the memory section.
 *
 * Build: gcc -O2 -o raw_epoll_echo raw_epoll_echo.c
 * Run:   raw_epoll_echo [HOST] [PORT]        (default 127.0.0.1 9100)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FD_LIMIT 65536 /* fds at or above this are refused */

/* Bytes read but not yet taken by the kernel, per fd; NULL almost always. */
struct leftover { size_t len, sent; char bytes[]; };
static struct leftover *stuck[FD_LIMIT];

static int ep;

static void watch(int op, int fd, unsigned events) {
    struct epoll_event e = { .events = events, .data.fd = fd };
    epoll_ctl(ep, op, fd, &e);
}

static void drop(int fd) {
    free(stuck[fd]);
    stuck[fd] = NULL;
    close(fd); /* close also removes it from the epoll set */
}

/* The socket became writable: push the leftover; once it is gone, read again. */
static void flush(int fd) {
    struct leftover *l = stuck[fd];
    ssize_t n = send(fd, l->bytes + l->sent, l->len - l->sent, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN) drop(fd);
        return;
    }
    l->sent += (size_t)n;
    if (l->sent == l->len) {
        free(l);
        stuck[fd] = NULL;
        watch(EPOLL_CTL_MOD, fd, EPOLLIN);
    }
}

/* The socket is readable: one recv, one send of what came. */
static void bounce(int fd) {
    static char buf[65536];
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN)) { drop(fd); return; }
    if (got < 0) return;
    ssize_t put = send(fd, buf, (size_t)got, MSG_NOSIGNAL);
    if (put < 0 && errno != EAGAIN) { drop(fd); return; }
    if (put < 0) put = 0;
    if (put == got) return;
    size_t rest = (size_t)(got - put);
    struct leftover *l = malloc(sizeof *l + rest);
    if (!l) { drop(fd); return; }
    l->len = rest;
    l->sent = 0;
    memcpy(l->bytes, buf + put, rest);
    stuck[fd] = l;
    watch(EPOLL_CTL_MOD, fd, EPOLLOUT);
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 9100;
    struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    if (inet_pton(AF_INET, host, &at.sin_addr) != 1) { fprintf(stderr, "bad IPv4 address %s\n", host); return 2; }

    int lsn = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int yes = 1;
    setsockopt(lsn, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (bind(lsn, (struct sockaddr *)&at, sizeof at) < 0 || listen(lsn, 4096) < 0) { perror("bind/listen"); return 1; }
    ep = epoll_create1(EPOLL_CLOEXEC);
    watch(EPOLL_CTL_ADD, lsn, EPOLLIN);
    printf("listening on %s:%d (dispatcher: epoll)\n", host, port);
    fflush(stdout);

    struct epoll_event ready[512];
    for (;;) {
        int n = epoll_wait(ep, ready, 512, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            int fd = ready[i].data.fd;
            if (fd == lsn) { /* take every pending connection */
                int c;
                while ((c = accept4(lsn, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (c >= FD_LIMIT) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
                    watch(EPOLL_CTL_ADD, c, EPOLLIN);
                }
            } else if (stuck[fd]) {
                flush(fd); /* EPOLLOUT, or HUP/ERR while waiting for it */
            } else {
                bounce(fd);
            }
        }
    }
}
