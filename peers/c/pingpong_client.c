/*
 * pingpong_client - muduo's "pingpong" throughput method as a load tool that
 * shares no code with any server it measures.
 *
 * S sessions (TCP connections) each send one block of B bytes; from then on
 * every byte the server echoes back is sent to it again, so each session
 * keeps exactly B bytes bouncing. After D seconds it prints the bytes
 * received per second over all sessions, and how many sessions failed
 * (refused, reset or closed by the server). One thread, one epoll set.
 *
 * Output, one line (compare.py reads MiB/s= and failed=; secs= is the time
 * actually measured):
 *     sessions=<S> block=<B> secs=<elapsed> MiB/s=<rate> failed=<count>
 * Exit status 1 when a session failed, 0 otherwise.
 *
 * Build: gcc -O2 -o pingpong_client pingpong_client.c
 * Run:   pingpong_client HOST PORT SESSIONS BLOCK SECONDS
 *        e.g. pingpong_client 127.0.0.1 9100 100 16384 10
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct session {
    int fd;         /* -1 once failed */
    size_t owed;    /* bytes received but not yet sent back (kernel send buffer full) */
    int want_out;   /* watching for EPOLLOUT (while owing) rather than EPOLLIN */
    char *buf;      /* BLOCK bytes: never more than that is in flight */
};

static int ep;
static size_t block;
static int failures;

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Watch for EPOLLOUT while the session owes bytes, else EPOLLIN; a system call only on a change. */
static void set_interest(struct session *s) {
    int out = s->owed > 0;
    if (out == s->want_out) return;
    s->want_out = out;
    struct epoll_event e = { .events = out ? EPOLLOUT : EPOLLIN, .data.ptr = s };
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
}

static void fail(struct session *s) {
    close(s->fd);
    s->fd = -1;
    failures++;
}

/* Send what the session owes; returns 0 if the session failed. */
static int pay(struct session *s) {
    size_t off = 0;
    while (off < s->owed) {
        ssize_t n = send(s->fd, s->buf + off, s->owed - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) { fail(s); return 0; }
        off += (size_t)n;
    }
    memmove(s->buf, s->buf + off, s->owed - off);
    s->owed -= off;
    set_interest(s); /* stop reading while we owe bytes */
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s HOST PORT SESSIONS BLOCK SECONDS\n", argv[0]); return 2; }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) { fprintf(stderr, "bad IPv4 address %s\n", argv[1]); return 2; }
    int count = atoi(argv[3]);
    block = (size_t)atol(argv[4]);
    double secs = atof(argv[5]);
    if (count < 1 || block < 1 || secs <= 0) { fprintf(stderr, "SESSIONS, BLOCK and SECONDS must be positive\n"); return 2; }

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct session *all = calloc((size_t)count, sizeof *all);
    int yes = 1;
    for (int i = 0; i < count; i++) { /* connect (blocking), then switch to non-blocking */
        struct session *s = &all[i];
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&to, sizeof to) < 0) {
            perror("connect");
            fail(s);
            continue;
        }
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
        fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
        s->buf = malloc(block);
        memset(s->buf, 'p', block);
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = s };
        epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
    }

    double start = seconds_now(), stop = start + secs;
    for (int i = 0; i < count; i++) /* serve: the first block of every session */
        if (all[i].fd >= 0) { all[i].owed = block; pay(&all[i]); }

    unsigned long long received = 0;
    struct epoll_event ready[1024];
    double t;
    while ((t = seconds_now()) < stop) {
        int wait_ms = (int)((stop - t) * 1000) + 1;
        int n = epoll_wait(ep, ready, 1024, wait_ms < 100 ? wait_ms : 100);
        for (int i = 0; i < n; i++) {
            struct session *s = ready[i].data.ptr;
            if (s->fd < 0) continue;
            if (s->owed) { pay(s); continue; }
            ssize_t got = recv(s->fd, s->buf, block, 0);
            if (got < 0 && errno == EAGAIN) continue;
            if (got <= 0) { fail(s); continue; }
            received += (unsigned long long)got;
            s->owed = (size_t)got;
            pay(s);
        }
    }
    double elapsed = seconds_now() - start;
    printf("sessions=%d block=%zu secs=%.2f MiB/s=%.1f failed=%d\n",
           count, block, elapsed, received / elapsed / 1048576.0, failures);
    return failures ? 1 : 0;
}
