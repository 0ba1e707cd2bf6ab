/* Code kernels in cache, per row (session 16): "bits_kernel_microbench DIM TABLE [x4|one|u8]"
 * times one kernel table's dot_bits_x4 (four bit1 rows a call, the walk's case), dot_bits
 * (one row a call, the descent's) or dot_u8_x4 (four sq8 rows) on 256 rows that stay in
 * L1/L2; best of 7.
 * TABLE: scalar, avx2, avx512 (F+BW: Skylake-SP), avx512vnni (Cascade Lake) or
 * avx512vpopcnt (Ice Lake, Zen 4; before 036b47a this was the table named
 * avx512vnni, and "avx512vnni" here selected it). Build from the repository root against a
 * build's library:
 *   cc -O3 -Iinclude -I. bench/results-2026-12-06-s16/bits_kernel_microbench.c build/libquiver.a \
 *      -L/usr/local/cuda/lib64 -lcudart -lcublas -lstdc++ -lm -lpthread -lopenblas */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/alloc.h"
#include "core/code_dist.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv)
{
    unsigned D = argc > 1 ? (unsigned)atoi(argv[1]) : 512;
    const char *name = argc > 2 ? argv[2] : "avx512";
    int one = argc > 3 && strcmp(argv[3], "one") == 0, u8 = argc > 3 && strcmp(argv[3], "u8") == 0;
    const qv_code_kernels *t = strcmp(name, "scalar") == 0   ? qv_code_kernels_scalar()
                               : strcmp(name, "avx2") == 0   ? qv_code_kernels_avx2()
                               : strcmp(name, "avx512") == 0 ? qv_code_kernels_avx512()
                               : strcmp(name, "avx512vnni") == 0 ? qv_code_kernels_avx512vnni()
                                                                 : qv_code_kernels_avx512vpopcnt();
    if (!t) return fprintf(stderr, "%s: not on this CPU\n", name), 1;
    size_t words = u8 ? (D + 7) / 8 : (D + 63) / 64, n = 256;     /* u8: D bytes a row */
    uint64_t *rows = qv_aligned_calloc(n * words, 8), *planes = qv_aligned_calloc(4 * words, 8);  /* u8: the query */
    srand(1);
    for (size_t i = 0; i < n * words; i++) rows[i] = (uint64_t)rand() << 33 ^ (uint64_t)rand() << 11 ^ rand();
    for (size_t i = 0; i < 4 * words; i++) planes[i] = (uint64_t)rand() << 33 ^ (uint64_t)rand() << 11 ^ rand();
    uint32_t idx[1024];
    for (int i = 0; i < 1024; i++) idx[i] = (uint32_t)(rand() % n);
    double best = 1e9;
    uint64_t sum = 0;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
        for (int it = 0; it < 2000; it++)
            for (int i = 0; i < 1024; i += 4) {
                const uint64_t *r[4] = {rows + idx[i] * words, rows + idx[i + 1] * words, rows + idx[i + 2] * words,
                                        rows + idx[i + 3] * words};
                uint32_t d[4];
                if (u8) {
                    const uint8_t *c[4] = {(const uint8_t *)r[0], (const uint8_t *)r[1], (const uint8_t *)r[2],
                                           (const uint8_t *)r[3]};
                    t->dot_u8_x4(c, (const int8_t *)planes, D, (int32_t *)d);
                } else if (one)
                    for (int j = 0; j < 4; j++) d[j] = t->dot_bits(r[j], planes, words);
                else
                    t->dot_bits_x4(r, planes, words, d);
                sum += d[0] + d[1] + d[2] + d[3];
            }
        double el = (now() - t0) / (2000.0 * 1024) * 1e9;
        if (el < best) best = el;
    }
    printf("D %4u %-13s %s: %6.2f ns per row (check %llu)\n", D, t->name, u8 ? "u8 " : one ? "one" : "x4 ", best,
           (unsigned long long)sum);
    return 0;
}
