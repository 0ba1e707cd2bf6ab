/* hot vs cold: each query searched once (cold), then again at once (hot). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "quiver.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *readf(const char *p,int *d,int *n){FILE*f=fopen(p,"rb");int dd;fread(&dd,4,1,f);fseek(f,0,SEEK_END);long sz=ftell(f);*n=sz/(4+4*dd);*d=dd;float*x=malloc((size_t)*n*dd*4);fseek(f,0,SEEK_SET);for(int i=0;i<*n;i++){fread(&dd,4,1,f);fread(x+(size_t)i*dd,4,dd,f);}fclose(f);return x;}
int main(int c,char**v){qv_index*ix;if(qv_index_load(v[1],&ix)){printf("load %s\n",qv_last_error());return 1;}
 int d,n;float*q=readf(v[2],&d,&n);qv_search_params sp;qv_search_params_init(&sp,10);sp.ef=atoi(v[3]);sp.explore=atof(v[4]);
 int mode=atoi(v[5]);qv_hit h[10];size_t nh;double tc=0,th=0;
 for(int r=0;r<5;r++)for(int i=0;i<n;i++){double t0=now();qv_index_search(ix,q+(size_t)i*d,&sp,h,&nh);double t1=now();
  for(int z=0;z<mode;z++){qv_index_search(ix,q+(size_t)i*d,&sp,h,&nh);} double t2=now();tc+=t1-t0;th+=t2-t1;}
 printf("cold %.2f us  hot %.2f us\n",tc/(5*n)*1e6,th/(5*n)*1e6);return 0;}
