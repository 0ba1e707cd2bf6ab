/*
 * gpu/check/gpu_check.c -- `make gpu-check`: correctness and timing of the GPU part on a
 * machine with CUDA but without OpenBLAS, LMDB, libevent, jansson or check. It links
 * only gpu/ and core/error.c + core/alloc.c; its CPU references (brute-force top-k in
 * double, a multithreaded k-means) are written here with pthreads.
 *
 * Steps (each prints one line; the summary table is printed last, by torch_bench.py
 * when Python is there, else by this program with --table):
 *   1. fresh random data (seed printed), n x dim uniform [0,1), nq queries;
 *   2. cuBLAS SGEMM alone over the same tiles as the search (QV_GPU_KNN_GEMM_ONLY);
 *   3. exact batch search, k = 10 and 100 (FP32; medians of three, also for a few other
 *      tilings, each against its own SGEMM time), checked on a sample of queries against
 *      a double-precision brute force: ||gpu - ref|| / ||ref|| <= 1e-4 over the
 *      distances, identical rows except ties; TF32 and FP16 timed with recall@10 against
 *      the FP32 result; the host-streamed database timed once;
 *   4. sift-debian-100k (if found): recall@10 of exact search against groundtruth.ivecs
 *      must be 1.0 (a returned row whose exact distance equals the 10th true distance
 *      counts: ties); GPU IVF (GPU k-means, nprobe 8 and 32) recall and time;
 *   5. GPU k-means against the CPU k-means here, same start, same iterations.
 * Exit status: 0 all checks passed, 1 a check failed, 2 no usable device (nothing
 * measured; the message says why).
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gpu/gpu.h"
#include "gpu/gpu_internal.h"

typedef struct {
    size_t n, nq, dim, check_q, km_n, km_k, km_iters, sift_q;
    int small;                                   /* --small: the CPU emulation */
    const char *data_dir, *results;
    uint64_t seed;
} config;

static int failures;
static FILE *results;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void result(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(const char *key, const char *fmt, ...)
{
    va_list ap;
    if (!results) return;
    fprintf(results, "%s\t", key);
    va_start(ap, fmt);
    vfprintf(results, fmt, ap);
    va_end(ap);
    fputc('\n', results);
    fflush(results);
}

static void check(int ok, const char *what)
{
    printf("  %-58s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) failures++;
}

static void die_rc(int rc, const char *what)
{
    fprintf(stderr, "gpu-check: %s: %s: %s\n", what, qv_strerror(rc), qv_last_error());
    exit(1);
}
#define TRY(call) do { int rc_ = (call); if (rc_ != QV_OK) die_rc(rc_, #call); } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "gpu-check: out of host memory (%zu bytes)\n", n); exit(1); }
    return p;
}

/* ---- a parallel-for over pthreads ------------------------------------------------------ */

typedef void (*range_fn)(void *arg, size_t begin, size_t end);
typedef struct { range_fn fn; void *arg; size_t begin, end; } range_job;

static void *range_main(void *p)
{
    range_job *j = p;
    j->fn(j->arg, j->begin, j->end);
    return NULL;
}

static void parallel(size_t n, range_fn fn, void *arg)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt = nc > 0 ? (size_t)nc : 1;
    if (nt > 64) nt = 64;
    if (nt > n) nt = n ? n : 1;
    pthread_t th[64];
    range_job jobs[64];
    int started[64];
    for (size_t t = 0; t < nt; t++) {
        jobs[t].fn = fn;
        jobs[t].arg = arg;
        jobs[t].begin = n * t / nt;
        jobs[t].end = n * (t + 1) / nt;
        started[t] = pthread_create(&th[t], NULL, range_main, &jobs[t]) == 0;
        if (!started[t]) range_main(&jobs[t]);      /* no thread: run it here */
    }
    for (size_t t = 0; t < nt; t++)
        if (started[t]) pthread_join(th[t], NULL);
}

/* ---- data ---------------------------------------------------------------------------------- */

typedef struct { float *v; size_t dim; uint64_t seed; } fill_arg;

