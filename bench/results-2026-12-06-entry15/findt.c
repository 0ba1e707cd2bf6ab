#include <stdio.h>
#include <time.h>
#include <pthread.h>
#include "quiver.h"
#include "index/hnsw.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv)
{
    qv_index *ix; if (qv_index_load(argv[1], &ix) != QV_OK) return 1;
    qv_hnsw *h = ix->impl;
    printf("dpad %u nclusters %u\n", h->codec->rot.dpad, h->codec->nclusters);
    pthread_mutex_lock(&h->write_lock);
    qv_hnsw_scratch *s = qv_hnsw_scratch_get(h);
    double t0 = now();
    for (int i = 0; i < 10; i++) qv_hnsw_starts_find(h, s);
    printf("find: %.2f ms\n", (now() - t0) / 10 * 1e3);
    qv_hnsw_scratch_put(h, s);
    pthread_mutex_unlock(&h->write_lock);
    return 0;
}
