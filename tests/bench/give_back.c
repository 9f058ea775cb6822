/*
 * What giving a hibernating VU's pages back costs, one madvise per range against one
 * process_madvise for all of them (runner/src/plan/give_back.rs):
 *
 *     cc -O2 -o /tmp/give_back tests/bench/give_back.c && taskset -c 1 /tmp/give_back
 *
 * Each round writes 17 pages of one mapping (a VU's memory) and the top 5 pages of a 2 MiB
 * one (its host stack), then gives both back. Prints, for each way twice, the microseconds
 * per round spent writing the pages (which includes refaulting them and any TLB misses the
 * giving back left) and spent giving them back.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void) {
    const int rounds = 10000, memory_pages = 17, stack_pages = 5;
    const size_t page = 4096, stack_len = 2 << 20;
    char *memory = mmap(0, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *stack = mmap(0, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED || stack == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    char *stack_top = stack + stack_len - stack_pages * page;
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    for (int together = 0; together < 2; together++) {
        for (int repeat = 0; repeat < 2; repeat++) {
            double writing = 0, giving = 0;
            for (int i = 0; i < rounds; i++) {
                double t0 = now();
                for (int p = 0; p < memory_pages; p++) memory[p * page] = 1;
                for (int p = 0; p < stack_pages; p++) stack_top[p * page] = 1;
                double t1 = now();
                if (together) {
                    struct iovec ranges[2] = {{memory, memory_pages * page}, {stack, stack_len}};
                    if (syscall(SYS_process_madvise, pidfd, ranges, 2, MADV_DONTNEED, 0) < 0) {
                        perror("process_madvise");
                        return 1;
                    }
                } else {
                    madvise(memory, memory_pages * page, MADV_DONTNEED);
                    madvise(stack, stack_len, MADV_DONTNEED);
                }
                double t2 = now();
                writing += t1 - t0;
                giving += t2 - t1;
            }
            printf("%-20s writing %.2f us, giving back %.2f us per round\n",
                   together ? "1 process_madvise:" : "2 madvise:", writing / rounds * 1e6, giving / rounds * 1e6);
        }
    }
    return 0;
}
