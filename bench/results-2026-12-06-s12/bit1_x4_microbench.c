/* bit1 four-way scoring in cache (session 12): "bit1_x4_microbench DIM [kernel]" times
 * qv_codec_est_bound_x4, or with "kernel" the popcount kernel alone, per row.
 * Build from the repository root:
 *   cc -O3 -Iinclude -I. bench/results-2026-12-06-s12/bit1_x4_microbench.c build/libquiver.a \
 *      -L/usr/local/cuda/lib64 -lcudart -lcublas -lstdc++ -lm -lpthread -lopenblas */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include "core/alloc.h"
#include "index/codec.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv)
{
    unsigned D = argc > 1 ? atoi(argv[1]) : 512;
    int kernel_only = argc > 2 && strcmp(argv[2], "kernel") == 0;
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
                if (kernel_only) {
                    const uint64_t *bb[4] = {(const uint64_t *)r[0], (const uint64_t *)r[1], (const uint64_t *)r[2],
                                             (const uint64_t *)r[3]};
                    uint32_t dd[4];
                    c->k->dot_bits_x4(bb, qq->data, qq->words, dd);
                    for (int t = 0; t < 4; t++) e[t] = (float)dd[t], b[t] = 0;
                } else {
                    qv_codec_est_bound_x4(c, qq, r, e, b);
                }
                sum += e[0] + e[1] + e[2] + e[3] + b[0] + b[1] + b[2] + b[3];
            }
        double t = (now() - t0) / (2000.0 * 1024) * 1e9;
        if (t < best) best = t;
    }
    printf("D %u: %.2f ns per row (%s), check %g\n", D, best, kernel_only ? "kernel" : "est+bound", sum);
    return 0;
}