static void fill_range(void *p, size_t b, size_t e)
{
    fill_arg *a = p;
    for (size_t i = b; i < e; i++) {
        uint64_t s = a->seed ^ (0x9E3779B97F4A7C15ull * (i + 1));
        for (size_t j = 0; j < a->dim; j++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            a->v[i * a->dim + j] = (float)(s >> 40) * (1.0f / 16777216.0f);
        }
    }
}

static float *random_data(size_t n, size_t dim, uint64_t seed)
{
    fill_arg a = {xmalloc(n * dim * sizeof(float)), dim, seed};
    parallel(n, fill_range, &a);
    return a.v;
}

static float *read_vecs(const char *path, size_t *n, size_t *dim, int ints)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int32_t d = 0;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 65536) { fclose(f); return NULL; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rec = 4 + (size_t)d * 4, cnt = (size_t)sz / rec;
    float *v = xmalloc(cnt * (size_t)d * 4);
    for (size_t i = 0; i < cnt; i++) {
        int32_t dd;
        if (fread(&dd, 4, 1, f) != 1 || dd != d || fread(v + i * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
            fclose(f);
            free(v);
            return NULL;
        }
    }
    fclose(f);
    (void)ints;                                   /* ivecs: the int32 bits are kept */
    *n = cnt;
    *dim = (size_t)d;
    return v;
}

/* ---- CPU references ------------------------------------------------------------------------ */

typedef struct {
    const float *x, *q;
    size_t n, dim, k;
    double *dist;                                /* nq*k, ascending */
    int64_t *rows;
} ref_arg;

static void ref_range(void *p, size_t b, size_t e)
{
    ref_arg *a = p;
    for (size_t qi = b; qi < e; qi++) {
        double *bd = a->dist + qi * a->k;
        int64_t *br = a->rows + qi * a->k;
        size_t len = 0;
        const float *q = a->q + qi * a->dim;
        for (size_t i = 0; i < a->n; i++) {
            const float *x = a->x + i * a->dim;
            double s = 0.0;
            for (size_t j = 0; j < a->dim; j++) {
                double d = (double)q[j] - (double)x[j];
                s += d * d;
            }
            if (len == a->k && s >= bd[len - 1]) continue;   /* ties keep the smaller row */
            size_t pos = len < a->k ? len++ : a->k - 1;
            while (pos > 0 && bd[pos - 1] > s) {
                bd[pos] = bd[pos - 1];
                br[pos] = br[pos - 1];
                pos--;
            }
            bd[pos] = s;
            br[pos] = (int64_t)i;
        }
    }
}

static double exact_l2(const float *a, const float *b, size_t dim)
{
    double s = 0.0;
    for (size_t j = 0; j < dim; j++) {
        double d = (double)a[j] - (double)b[j];
        s += d * d;
    }
    return s;
}

/* Multithreaded Lloyd k-means, same rules as the GPU one (ties to the smaller centroid,
 * empty clusters take the farthest points, objective of the last assignment). */
typedef struct {
    const float *x, *c;
    size_t n, dim, k;
    float *cn;
    unsigned *assign;
    float *dist;
} km_arg;

static void km_assign(void *p, size_t b, size_t e)
{
    km_arg *a = p;
    const size_t dim = a->dim;
    for (size_t i = b; i < e; i++) {
        const float *x = a->x + i * dim;
        float xn = 0.0f, best = INFINITY;
        unsigned bi = 0;
        for (size_t j = 0; j < dim; j++) xn += x[j] * x[j];
        for (size_t c = 0; c < a->k; c++) {
            const float *cc = a->c + c * dim;
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            size_t j = 0;
            for (; j + 8 <= dim; j += 8)
                for (int t = 0; t < 8; t++) acc[t] += x[j + t] * cc[j + t];
            float dot = 0.0f;
            for (; j < dim; j++) dot += x[j] * cc[j];
            for (int t = 0; t < 8; t++) dot += acc[t];
            float d = xn - 2.0f * dot + a->cn[c];
            if (d < best) { best = d; bi = (unsigned)c; }
        }
        a->assign[i] = bi;
        a->dist[i] = best < 0.0f ? 0.0f : best;
    }
}

static const float *far_dist;               /* for cmp_far_idx (one k-means at a time) */
static int cmp_far_idx(const void *pa, const void *pb)
{
    unsigned a = *(const unsigned *)pa, b = *(const unsigned *)pb;
    if (far_dist[a] != far_dist[b]) return far_dist[a] > far_dist[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

static double cpu_kmeans(const float *x, size_t n, size_t dim, size_t k, size_t iters, float *cent)
{
    km_arg a = {x, cent, n, dim, k, xmalloc(k * 4), xmalloc(n * 4), xmalloc(n * 4)};
    double *sum = xmalloc(k * dim * sizeof(double)), obj = 0.0;
    size_t *cnt = xmalloc(k * sizeof(size_t));
    for (size_t it = 0; it < iters; it++) {
        for (size_t c = 0; c < k; c++) {
            float s = 0.0f;
            for (size_t j = 0; j < dim; j++) s += cent[c * dim + j] * cent[c * dim + j];
            a.cn[c] = s;
        }
        parallel(n, km_assign, &a);
        memset(sum, 0, k * dim * sizeof(double));
        memset(cnt, 0, k * sizeof(size_t));
        for (size_t i = 0; i < n; i++) {
            cnt[a.assign[i]]++;
            for (size_t j = 0; j < dim; j++) sum[a.assign[i] * dim + j] += x[i * dim + j];
        }
        size_t empty = 0;
        for (size_t c = 0; c < k; c++) {
            if (!cnt[c]) { empty++; continue; }
            for (size_t j = 0; j < dim; j++) cent[c * dim + j] = (float)(sum[c * dim + j] / (double)cnt[c]);
        }
        if (empty) {
            unsigned *idx = xmalloc(n * sizeof *idx);
            for (size_t i = 0; i < n; i++) idx[i] = (unsigned)i;
            far_dist = a.dist;
            qsort(idx, n, sizeof *idx, cmp_far_idx);
            for (size_t c = 0, j = 0; c < k; c++)
                if (!cnt[c]) memcpy(cent + c * dim, x + (size_t)idx[j++] * dim, dim * sizeof(float));
            free(idx);
        }
        obj = 0.0;
        for (size_t i = 0; i < n; i++) obj += a.dist[i];
    }
    free(a.cn);
    free(a.assign);
    free(a.dist);
    free(sum);
    free(cnt);
    return obj;
}

/* ---- steps ------------------------------------------------------------------------------------ */

static double time_knn(qv_gpu_flat *g, size_t nq, const float *q, size_t k, float *d, int64_t *r,
                       unsigned flags, qv_gpu_plan *plan)
{
    double t0 = now();
    TRY(qv_gpu__flat_knn_ex(g, nq, q, k, d, r, flags, plan));
    return now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of three timed calls after one untimed warm-up (the machine is shared, and the
 * first call of a shape pays for cuBLAS's kernel choice). */
static double time_knn_med(qv_gpu_flat *g, size_t nq, const float *q, size_t k, float *d,
                           int64_t *r, unsigned flags, qv_gpu_plan *plan)
{
    double t[3];
    time_knn(g, nq, q, k, d, r, flags, plan);
    for (int i = 0; i < 3; i++) t[i] = time_knn(g, nq, q, k, d, r, flags, plan);
    qsort(t, 3, sizeof t[0], cmp_double);
    return t[1];
}

static double recall_vs(const int64_t *got, const int64_t *truth, size_t nq, size_t k, size_t tk)
{
    size_t hit = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t a = 0; a < k; a++)
            for (size_t b = 0; b < k; b++)
                if (got[i * k + a] == truth[i * tk + b]) { hit++; break; }
    return (double)hit / (double)(nq * k);
}

static void step_exact(const config *cf)
{
    const size_t n = cf->n, nq = cf->nq, dim = cf->dim, cq = cf->check_q;
    printf("exact search: n=%zu dim=%zu nq=%zu (seed %llu)\n", n, dim, nq, (unsigned long long)cf->seed);
    double t0 = now();
    float *x = random_data(n, dim, cf->seed), *q = random_data(nq, dim, cf->seed + 1);
    printf("  data generated in %.2f s\n", now() - t0);
    float *d = xmalloc(nq * 100 * sizeof(float)), *d32 = xmalloc(nq * 10 * sizeof(float));
    int64_t *r = xmalloc(nq * 100 * sizeof(int64_t)), *r32 = xmalloc(nq * 10 * sizeof(int64_t));
    qv_gpu_options o;
    qv_gpu_flat *g = NULL;
    qv_gpu_plan plan;
    qv_gpu_options_init(&o);
    o.math = QV_GPU_MATH_FP32;
    TRY(qv_gpu_flat_new(dim, QV_METRIC_L2, &o, &g));
    t0 = now();
    TRY(qv_gpu_flat_add(g, n, x));
    double t_up = now() - t0;
    printf("  upload %.1f MB in %.3f s\n", (double)qv_gpu_flat_memory(g) / 1e6, t_up);
    time_knn(g, nq < 64 ? nq : 64, q, 10, d, r, 0, NULL);                 /* warm-up */
    double t_gemm = time_knn_med(g, nq, q, 10, NULL, NULL, QV_GPU_KNN_GEMM_ONLY, &plan);
    double flop = 2.0 * (double)n * (double)nq * (double)dim;
    printf("  SGEMM alone: %zu GEMMs of %zu x %zu x %zu (tile rows x queries x dim): %.4f s, %.1f TFLOP/s\n",
           plan.gemms, plan.tile_rows, plan.query_batch, dim, t_gemm, flop / t_gemm / 1e12);
    result("gemm_s", "%.4f", t_gemm);
    result("gemm_shape", "%zux%zux%zu x%zu", plan.tile_rows, plan.query_batch, dim, plan.gemms);
    double t_k[2];
    const size_t ks[2] = {10, 100};
    for (int i = 0; i < 2; i++) {
        char key[32];
        t_k[i] = time_knn_med(g, nq, q, ks[i], d, r, 0, &plan);
        printf("  exact k=%zu: %.4f s (%.0f queries/s) = %.2fx SGEMM alone; workspace %.0f MB, "
               "chunk %zu\n", ks[i], t_k[i], (double)nq / t_k[i], t_k[i] / t_gemm,
               (double)plan.workspace_bytes / 1e6, plan.query_chunk);
        snprintf(key, sizeof key, "exact_k%zu_s", ks[i]);
        result(key, "%.4f", t_k[i]);
        if (ks[i] == 10) { memcpy(d32, d, nq * 10 * sizeof(float)); memcpy(r32, r, nq * 10 * sizeof(int64_t)); }
    }
    /* Other tilings: smaller distance tiles, down to one that stays in the L2 cache. */
    {
        static const size_t big[][2] = {{65536, 1024}, {32768, 512}, {8192, 512}};
        static const size_t little[][2] = {{4096, 64}, {1024, 200}};
        const size_t (*cfg)[2] = cf->small ? little : big;
        size_t ncfg = cf->small ? 2 : 3;
        double best_t = t_k[0], best_g = t_gemm;
        size_t best_nt = 0, best_nqb = 0;
        for (size_t i = 0; i < ncfg; i++) {
            qv_gpu__flat_set_tiling(g, cfg[i][0], cfg[i][1]);
            double tg = time_knn_med(g, nq, q, 10, NULL, NULL, QV_GPU_KNN_GEMM_ONLY, NULL);
            double t10 = time_knn_med(g, nq, q, 10, d, r, 0, NULL);
            double t100 = time_knn_med(g, nq, q, 100, d, r, 0, NULL);
            printf("  tiles %6zu x %4zu (%4.0f MB): SGEMM %.4f s, k=10 %.4f s (%.2fx), k=100 %.4f s (%.2fx)\n",
                   cfg[i][0], cfg[i][1], (double)(cfg[i][0] * cfg[i][1] * 4) / 1e6, tg, t10, t10 / tg,
                   t100, t100 / tg);
            char key[32];
            snprintf(key, sizeof key, "sweep%zu", i);
            result(key, "%zux%zu gemm %.4f k10 %.4f k100 %.4f", cfg[i][0], cfg[i][1], tg, t10, t100);
            if (t10 < best_t) { best_t = t10; best_g = tg; best_nt = cfg[i][0]; best_nqb = cfg[i][1]; }
        }
        qv_gpu__flat_set_tiling(g, 0, 0);
        if (best_nt) printf("  fastest k=10 tiling: %zu x %zu, %.4f s = %.2fx its SGEMM\n", best_nt, best_nqb, best_t, best_t / best_g);
        else printf("  fastest k=10 tiling: the default\n");
        result("sweep_best", "%zux%zu k10 %.4f ratio %.2f", best_nt, best_nqb, best_t, best_t / best_g);
    }
    time_knn(g, nq, q, 100, d, r, 0, NULL);
    /* d/r hold k = 100 now: check a sample of queries against the double brute force. */
    {
        const size_t k = 100;
        ref_arg a = {x, q, n, dim, k, xmalloc(cq * k * sizeof(double)), xmalloc(cq * k * sizeof(int64_t))};
        t0 = now();
        parallel(cq, ref_range, &a);
        double num = 0.0, den = 0.0;
        size_t bad_rows = 0, ties = 0;
        for (size_t i = 0; i < cq; i++)
            for (size_t j = 0; j < k; j++) {
                double ref = a.dist[i * k + j], got = d[i * k + j];
                num += (got - ref) * (got - ref);
                den += ref * ref;
                if (r[i * k + j] != a.rows[i * k + j]) {
                    double dg = exact_l2(q + i * dim, x + (size_t)r[i * k + j] * dim, dim);
                    /* a tie within float rounding of the GEMM form */
                    if (fabs(dg - ref) <= 1e-5 * (ref > 1.0 ? ref : 1.0)) ties++;
                    else bad_rows++;
                }
            }
        double rel = sqrt(num / den);
        printf("  reference (%zu queries, double, %.1f s): rel. distance error %.2e, rows differing %zu "
               "(ties) + %zu (not ties)\n", cq, now() - t0, rel, ties, bad_rows);
        check(rel <= 1e-4, "exact k=100: ||gpu - ref|| / ||ref|| <= 1e-4");
        check(bad_rows == 0, "exact k=100: same rows as the reference except ties");
        result("exact_rel_err", "%.2e", rel);
        free(a.dist);
        free(a.rows);
    }
    /* Reduced precision: time and recall@10 against the FP32 rows. */
    for (int mode = QV_GPU_MATH_TF32; mode <= QV_GPU_MATH_FP16; mode++) {
        qv_gpu_flat *h = NULL;
        o.math = (qv_gpu_math)mode;
        TRY(qv_gpu_flat_new(dim, QV_METRIC_L2, &o, &h));
        TRY(qv_gpu_flat_add(h, n, x));
        time_knn(h, nq, q, 10, d, r, 0, NULL);
        double t = time_knn(h, nq, q, 10, d, r, 0, NULL);
        double rec = recall_vs(r, r32, nq, 10, 10);
        const char *name = mode == QV_GPU_MATH_TF32 ? "tf32" : "fp16";
        printf("  exact k=10 %s: %.3f s, recall@10 vs fp32 %.4f\n", name, t, rec);
        char key[32];
        snprintf(key, sizeof key, "%s_k10_s", name);
        result(key, "%.4f", t);
        snprintf(key, sizeof key, "%s_recall", name);
        result(key, "%.4f", rec);
        check(rec >= 0.95, mode == QV_GPU_MATH_TF32 ? "tf32 recall@10 vs fp32 >= 0.95" : "fp16 recall@10 vs fp32 >= 0.95");
        qv_gpu_flat_free(h);
    }
    /* Host-streamed database (tiles copied per call). */
    {
        qv_gpu_flat *h = NULL;
        o.math = QV_GPU_MATH_FP32;
        t0 = now();
        TRY(qv_gpu_flat_new_host(dim, QV_METRIC_L2, &o, x, n, &h));
        double t_new = now() - t0;
        double t = time_knn_med(h, nq, q, 10, d, r, 0, &plan);
        size_t same = 0;
        for (size_t i = 0; i < nq * 10; i++) same += r[i] == r32[i];
        printf("  exact k=10 host-streamed: %.4f s (%zu tiles of %zu rows; creating it, which "
               "page-locks the rows, %.3f s), same rows %.4f\n", t, plan.tiles, plan.tile_rows,
               t_new, (double)same / (double)(nq * 10));
        result("stream_k10_s", "%.4f", t);
        check(same == nq * 10, "host-streamed rows == resident rows");
        qv_gpu_flat_free(h);
    }
    qv_gpu_flat_free(g);
    free(x);
    free(q);
    free(d);
    free(r);
    free(d32);
    free(r32);
}

static void step_sift(const config *cf)
{
    char p[1024];
    size_t n = 0, dim = 0, nq = 0, qd = 0, ng = 0, gd = 0;
    snprintf(p, sizeof p, "%s/sift-debian-100k/base.fvecs", cf->data_dir);
    float *x = read_vecs(p, &n, &dim, 0);
    snprintf(p, sizeof p, "%s/sift-debian-100k/query.fvecs", cf->data_dir);
    float *q = x ? read_vecs(p, &nq, &qd, 0) : NULL;
    snprintf(p, sizeof p, "%s/sift-debian-100k/groundtruth.ivecs", cf->data_dir);
    int32_t *gt = q ? (int32_t *)read_vecs(p, &ng, &gd, 1) : NULL;
    if (!gt || qd != dim || ng != nq || gd < 10) {
        printf("sift-debian-100k: not found under %s: skipped (recall@10 not measured)\n", cf->data_dir);
        result("sift", "skipped");
        free(x); free(q); free(gt);
        return;
    }
    if (cf->sift_q && cf->sift_q < nq) nq = cf->sift_q;
    printf("sift-debian-100k: n=%zu dim=%zu nq=%zu\n", n, dim, nq);
    const size_t k = 10;
    float *d = xmalloc(nq * k * sizeof(float));
    int64_t *r = xmalloc(nq * k * sizeof(int64_t));
    qv_gpu_flat *g = NULL;
    TRY(qv_gpu_flat_new(dim, QV_METRIC_L2, NULL, &g));
    TRY(qv_gpu_flat_add(g, n, x));
    double t = time_knn(g, nq, q, k, d, r, 0, NULL);
    size_t strict = 0, tie_ok = 0;
    for (size_t i = 0; i < nq; i++) {
        double tenth = exact_l2(q + i * dim, x + (size_t)gt[i * gd + k - 1] * dim, dim);
        for (size_t a = 0; a < k; a++) {
            int found = 0;
            for (size_t b = 0; b < k; b++) found |= r[i * k + a] == gt[i * gd + b];
            strict += found;
            tie_ok += found || exact_l2(q + i * dim, x + (size_t)r[i * k + a] * dim, dim) <= tenth;
        }
    }
    double rs = (double)strict / (double)(nq * k), rt = (double)tie_ok / (double)(nq * k);
    printf("  exact k=10: %.3f s, recall@10 %.4f (ties counted: %.4f)\n", t, rs, rt);
    result("sift_exact_s", "%.4f", t);
    result("sift_recall", "%.4f", rs);
    check(rt == 1.0, "sift-debian-100k exact recall@10 == 1.0 (ties counted)");
    /* IVF: GPU k-means (nlist 256), lists by the GPU assignment, GPU list scan. */
    if (!cf->small) {
        const size_t nlist = 256;
        float *cent = xmalloc(nlist * dim * sizeof(float)), *sorted = xmalloc(n * dim * sizeof(float));
        float *ad = xmalloc(n * sizeof(float));
        int64_t *as = xmalloc(n * sizeof(int64_t));
        uint64_t *off = calloc(nlist + 1, sizeof *off), *pos = calloc(nlist, sizeof *pos);
        qv_gpu_kmeans_params kp;
        qv_gpu_flat *cf_ = NULL;
        qv_gpu_ivf *iv = NULL;
        for (size_t c = 0; c < nlist; c++) memcpy(cent + c * dim, x + c * (n / nlist) * dim, dim * sizeof(float));
        qv_gpu_kmeans_params_init(&kp, QV_METRIC_L2);
        kp.iters = 10;
        double t0 = now(), obj = 0;
        TRY(qv_gpu_kmeans(&kp, n, dim, x, nlist, cent, &obj));
        double t_km = now() - t0;
        TRY(qv_gpu_flat_new(dim, QV_METRIC_L2, NULL, &cf_));
        TRY(qv_gpu_flat_add(cf_, nlist, cent));
        TRY(qv_gpu_flat_knn(cf_, n, x, 1, ad, as));
        for (size_t i = 0; i < n; i++) off[as[i] + 1]++;
        for (size_t c = 0; c < nlist; c++) off[c + 1] += off[c];
        int64_t *ids = xmalloc(n * sizeof(int64_t));
        for (size_t i = 0; i < n; i++) {
            size_t at = off[as[i]] + pos[as[i]]++;
            memcpy(sorted + at * dim, x + i * dim, dim * sizeof(float));
            ids[at] = (int64_t)i;
        }
        TRY(qv_gpu_ivf_new(dim, QV_METRIC_L2, nlist, cent, NULL, &iv));
        TRY(qv_gpu_ivf_set_lists(iv, off, sorted));
        printf("  IVF: GPU k-means nlist=%zu 10 iters %.3f s\n", nlist, t_km);
        const size_t probes[2] = {8, 32};
        for (int i = 0; i < 2; i++) {
            TRY(qv_gpu_ivf_search(iv, nq, q, probes[i], k, d, r));
            t0 = now();
            TRY(qv_gpu_ivf_search(iv, nq, q, probes[i], k, d, r));
            double ti = now() - t0;
            size_t hit = 0;
            for (size_t qi = 0; qi < nq; qi++)
                for (size_t a = 0; a < k; a++) {
                    int64_t id = r[qi * k + a] >= 0 ? ids[r[qi * k + a]] : -1;
                    for (size_t b = 0; b < k; b++)
                        if (id == gt[qi * gd + b]) { hit++; break; }
                }
            printf("  IVF nprobe=%zu: %.3f s (%.0f queries/s), recall@10 %.4f\n", probes[i], ti,
                   (double)nq / ti, (double)hit / (double)(nq * k));
            char key[32];
            snprintf(key, sizeof key, "ivf_np%zu_s", probes[i]);
            result(key, "%.4f", ti);
            snprintf(key, sizeof key, "ivf_np%zu_recall", probes[i]);
            result(key, "%.4f", (double)hit / (double)(nq * k));
        }
        /* nprobe = nlist is exact search. */
        TRY(qv_gpu_ivf_search(iv, nq < 200 ? nq : 200, q, nlist > 1024 ? 1024 : nlist, k, d, r));
        size_t same = 0, m = (nq < 200 ? nq : 200) * k;
        int64_t *re = xmalloc(m * sizeof(int64_t));
        float *de = xmalloc(m * sizeof(float));
        TRY(qv_gpu_flat_knn(g, nq < 200 ? nq : 200, q, k, de, re));
        for (size_t i = 0; i < m; i++) same += (r[i] >= 0 && ids[r[i]] == re[i]) || fabsf(d[i] - de[i]) <= 1e-3f * (de[i] > 1 ? de[i] : 1);
        check(same == m, "IVF with nprobe = nlist == exact search");
        free(re); free(de); free(ids);
        qv_gpu_ivf_free(iv);
        qv_gpu_flat_free(cf_);
        free(cent); free(sorted); free(ad); free(as); free(off); free(pos);
    }
    qv_gpu_flat_free(g);
    free(x); free(q); free(gt); free(d); free(r);
}

static void step_kmeans(const config *cf)
{
    const size_t n = cf->km_n, k = cf->km_k, dim = cf->dim, iters = cf->km_iters;
    printf("k-means: n=%zu dim=%zu k=%zu iters=%zu\n", n, dim, k, iters);
    float *x = random_data(n, dim, cf->seed + 7);
    float *c0 = xmalloc(k * dim * sizeof(float)), *cg = xmalloc(k * dim * sizeof(float)),
          *cc = xmalloc(k * dim * sizeof(float));
    for (size_t c = 0; c < k; c++) memcpy(c0 + c * dim, x + c * (n / k) * dim, dim * sizeof(float));
    memcpy(cg, c0, k * dim * sizeof(float));
    memcpy(cc, c0, k * dim * sizeof(float));
    qv_gpu_kmeans_params kp;
    qv_gpu_kmeans_params_init(&kp, QV_METRIC_L2);
    kp.iters = (uint32_t)iters;
    double og = 0, t0 = now();
    TRY(qv_gpu_kmeans(&kp, n, dim, x, k, cg, &og));
    double tg = now() - t0;
    t0 = now();
    double oc = cpu_kmeans(x, n, dim, k, iters, cc);
    double tc = now() - t0;
    double rel = fabs(og - oc) / oc;
    printf("  GPU %.3f s, objective %.6g | CPU (%ld threads) %.3f s, objective %.6g | rel. diff %.2e\n",
           tg, og, sysconf(_SC_NPROCESSORS_ONLN), tc, oc, rel);
    result("kmeans_gpu_s", "%.4f", tg);
    result("kmeans_cpu_s", "%.4f", tc);
    result("kmeans_rel_diff", "%.2e", rel);
    check(rel <= 1e-2, "GPU k-means objective within 1% of the CPU k-means");
    free(x); free(c0); free(cg); free(cc);
}

int main(int argc, char **argv)
{
    config cf = {1000000, 10000, 128, 100, 200000, 1024, 10, 0, 0, "../shared/data", NULL, 0};
    cf.seed = (uint64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--small")) {          /* the CPU emulation: tiny sizes */
            cf.n = 20000; cf.nq = 200; cf.dim = 32; cf.check_q = 20;
            cf.km_n = 4000; cf.km_k = 32; cf.km_iters = 3; cf.sift_q = 50;
            cf.small = 1;
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) cf.data_dir = argv[++i];
        else if (!strcmp(argv[i], "--results") && i + 1 < argc) cf.results = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) cf.seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: gpu-check [--small] [--data DIR] [--results FILE] [--seed N]\n");
            return 2;
        }
    }
    if (!qv_gpu_probe()) {
        qv_gpu_require();
        fprintf(stderr, "gpu-check: %s -- nothing measured\n", qv_last_error());
        return 2;
    }
    char name[256];
    TRY(qv_gpu_device_name(name, sizeof name));
    printf("gpu-check on %s\n", name);
    if (cf.results && !(results = fopen(cf.results, "w"))) {
        fprintf(stderr, "gpu-check: cannot write %s\n", cf.results);
        return 1;
    }
    result("device", "%s", name);
    result("n", "%zu", cf.n);
    result("nq", "%zu", cf.nq);
    result("dim", "%zu", cf.dim);
    result("km", "n=%zu k=%zu iters=%zu", cf.km_n, cf.km_k, cf.km_iters);
    double t0 = now();
    step_exact(&cf);
    step_sift(&cf);
    step_kmeans(&cf);
    printf("gpu-check: %s (%d failed) in %.1f s\n", failures ? "FAILED" : "all checks passed", failures,
           now() - t0);
    result("failures", "%d", failures);
    if (results) fclose(results);
    return failures ? 1 : 0;
}
