#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
/* nodes of 1024 bytes; each step reads L lines of the node (all independent of each other), the first holds the next pointer */
int main(int argc,char**argv){
  size_t mb=atoi(argv[1]); int par=atoi(argv[2]); int L=atoi(argv[3]); int pf=argc>4?atoi(argv[4]):0;
  size_t n=mb*1024*1024/1024; char *a=aligned_alloc(2<<20,(n*1024+(2<<20)-1)/(2<<20)*(2<<20)); madvise(a,n*1024,14);
  size_t *perm=malloc(n*sizeof(size_t)); for(size_t i=0;i<n;i++)perm[i]=i;
  srand(1); for(size_t i=n-1;i>0;i--){size_t j=((size_t)rand()*RAND_MAX+rand())%(i+1); size_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  for(size_t i=0;i<n;i++){ for(int l=0;l<16;l++) *(uint64_t*)(a+perm[i]*1024+64*l)=0; *(uint64_t*)(a+perm[i]*1024)=perm[(i+1)%n]*1024; }
  size_t p[64]; for(int k=0;k<par;k++)p[k]=perm[k*(n/par)]*1024;
  size_t steps=4000000/par; uint64_t x=0;
  double t0=now();
  for(size_t s=0;s<steps;s++) for(int k=0;k<par;k++){ const char*b=a+p[k]; uint64_t nx=*(uint64_t*)b; for(int l=1;l<L;l++) nx+=*(uint64_t*)(b+64*l); p[k]=nx; }
  double t1=now(); for(int k=0;k<par;k++)x+=p[k];
  printf("%zu MB par %d lines %d: %.2f ns per node (%d)\n",mb,par,L,(t1-t0)/steps/par*1e9,(int)(x&1));
}
