/*
 * bench/db/vecsrc_bench.c -- quiver-vecsrc-bench: a quantized HNSW collection re-scoring
 * with the float vectors read from LMDB's map (storage/vec_source.c) against the very same
 * graph and codes re-scoring from a heap array (issues 15 and 16).
 *
 *   quiver-vecsrc-bench --data DBDIR --collection NAME --base BASE.fvecs --queries Q.fvecs
 *                       --gt GT.ivecs [--ef 16,32,64] [--rounds 3] [--k 10] [--nq N]
 *
 * The collection must have been imported from BASE with ids 0..n-1 in file order (quiver
 * import) and checkpointed (its snapshot is the graph and codes, no vectors). Modes, each
 * one thread, one query per call, every query of Q per round, the median round's QPS:
 *   lmdb: qv_search on the collection (a read txn per query, vectors from LMDB's map);
 *   heap: the collection's snapshot file opened as a qv_index (qv_index_open: the same
 *         mapped graph and codes), its vector source the base file read into the heap.
 * Rounds alternate the modes so drift hits both alike. Prints per ef:
 *   vecsrc ef=E mode=lmdb|heap recall@K=R qps=Q
 * and the memory of the collection's index (qv_index_memory_detail).
 * Exit status: 0 done, 1 a call failed, 2 bad arguments.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quiver.h"
#include "index/index.h"
#include "storage/storage.h"

static const float *heap_base;
static size_t heap_dim, heap_n;

static const float *heap_get(void *ctx, uint64_t id)
{
    (void)ctx;
    return id < heap_n ? heap_base + id * heap_dim : NULL;
}
static int heap_begin(void *ctx) { (void)ctx; return QV_OK; }
static void heap_end(void *ctx) { (void)ctx; }

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
static double round_of(qv_coll *c, qv_index *ix, const float *q, size_t nq, size_t dim, const int32_t *gt,
                       size_t gt_k, uint32_t k, uint32_t ef, size_t *found, int *failed)
{
    qv_search_params sp;
    qv_hit hits[128];
    size_t n;
    qv_search_params_init(&sp, k);
    sp.ef = ef;
    double t = now_s();
    for (size_t i = 0; i < nq; i++) {
        int rc = c ? qv_search(c, q + i * dim, &sp, hits, &n) : qv_index_search(ix, q + i * dim, &sp, hits, &n);
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

int main(int argc, char **argv)
{
    const char *data = NULL, *name = NULL, *base = NULL, *qfile = NULL, *gtfile = NULL, *efs = "16,32,64";
    uint32_t k = 10, rounds = 3;
    size_t nq_max = 0;                 /* 0: every query */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--collection")) name = argv[i + 1];
        else if (!strcmp(argv[i], "--base")) base = argv[i + 1];
        else if (!strcmp(argv[i], "--queries")) qfile = argv[i + 1];
        else if (!strcmp(argv[i], "--gt")) gtfile = argv[i + 1];
        else if (!strcmp(argv[i], "--ef")) efs = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds")) rounds = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--k")) k = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--nq")) nq_max = (size_t)atol(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!data || !name || !base || !qfile || !gtfile || !rounds || rounds > 99 || k < 1 || k > 100) {
        fprintf(stderr, "usage: quiver-vecsrc-bench --data DB --collection NAME --base B.fvecs --queries Q.fvecs "
                        "--gt GT.ivecs [--ef 16,32,64] [--rounds 3] [--k 10]\n");
        return 2;
    }
    float *bv = NULL, *q = NULL;
    int32_t *gt = NULL;
    size_t n, dim, nq, qdim, gt_n, gt_k;
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_index *ix = NULL;
    int rc = qv_read_vectors(base, &bv, &n, &dim);
    if (rc == QV_OK) rc = qv_read_vectors(qfile, &q, &nq, &qdim);
    if (rc == QV_OK) rc = qv_read_ivecs(gtfile, &gt, &gt_n, &gt_k);
    if (rc == QV_OK) rc = qv_db_open(data, NULL, &db);
    if (rc == QV_OK) rc = qv_collection_open(db, name, &c);
    if (rc != QV_OK) { fprintf(stderr, "open: %s\n", qv_last_error()); return 1; }
    if (qdim != dim || gt_n < nq || gt_k < k) { fprintf(stderr, "data files do not match\n"); return 1; }
    if (nq_max && nq > nq_max) nq = nq_max;
    qv_index_memory_info mi;
    qv_index_memory_detail(c->ix, &mi);
    printf("vecsrc index_memory total_mb=%.1f vectors_mb=%.1f search_mb=%.1f codes_mb=%.1f other_mb=%.1f\n",
           mi.total / 1048576.0, mi.vectors / 1048576.0, mi.search / 1048576.0, mi.codes / 1048576.0,
           mi.other / 1048576.0);

    /* The snapshot file the collection opened: the same graph and codes, mapped again. */
    char sdir[4096], path[8192] = "";
    snprintf(sdir, sizeof sdir, "%s/snapshots", data);
    DIR *d = opendir(sdir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        if (l > 3 && !strcmp(e->d_name + l - 3, ".qv")) snprintf(path, sizeof path, "%s/%s", sdir, e->d_name);
    }
    if (d) closedir(d);
    if (!*path || qv_index_open(path, &ix) != QV_OK) { fprintf(stderr, "snapshot %s: %s\n", path, qv_last_error()); return 1; }
    heap_base = bv;
    heap_n = n;
    heap_dim = dim;
    qv_vec_source src = {heap_get, heap_begin, heap_end, NULL};
    if (qv_index_set_vector_source(ix, &src) != 1) { fprintf(stderr, "snapshot is not a quantized hnsw\n"); return 1; }

    int failed = 0;
    for (const char *p = efs; *p && !failed;) {
        uint32_t ef = (uint32_t)strtoul(p, (char **)&p, 10);
        if (*p == ',') p++;
        double t[2][99];
        size_t found[2] = {0, 0};
        for (uint32_t r = 0; r < rounds && !failed; r++)
            for (int m = 0; m < 2 && !failed; m++) {
                size_t f = 0;
                t[m][r] = round_of(m ? NULL : c, m ? ix : NULL, q, nq, dim, gt, gt_k, k, ef, &f, &failed);
                found[m] = f;
            }
        for (int m = 0; m < 2 && !failed; m++) {
            qsort(t[m], rounds, sizeof t[m][0], cmp_double);
            printf("vecsrc ef=%u mode=%s recall@%u=%.4f qps=%.0f\n", ef, m ? "heap" : "lmdb", k,
                   (double)found[m] / (double)(nq * k), (double)nq / t[m][rounds / 2]);
        }
        fflush(stdout);
    }
    qv_index_free(ix);
    qv_collection_close(c);
    qv_db_close(db);
    qv_free(bv);
    qv_free(q);
    qv_free(gt);
    return failed;
}
