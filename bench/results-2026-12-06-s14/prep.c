#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "core/alloc.h"
#include "index/codec.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv)
{
    unsigned D = argc > 1 ? atoi(argv[1]) : 512;
    size_t n = 4096;
    float *x = malloc(n * D * sizeof *x);
    for (size_t i = 0; i < n * D; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    qv_codec *c;
    if (qv_codec_new(QV_QUANT_BIT1, D, QV_METRIC_L2, 1, &c) != QV_OK) return 1;
    if (qv_codec_train(c, n, x) != QV_OK) return 2;
    float *scratch = malloc(qv_codec_scratch_floats(c) * sizeof(float) * 4);
    void *qb = qv_aligned_calloc(1, c->query_bytes + 64);
    qv_codec_query *qq;
    int N = 100000;
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (int r = 0; r < N; r++) qv_codec_query_prepare(c, x + (size_t)(r % 64) * D, qb, scratch, &qq);
        double t = (now() - t0) / N * 1e9;
        if (t < best) best = t;
    }
    printf("dim %u: query prepare %.0f ns (best of 5)\n", D, best);
    return 0;
}
