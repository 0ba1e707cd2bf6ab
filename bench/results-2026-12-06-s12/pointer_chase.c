#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t mb=atoi(argv[1]); size_t n=mb*1024*1024/64;
  uint64_t *a=aligned_alloc(2<<20,(n*64+(2<<20)-1)/(2<<20)*(2<<20)); madvise(a,n*64,14);
  size_t *perm=malloc(n*sizeof*perm); for(size_t i=0;i<n;i++)perm[i]=i;
  srand(1); for(size_t i=n-1;i>0;i--){size_t j=((size_t)rand()*RAND_MAX+rand())%(i+1);size_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  for(size_t i=0;i<n;i++) a[perm[i]*8]=perm[(i+1)%n]*8;
  size_t p=perm[0]*8; size_t it=4000000; double t0=now();
  for(size_t i=0;i<it;i++) p=a[p];
  double t=now()-t0; printf("%zu MB: %.1f ns per dependent load (%zu)\n",mb,t/it*1e9,p);
}
