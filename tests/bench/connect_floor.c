/*
 * What this machine's kernel charges for opening connections, without any load tool around
 * it: the floor under the benchmark's start-time figure (tests/bench/run.sh).
 *
 *     connect_floor PORT COUNT [request] [defer]
 *
 * Opens COUNT blocking TCP connections to 127.0.0.1:PORT one after the other and keeps them
 * open; with `request`, sends `GET /` on each and reads the response before the next. With
 * `defer`, each socket has TCP_DEFER_ACCEPT, which holds the handshake's last ACK back to go
 * with the request: one segment less per connection (counted on 2026-12-01 with Tcp OutSegs
 * of /proc/net/snmp around 2,000 connections with requests: 13,725 against 16,000), but its
 * CPU was within the noise (12 alternating runs of 8,000: medians 42.8 against 44.9 us,
 * runs 39-54 us), so the runner does not set it. Prints
 * one line: "COUNT connections: WALL s wall, CPU s CPU, US us of CPU each". Then resets them
 * (SO_LINGER 0), so that they leave no TIME_WAIT sockets behind: with thousands of those
 * to the same address, the kernel's search for a free local port makes the next run's
 * connects several times dearer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT COUNT [request] [defer]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int count = atoi(argv[2]);
    int request = 0, defer = 0;
    for (int i = 3; i < argc; i++) {
        request |= strcmp(argv[i], "request") == 0;
        defer |= strcmp(argv[i], "defer") == 0;
    }
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_port = htons((unsigned short)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char get[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[4096];
    int *fds = calloc((size_t)(count > 0 ? count : 1), sizeof *fds);
    if (fds == NULL) {
        perror("calloc");
        return 1;
    }

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            perror("socket");
            return 1;
        }
        fds[i] = fd;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (defer) {
            setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
        }
        if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
            perror("connect");
            return 1;
        }
        if (request) {
            if (write(fd, get, sizeof get - 1) != (ssize_t)(sizeof get - 1) || read(fd, buf, sizeof buf) <= 0) {
                perror("request");
                return 1;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    double wall = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    printf("%d connections: %.3f s wall, %.3f s CPU, %.1f us of CPU each\n", count, wall, cpu, cpu / count * 1e6);
    struct linger reset = {1, 0};
    for (int i = 0; i < count; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fds[i]);
    }
    free(fds);
    return 0;
}
