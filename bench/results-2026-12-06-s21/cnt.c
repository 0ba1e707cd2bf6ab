#include <stdio.h>
#include <stdlib.h>
#include "quiver.h"
extern unsigned long qv_cnt[8];
static float *readf(const char *p,int *d,int *n){FILE*f=fopen(p,"rb");int dd;fread(&dd,4,1,f);fseek(f,0,SEEK_END);long sz=ftell(f);*n=sz/(4+4*dd);*d=dd;float*x=malloc((size_t)*n*dd*4);fseek(f,0,SEEK_SET);for(int i=0;i<*n;i++){fread(&dd,4,1,f);fread(x+(size_t)i*dd,4,dd,f);}fclose(f);return x;}
int main(int c,char**v){qv_index*ix;if(qv_index_load(v[1],&ix)){printf("load %s\n",qv_last_error());return 1;}
 int d,n;float*q=readf(v[2],&d,&n);qv_search_params sp;qv_search_params_init(&sp,10);sp.ef=atoi(v[3]);sp.explore=atof(v[4]);
 qv_hit h[10];size_t nh;for(int i=0;i<n;i++)qv_index_search(ix,q+(size_t)i*d,&sp,h,&nh);
 const char*nm[]={"pops","sum nc at pop","cand pushes","res pushes","rows scored","final nc","final live"};
 for(int i=0;i<7;i++)printf("%-16s %.1f\n",nm[i],(double)qv_cnt[i]/n);return 0;}
