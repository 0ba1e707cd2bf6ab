/* l2sq at DIM over rows in L1/L2: ns per distance, the dispatched float kernel */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "core/distance.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv)
{
    size_t D = argc > 1 ? (size_t)atoi(argv[1]) : 128, n = 512;
    float *x = aligned_alloc(64, n * D * sizeof *x), *q = aligned_alloc(64, D * sizeof *q);
    for (size_t i = 0; i < n * D; i++) x[i] = (float)rand() / RAND_MAX;
    for (size_t i = 0; i < D; i++) q[i] = (float)rand() / RAND_MAX;
    const qv_kernels *k = qv_kernels_get();
    unsigned idx[4096];
    for (int i = 0; i < 4096; i++) idx[i] = rand() % n;
    double best = 1e9, s = 0;
    for (int r = 0; r < 9; r++) {
        double t0 = now();
        for (int it = 0; it < 500; it++)
            for (int i = 0; i < 4096; i++) s += k->l2sq(q, x + idx[i] * D, D);
        double t = (now() - t0) / (500.0 * 4096) * 1e9;
        if (t < best) best = t;
    }
    printf("%s D %zu: %.2f ns (%g)\n", k->name, D, best, s);
    return 0;
}
