#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
/* nodes of 256 bytes; the chase pointer sits at offset OFF (0 or 64); mode 1: also read the next line */
int main(int argc,char**argv){
  size_t mb=atoi(argv[1]); int par=atoi(argv[2]); int off=atoi(argv[3]); int two=atoi(argv[4]);
  size_t n=mb*1024*1024/256; char *a=aligned_alloc(2<<20,(n*256+(2<<20)-1)/(2<<20)*(2<<20)); madvise(a,n*256,14);
  size_t *perm=malloc(n*sizeof(size_t)); for(size_t i=0;i<n;i++)perm[i]=i;
  srand(1); for(size_t i=n-1;i>0;i--){size_t j=((size_t)rand()*RAND_MAX+rand())%(i+1); size_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  for(size_t i=0;i<n;i++){ *(uint64_t*)(a+perm[i]*256+off)=perm[(i+1)%n]*256+off; *(uint64_t*)(a+perm[i]*256+off+64)=0; }
  size_t p[32]; for(int k=0;k<par;k++)p[k]=perm[k*(n/par)]*256+off;
  size_t steps=8000000/par; uint64_t x=0;
  double t0=now();
  for(size_t s=0;s<steps;s++) for(int k=0;k<par;k++){ uint64_t nx=*(uint64_t*)(a+p[k]); if(two) nx+=*(uint64_t*)(a+p[k]+64); p[k]=nx; }
  double t1=now(); for(int k=0;k<par;k++)x+=p[k];
  printf("%zu MB par %d off %d two %d: %.2f ns per node (%d)\n",mb,par,off,two,(t1-t0)/steps/par*1e9,(int)(x&1));
}
