/*
 * libevent_echo - a TCP echo server written the way a libevent user writes
 * one: an evconnlistener hands each connection to a bufferevent on a single
 * event_base, and the read callback moves the whole input buffer into the
 * output buffer. No tuning beyond TCP_NODELAY.
 *
 * It stands for "a mature C event library" in the echo section (MiB/s and
 * CPU per MiB under pingpong_client) and in the memory section (RSS per idle
 * connection). The optional METHOD (epoll, poll, select) forces libevent's
 * backend; without it libevent picks its default (epoll on Linux).
 *
 * Build: gcc -O2 -o libevent_echo libevent_echo.c -levent_core
 * Run:   libevent_echo [HOST] [PORT] [METHOD]     (default 127.0.0.1 9101)
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void echo_back(struct bufferevent *bev, void *unused) {
    (void)unused;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void on_status(struct bufferevent *bev, short what, void *unused) {
    (void)unused;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev); /* closes the socket */
}

static void on_connection(struct evconnlistener *lsn, evutil_socket_t fd, struct sockaddr *peer, int len, void *base) {
    (void)lsn; (void)peer; (void)len;
    int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) { evutil_closesocket(fd); return; }
    bufferevent_setcb(bev, echo_back, NULL, on_status, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* An event_base on METHOD only (NULL: libevent's choice): avoid every other method. */
static struct event_base *base_for(const char *method) {
    struct event_config *cfg = event_config_new();
    if (method)
        for (const char **m = event_get_supported_methods(); *m; m++)
            if (strcmp(*m, method) != 0) event_config_avoid_method(cfg, *m);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 9101;
    const char *method = argc > 3 ? argv[3] : NULL;
    signal(SIGPIPE, SIG_IGN); /* a client that resets must not kill us */

    struct event_base *base = base_for(method);
    if (!base) { fprintf(stderr, "libevent has no usable method %s\n", method ? method : "(default)"); return 1; }
    struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    if (inet_pton(AF_INET, host, &at.sin_addr) != 1) { fprintf(stderr, "bad IPv4 address %s\n", host); return 2; }
    struct evconnlistener *lsn = evconnlistener_new_bind(base, on_connection, base,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096, (struct sockaddr *)&at, sizeof at);
    if (!lsn) { perror("bind/listen"); return 1; }
    printf("listening on %s:%d (dispatcher: %s)\n", host, port, event_base_get_method(base));
    fflush(stdout);
    event_base_dispatch(base);
    return 0;
}
