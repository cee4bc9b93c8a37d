/*
 * raw_udp_echo - the "nothing but system calls" floor for UDP echo.
 *
 * One thread, one blocking socket: recvmmsg takes up to BATCH datagrams in
 * one call (returning as soon as at least one is there), sendmmsg returns
 * each to its sender in one call. Socket buffers are raised to 4 MiB so a
 * burst is queued rather than dropped.
 *
 * compare.py's udp section floods it with `udp_echo flood` (64 datagrams in
 * flight) beside muxloop's udp_echo server: datagrams/s.
 *
 * Build: gcc -O2 -o raw_udp_echo raw_udp_echo.c
 * Run:   raw_udp_echo HOST PORT [BATCH]       (BATCH 1..64, default 32)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MOST 64          /* largest batch */
#define DATAGRAM 65536   /* room for any UDP payload */

static char space[MOST][DATAGRAM];
static struct sockaddr_in from[MOST];
static struct iovec parts[MOST];
static struct mmsghdr msgs[MOST];

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s HOST PORT [BATCH]\n", argv[0]); return 2; }
    int batch = argc > 3 ? atoi(argv[3]) : 32;
    if (batch < 1 || batch > MOST) batch = 32;
    struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &at.sin_addr) != 1) { fprintf(stderr, "bad IPv4 address %s\n", argv[1]); return 2; }

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int four_mib = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &four_mib, sizeof four_mib);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &four_mib, sizeof four_mib);
    if (bind(fd, (struct sockaddr *)&at, sizeof at) < 0) { perror("bind"); return 1; }
    printf("listening on %s:%s\n", argv[1], argv[2]);
    fflush(stdout);

    for (;;) {
        /* recvmmsg overwrites lengths and address sizes: set them up every time. */
        for (int i = 0; i < batch; i++) {
            parts[i] = (struct iovec){ .iov_base = space[i], .iov_len = DATAGRAM };
            msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof from[i],
                                               .msg_iov = &parts[i], .msg_iovlen = 1 };
        }
        int got = recvmmsg(fd, msgs, (unsigned)batch, MSG_WAITFORONE, NULL);
        if (got < 0) {
            if (errno == EINTR) continue;
            perror("recvmmsg");
            return 1;
        }
        for (int i = 0; i < got; i++) parts[i].iov_len = msgs[i].msg_len; /* send back what came */
        for (int done = 0; done < got;) {
            int sent = sendmmsg(fd, msgs + done, (unsigned)(got - done), 0);
            done += sent > 0 ? sent : 1; /* one the kernel refuses is dropped, as on a wire */
        }
    }
}
