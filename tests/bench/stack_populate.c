/*
 * Whether writing a new host stack's top pages in ahead (one madvise(MADV_POPULATE_WRITE))
 * beats letting them fault in one by one as the VU's first call touches them
 * (runner/src/plan/stacks.rs): 3,000 fresh 2 MiB mappings each way, P top pages each
 * (3 by default: what a VU's start touches, counted with `perf record -e page-faults -d`).
 *
 *     cc -O2 -o /tmp/stack_populate tests/bench/stack_populate.c && taskset -c 1 /tmp/stack_populate 3
 *
 * Measured on the AMD EPYC machine (Linux 6.18), three rounds: 3 pages 8.5-9.6 us per stack
 * by faults, 7.7-8.1 us populated; 4 pages 10.7-11.0 against 9.2-9.9. Most of a fault's
 * cost is the page itself (allocating, zeroing, charging it), which populating pays too.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    const long pg = 4096, len = 512 * pg;
    const int n = 3000, pages = argc > 1 ? atoi(argv[1]) : 3;
    char **m = malloc(sizeof(char *) * n * 2);
    for (int i = 0; i < 2 * n; i++) {
        m[i] = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m[i] == MAP_FAILED) { perror("mmap"); return 1; }
    }
    for (int round = 0; round < 3; round++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            char *top = m[i] + len;
            for (int k = 1; k <= pages; k++) top[-k * pg] = 1;
        }
        double t1 = now();
        for (int i = n; i < 2 * n; i++) {
            char *top = m[i] + len;
            madvise(top - pages * pg, pages * pg, MADV_POPULATE_WRITE);
            for (int k = 1; k <= pages; k++) top[-k * pg] = 1;
        }
        double t2 = now();
        printf("%d pages: faults %.2f us, populated %.2f us per stack\n", pages, (t1 - t0) / n, (t2 - t1) / n);
        for (int i = 0; i < 2 * n; i++) madvise(m[i], len, MADV_DONTNEED);
    }
    return 0;
}
