/*
 * bench/db/vecsrc_bench.c -- quiver-vecsrc-bench: a quantized HNSW collection created with
 * on_disk (re-scoring with the float vectors read from LMDB's map, storage/vec_source.c)
 * against one without (re-scoring from its heap copy), on the same data (issues 15, 16).
 *
 *   quiver-vecsrc-bench --data DBDIR --collection ON --off OFF --base BASE.fvecs
 *                       --queries Q.fvecs --gt GT.ivecs [--ef 16,32,64] [--rounds 3]
 *                       [--k 10] [--nq N]
 *
 * Both collections must hold BASE with ids 0..n-1 in file order (quiver import) and have
 * been reopened since (an on_disk collection reads from LMDB once opened non-empty). Each
 * mode is one thread, qv_search per query, every query of Q per round, the median round's
 * QPS; rounds alternate the modes so drift hits both alike. Prints per ef:
 *   vecsrc ef=E mode=on_disk|off recall@K=R qps=Q
 * and the memory of both indexes (qv_index_memory_detail).
 * Exit status: 0 done, 1 a call failed, 2 bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quiver.h"
#include "index/index.h"
#include "storage/storage.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One round over all queries; returns seconds, adds hits of the top k to *found. */
static double round_of(qv_coll *c, const float *q, size_t nq, size_t dim, const int32_t *gt,
                       size_t gt_k, uint32_t k, uint32_t ef, size_t *found, int *failed)
{
    qv_search_params sp;
    qv_hit hits[128];
    size_t n;
    qv_search_params_init(&sp, k);
    sp.ef = ef;
    double t = now_s();
    for (size_t i = 0; i < nq; i++) {
        int rc = qv_search(c, q + i * dim, &sp, hits, &n);
        if (rc != QV_OK) {
            fprintf(stderr, "search: %s\n", qv_last_error());
            *failed = 1;
            return 0;
        }
        for (size_t j = 0; j < n; j++)
            for (size_t g = 0; g < k; g++) *found += (int64_t)hits[j].id == gt[i * gt_k + g];
    }
    return now_s() - t;
}

static void print_memory(const char *mode, qv_coll *c)
{
    qv_index_memory_info mi;
    qv_index_memory_detail(c->ix, &mi);
    printf("vecsrc mode=%s index_memory total_mb=%.1f vectors_mb=%.1f search_mb=%.1f codes_mb=%.1f other_mb=%.1f\n",
           mode, mi.total / 1048576.0, mi.vectors / 1048576.0, mi.search / 1048576.0, mi.codes / 1048576.0,
           mi.other / 1048576.0);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *name = NULL, *off_name = NULL, *base = NULL, *qfile = NULL, *gtfile = NULL;
    const char *efs = "16,32,64";
    uint32_t k = 10, rounds = 3;
    size_t nq_max = 0;                 /* 0: every query */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--collection")) name = argv[i + 1];
        else if (!strcmp(argv[i], "--off")) off_name = argv[i + 1];
        else if (!strcmp(argv[i], "--base")) base = argv[i + 1];
        else if (!strcmp(argv[i], "--queries")) qfile = argv[i + 1];
        else if (!strcmp(argv[i], "--gt")) gtfile = argv[i + 1];
        else if (!strcmp(argv[i], "--ef")) efs = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds")) rounds = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--k")) k = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--nq")) nq_max = (size_t)atol(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!data || !name || !off_name || !base || !qfile || !gtfile || !k || k > 128 || !rounds || rounds > 99) {
        fprintf(stderr, "usage: quiver-vecsrc-bench --data DB --collection ON --off OFF --base B.fvecs "
                        "--queries Q.fvecs --gt GT.ivecs [--ef 16,32,64] [--rounds 3] [--k 10] [--nq N]\n");
        return 2;
    }
    float *bv = NULL, *q = NULL;
    int32_t *gt = NULL;
    size_t n, dim, nq, qdim, gt_n, gt_k;
    qv_db *db = NULL;
    qv_coll *cs[2] = {NULL, NULL};
    int rc = qv_read_vectors(base, &bv, &n, &dim);
    if (rc == QV_OK) rc = qv_read_vectors(qfile, &q, &nq, &qdim);
    if (rc == QV_OK) rc = qv_read_ivecs(gtfile, &gt, &gt_n, &gt_k);
    if (rc == QV_OK) rc = qv_db_open(data, NULL, &db);
    if (rc == QV_OK) rc = qv_collection_open(db, name, &cs[0]);
    if (rc == QV_OK) rc = qv_collection_open(db, off_name, &cs[1]);
    if (rc != QV_OK) { fprintf(stderr, "open: %s\n", qv_last_error()); return 1; }
    if (qdim != dim || gt_n < nq || gt_k < k) { fprintf(stderr, "data files do not match\n"); return 1; }
    if (!cs[0]->vdef.on_disk || cs[1]->vdef.on_disk) { fprintf(stderr, "%s must be on_disk, %s not\n", name, off_name); return 2; }
    if (nq_max && nq > nq_max) nq = nq_max;
    static const char *const modes[2] = {"on_disk", "off"};
    print_memory(modes[0], cs[0]);
    print_memory(modes[1], cs[1]);

    int failed = 0;
    for (const char *p = efs; *p && !failed;) {
        uint32_t ef = (uint32_t)strtoul(p, (char **)&p, 10);
        if (*p == ',') p++;
        double t[2][99];
        size_t found[2] = {0, 0};
        for (uint32_t r = 0; r < rounds && !failed; r++)
            for (int m = 0; m < 2 && !failed; m++) {
                size_t f = 0;
                t[m][r] = round_of(cs[m], q, nq, dim, gt, gt_k, k, ef, &f, &failed);
                found[m] = f;
            }
        for (int m = 0; m < 2 && !failed; m++) {
            qsort(t[m], rounds, sizeof t[m][0], cmp_double);
            printf("vecsrc ef=%u mode=%s recall@%u=%.4f qps=%.0f\n", ef, modes[m], k,
                   (double)found[m] / (double)(nq * k), (double)nq / t[m][rounds / 2]);
        }
        fflush(stdout);
    }
    qv_collection_close(cs[0]);
    qv_collection_close(cs[1]);
    qv_db_close(db);
    qv_free(bv);
    qv_free(q);
    qv_free(gt);
    return failed;
}
