/*
 * libevent_ring - libevent's classic dispatch benchmark (the method of its
 * test/bench.c), the same workload as muxloop's `backends` example.
 *
 * N socket pairs; the read end of each is registered with libevent for
 * reading (persistent events, registered once, outside any timing). A run
 * drops A one-byte tokens into evenly spaced pairs; whenever a pair's read
 * callback takes a token it writes one into the next pair of the ring, until
 * W such writes have been made. Only this passing is timed: the loop is
 * driven with non-blocking single dispatches until every token written has
 * been read. With A=1 a single fd is ready at a time, so what grows with N is
 * the cost of the backend itself (select/poll scan all N, epoll does not).
 *
 * Output, one line per run (compare.py takes the median of the us= values):
 *     <method> n=<N> a=<A> w=<W> us=<microseconds>
 * libevent's select backend aborts once an fd reaches FD_SETSIZE (1024);
 * compare.py reports that as "aborts".
 *
 * Build: gcc -O2 -o libevent_ring libevent_ring.c -levent_core
 * Run:   libevent_ring [-n pairs] [-a active] [-w writes] [-r runs] [-m epoll|poll|select]
 *        (defaults: -n 100 -a 1 -w 100 -r 25, libevent's default method)
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int pairs = 100;
static int *rd, *wr;                /* read and write end of each pair */
static long tokens_read, tokens_written, writes_left;

static void take_token(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    long me = (long)arg;
    char token;
    if (recv(fd, &token, 1, 0) == 1) tokens_read++;
    if (writes_left > 0 && send(wr[(me + 1) % pairs], "e", 1, 0) == 1) {
        writes_left--;
        tokens_written++;
    }
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* One timed run: returns microseconds. */
static long ring_run(struct event_base *base, int active, int writes) {
    int spacing = pairs / (active > 0 ? active : 1);
    if (spacing < 1) spacing = 1;
    tokens_read = tokens_written = 0;
    writes_left = writes;
    for (int a = 0; a < active && a < pairs; a++)
        if (send(wr[a * spacing], "e", 1, 0) == 1) tokens_written++;
    double start = now_us();
    while (tokens_read != tokens_written) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    return (long)(now_us() - start);
}

int main(int argc, char **argv) {
    int active = 1, writes = 100, runs = 25, opt;
    const char *method = NULL;
    while ((opt = getopt(argc, argv, "n:a:w:r:m:")) != -1) {
        if (opt == 'n') pairs = atoi(optarg);
        else if (opt == 'a') active = atoi(optarg);
        else if (opt == 'w') writes = atoi(optarg);
        else if (opt == 'r') runs = atoi(optarg);
        else if (opt == 'm') method = optarg;
        else { fprintf(stderr, "usage: %s [-n pairs] [-a active] [-w writes] [-r runs] [-m method]\n", argv[0]); return 2; }
    }
    if (pairs < 1) { fprintf(stderr, "-n must be at least 1\n"); return 2; }

    /* Two fds per pair plus some slack: raise the soft limit if we must. */
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    rlim_t want = (rlim_t)pairs * 2 + 64;
    if (lim.rlim_cur < want) {
        if (lim.rlim_max < want) { fprintf(stderr, "%d pairs need %lu fds, the hard limit is %lu\n", pairs, (unsigned long)want, (unsigned long)lim.rlim_max); return 1; }
        lim.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &lim);
    }

    struct event_config *cfg = event_config_new();
    if (method)
        for (const char **m = event_get_supported_methods(); *m; m++)
            if (strcmp(*m, method) != 0) event_config_avoid_method(cfg, *m);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base) { fprintf(stderr, "libevent has no usable method %s\n", method ? method : "(default)"); return 1; }

    rd = calloc((size_t)pairs, sizeof *rd);
    wr = calloc((size_t)pairs, sizeof *wr);
    for (long i = 0; i < pairs; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) { perror("socketpair"); return 1; }
        rd[i] = sv[0];
        wr[i] = sv[1];
        event_add(event_new(base, rd[i], EV_READ | EV_PERSIST, take_token, (void *)i), NULL);
    }
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* let the backend take the registrations in */

    for (int r = 0; r < runs; r++) {
        printf("%s n=%d a=%d w=%d us=%ld\n", event_base_get_method(base), pairs, active, writes, ring_run(base, active, writes));
        fflush(stdout);
    }
    return 0;
}
