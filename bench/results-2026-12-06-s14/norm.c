#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
void qv_normalize(float *v, size_t dim);
static void old_norm(float *v, size_t dim)
{
    double nsq = 0.0;
    for (size_t i = 0; i < dim; i++) nsq += (double)v[i] * (double)v[i];
    if (!(nsq > 0.0)) return;
    double inv = 1.0 / sqrt(nsq);
    for (size_t i = 0; i < dim; i++) v[i] = (float)((double)v[i] * inv);
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void)
{
    size_t dims[] = {100, 384, 512, 784, 1536};
    float v[1536], w[1536];
    for (int d = 0; d < 5; d++) {
        size_t D = dims[d];
        for (size_t i = 0; i < D; i++) v[i] = (float)rand() / RAND_MAX - 0.5f;
        int N = 200000;
        double t0 = now();
        for (int r = 0; r < N; r++) { memcpy(w, v, D * 4); old_norm(w, D); }
        double t1 = now();
        for (int r = 0; r < N; r++) { memcpy(w, v, D * 4); qv_normalize(w, D); }
        double t2 = now();
        printf("dim %zu: old %.0f ns, new %.0f ns\n", D, (t1 - t0) / N * 1e9, (t2 - t1) / N * 1e9);
    }
    return 0;
}
