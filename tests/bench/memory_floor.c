/*
 * What the kernel charges for a VU's memory, without the runner around it: the floor under
 * the start time's part without first requests (runner/src/plan/memories.rs), as
 * connect_floor.c is for connections.
 *
 *     cc -O2 -o /tmp/memory_floor tests/bench/memory_floor.c
 *     taskset -c 1 /tmp/memory_floor [file|holes] [HOT_PAGES] [SLOT_MIB]
 *
 * Makes 10,000 VU-like memories as the runner does for a Rust plan: in slots of SLOT_MIB
 * (default 8192: a 4 GiB reservation and its guard) taken from shared reservations made for
 * 64 at a time, one private mapping of a memfd (a 2 MiB stack room, then 272 pages of
 * memory, the image's data in pages 256-261); HOT_PAGES (default 6) of the pages a started
 * VU writes written in with one process_madvise (2 of the stack, then the memory's 255, 261,
 * 262 and 271); page 256 read, as the plan's code does; then the stack and the 17 pages
 * from the first present to the last given back, one call per VU.
 * `holes`: the stack room and the memory anonymous, the memfd mapped over the data pages
 * only (an mprotect and an mmap), to see whether a zero page costs less to write in than a
 * copy of the memfd's hole (it did not). Prints microseconds per VU for the mapping, the
 * writing in (with the read) and the giving back. Needs Linux 6.13+ (process_madvise of the
 * calling process with any advice).
 *
 * Measured on the AMD EPYC machine (Linux 6.18), 2026-12-01 (the machine's speed drifts by
 * 20 % between hours; compare in one sitting):
 *   file:  map 4.5-6.0, populate 13.7-17.6, give back 4.0-5.7, total 22.1-29.0 us per VU
 *   holes: map 8.1-8.3, populate 16.1-16.2, give back 5.8,     total 30.1-30.2 us
 *   file 1 hot page: populate 8.7-9.7 us (5.4 without the read); 6: 15.1-16.8
 *   file, 260 MiB slots (memories sharing page-table pages): total 22.1-22.7 against
 *   22.3-22.8 us with 8 GiB slots, run alternately.
 * and once more later with this program as it stands: file 25.95, holes 29.60, file with 1
 * hot page 18.93, file in 260 MiB slots 25.95 us per VU.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE 4096UL
#define ROOM 512
#define PAGES 272
#define VUS 10000
#define PER_RESERVATION 64

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    int holes = argc > 1 && strcmp(argv[1], "holes") == 0;
    int hot_count = argc > 2 ? atoi(argv[2]) : 6;
    size_t slot = (argc > 3 ? strtoul(argv[3], NULL, 10) : 8192) << 20;
    if (hot_count < 1 || hot_count > 6 || slot < (ROOM + PAGES) * PAGE + (2UL << 20)) {
        fprintf(stderr, "usage: %s [file|holes] [HOT_PAGES 1-6] [SLOT_MIB]\n", argv[0]);
        return 2;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    int memfd = memfd_create("image", 0);
    size_t len = (ROOM + PAGES) * PAGE;
    if (pidfd < 0 || memfd < 0 || ftruncate(memfd, (off_t)len) != 0) {
        perror("setup");
        return 1;
    }
    char data[PAGE];
    memset(data, 7, sizeof data);
    for (int page = ROOM + 256; page <= ROOM + 261; page++) {
        if (pwrite(memfd, data, PAGE, (off_t)(page * PAGE)) != (ssize_t)PAGE) {
            perror("image");
            return 1;
        }
    }
    static const int hot[] = {510, 511, ROOM + 255, ROOM + 261, ROOM + 262, ROOM + 271};
    char *reservation = NULL;
    double mapping = 0, populating = 0, giving_back = 0;
    for (int vu = 0; vu < VUS; vu++) {
        if (vu % PER_RESERVATION == 0) {
            reservation = mmap(NULL, slot * PER_RESERVATION, PROT_NONE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (reservation == MAP_FAILED) {
                perror("reserve");
                return 1;
            }
        }
        /* The memory 64 KiB past a 2 MiB boundary, its room below it, as the runner places them. */
        char *base = reservation + (vu % PER_RESERVATION) * slot + (2UL << 20) - (60UL << 10);
        double t0 = now();
        if (holes) {
            if (mprotect(base, len, PROT_READ | PROT_WRITE) != 0 ||
                mmap(base + (ROOM + 256) * PAGE, 6 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, memfd,
                     (off_t)((ROOM + 256) * PAGE)) == MAP_FAILED) {
                perror("map");
                return 1;
            }
        } else if (mmap(base, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, memfd, 0) == MAP_FAILED) {
            perror("map");
            return 1;
        }
        double t1 = now();
        struct iovec pages[6];
        for (int i = 0; i < hot_count; i++) {
            pages[i] = (struct iovec){base + hot[i] * PAGE, PAGE};
        }
        if (syscall(SYS_process_madvise, pidfd, pages, hot_count, MADV_POPULATE_WRITE, 0) < 0) {
            perror("populate");
            return 1;
        }
        (void)*(volatile char *)(base + (ROOM + 256) * PAGE);
        double t2 = now();
        struct iovec back[2] = {{base, ROOM * PAGE}, {base + (ROOM + 255) * PAGE, 17 * PAGE}};
        syscall(SYS_process_madvise, pidfd, back, 2, MADV_DONTNEED, 0);
        double t3 = now();
        mapping += t1 - t0;
        populating += t2 - t1;
        giving_back += t3 - t2;
    }
    printf("%s, %d hot pages, %zu MiB slots: map %.2f, populate %.2f, give back %.2f, total %.2f us per VU\n",
           holes ? "holes" : "file", hot_count, slot >> 20, mapping / VUS, populating / VUS, giving_back / VUS,
           (mapping + populating + giving_back) / VUS);
    return 0;
}
