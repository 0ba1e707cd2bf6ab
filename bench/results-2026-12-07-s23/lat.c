#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t mb=atoi(argv[1]); int par=atoi(argv[2]);
  size_t n=mb*1024*1024/64; uint64_t *a=aligned_alloc(2<<20,(n*64+(2<<20)-1)/(2<<20)*(2<<20)); if(getenv("HUGE")) madvise(a,n*64,14);
  size_t *perm=malloc(n*sizeof(size_t)); for(size_t i=0;i<n;i++)perm[i]=i;
  srand(1); for(size_t i=n-1;i>0;i--){size_t j=((size_t)rand()*RAND_MAX+rand())%(i+1); size_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  for(size_t i=0;i<n;i++) a[perm[i]*8]=perm[(i+1)%n]*8;
  size_t p[32]; for(int k=0;k<par;k++)p[k]=perm[k*(n/par)]*8;
  size_t steps=20000000/par; 
  for(size_t s=0;s<steps/4;s++) for(int k=0;k<par;k++) p[k]=a[p[k]];
  double t0=now();
  for(size_t s=0;s<steps;s++) for(int k=0;k<par;k++) p[k]=a[p[k]];
  double t1=now(); size_t x=0; for(int k=0;k<par;k++)x+=p[k];
  printf("%zu MB par %d: %.1f ns per access, %.2f ns per line (x%zu)\n",mb,par,(t1-t0)/steps*1e9,(t1-t0)/steps/par*1e9,x%2);
}
