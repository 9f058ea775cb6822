/*
 * What writing a new VU memory's hot pages in costs, one madvise(MADV_POPULATE_WRITE) per
 * run of pages against one process_madvise for all runs (runner/src/plan/give_back.rs,
 * `populate`): 3,000 rounds of 3 runs (2, 3 and 2 pages) in fresh mappings each way.
 *
 *     cc -O2 -o /tmp/populate tests/bench/populate.c && taskset -c 1 /tmp/populate
 *
 * Needs Linux 6.13+ (process_madvise of the calling process with any advice). Measured on
 * the AMD EPYC machine (Linux 6.18), three runs: 22.9-24.2 us per round with madvise,
 * 21.3-22.8 us with process_madvise (and 23.5 against 21.5 in a fourth).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int main(){
  long pg=4096; int pidfd=syscall(SYS_pidfd_open,getpid(),0);
  int N=3000; double t0,t1,t2;
  char **m=malloc(sizeof(char*)*N*2);
  for(int i=0;i<2*N;i++) m[i]=mmap(0,64*pg,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  t0=now();
  for(int i=0;i<N;i++){ madvise(m[i],2*pg,MADV_POPULATE_WRITE); madvise(m[i]+10*pg,3*pg,MADV_POPULATE_WRITE); madvise(m[i]+20*pg,2*pg,MADV_POPULATE_WRITE);}
  t1=now();
  long r=0;
  for(int i=N;i<2*N;i++){ struct iovec v[3]={{m[i],2*pg},{m[i]+10*pg,3*pg},{m[i]+20*pg,2*pg}}; r=syscall(SYS_process_madvise,pidfd,v,3,MADV_POPULATE_WRITE,0);}
  t2=now();
  printf("madvise x3: %.2f us/round; process_madvise: %.2f us/round (ret %ld)\n",(t1-t0)/N,(t2-t1)/N,r);
  unsigned char vec[64]; mincore(m[2*N-1],64*pg,vec); int c=0; for(int i=0;i<64;i++) c+=vec[i]&1; printf("resident %d\n",c);
}
