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
    size_t rb = (c->row_bytes + 63) & ~(size_t)63;
    uint8_t *rows = qv_aligned_calloc(n, rb);
    float *scratch = malloc(qv_codec_scratch_floats(c) * sizeof(float) * 4);
    for (size_t i = 0; i < n; i++) qv_codec_encode(c, x + i * D, rows + i * rb, scratch);
    void *qb = qv_aligned_calloc(1, c->query_bytes + 64);
    qv_codec_query *qq;
    qv_codec_query_prepare(c, x, qb, scratch, &qq);
    uint32_t idx[1024];
    for (int i = 0; i < 1024; i++) idx[i] = rand() % 256;   /* 256 rows: L1/L2 resident */
    double best = 1e9, sum = 0;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
        for (int it = 0; it < 2000; it++)
            for (int i = 0; i < 1024; i += 4) {
                const uint8_t *r[4] = {rows + idx[i] * rb, rows + idx[i + 1] * rb, rows + idx[i + 2] * rb, rows + idx[i + 3] * rb};
                float e[4], b[4];
                qv_codec_est_bound_x4(c, qq, r, e, b);
                sum += e[0] + e[1] + e[2] + e[3] + b[0] + b[1] + b[2] + b[3];
            }
        double t = (now() - t0) / (2000.0 * 1024) * 1e9;
        if (t < best) best = t;
    }
    printf("D %u: %.2f ns per row (est+bound), check %g\n", D, best, sum);
    return 0;
}
