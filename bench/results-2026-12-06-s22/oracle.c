/* expansions / rows / recall at ef with the normal start vs the true top-1 as the start */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "quiver.h"
extern uint32_t qv_x_start; extern size_t qv_x_exp, qv_x_rows;
static void *readv(const char *p,int *d,int *n,int es){FILE*f=fopen(p,"rb");int dd;fread(&dd,4,1,f);fseek(f,0,SEEK_END);long sz=ftell(f);*n=sz/(4+(long)es*dd);*d=dd;char*x=malloc((size_t)*n*dd*es);fseek(f,0,SEEK_SET);for(int i=0;i<*n;i++){fread(&dd,4,1,f);fread(x+(size_t)i*dd*es,es,dd,f);}fclose(f);return x;}
int main(int c,char**v){qv_index*ix;if(qv_index_load(v[1],&ix)){printf("load %s\n",qv_last_error());return 1;}
 int d,n,gd,gn;float*q=readv(v[2],&d,&n,4);int*gt=readv(v[3],&gd,&gn,4);
 float ex=atof(v[4]);
 for(int mode=0;mode<3;mode++) for(int ef=6;ef<=16;ef+=2){
  qv_search_params sp;qv_search_params_init(&sp,10);sp.ef=ef;sp.explore=ex;qv_hit h[10];size_t nh;
  qv_x_exp=qv_x_rows=0;long hit=0;
  for(int i=0;i<n;i++){ qv_x_start = mode==0?0xffffffffu:(uint32_t)gt[(size_t)i*gd+(mode==1?0:50)];
   qv_index_search(ix,q+(size_t)i*d,&sp,h,&nh);
   for(size_t a=0;a<nh;a++)for(int b=0;b<10;b++)if(h[a].id==(uint64_t)gt[(size_t)i*gd+b])hit++;}
  printf("%s ef %2d recall %.4f exp %.1f rows %.1f\n",mode==0?"normal":mode==1?"top1  ":"top51 ",ef,hit/(10.0*n),qv_x_exp/(double)n,qv_x_rows/(double)n);}
 return 0;}
