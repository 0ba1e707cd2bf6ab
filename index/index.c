/*
 * index/index.c -- qv_index_*: validation, defaults, cosine handling, file framing and
 * dispatch to the kind's qv_index_ops (see index/index.h for what each kind may assume).
 */
#include "index/index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"
#include "core/idmap.h"
#include "core/vector_check.h"
#include "index/codec.h"

#define DEFAULT_M 16u
#define DEFAULT_EF_CONSTRUCTION 200u
#define DEFAULT_EF_SEARCH 64u
#define DEFAULT_NPROBE 8u
#define DEFAULT_KMEANS_ITERS 20u

static const qv_index_ops *ops_for(qv_index_kind kind)
{
    switch (kind) {
    case QV_INDEX_FLAT: return &qv_flat_ops;
    case QV_INDEX_HNSW: return &qv_hnsw_ops;
    case QV_INDEX_IVF:  return &qv_ivf_ops;
    default:            return NULL;
    }
}

const char *qv_metric_name(qv_metric m)
{
    switch (m) {
    case QV_METRIC_L2:     return "l2";
    case QV_METRIC_IP:     return "ip";
    case QV_METRIC_COSINE: return "cosine";
    default:               return NULL;
    }
}

int qv_metric_parse(const char *s, qv_metric *out)
{
    if (s && strcmp(s, "l2") == 0) *out = QV_METRIC_L2;
    else if (s && strcmp(s, "ip") == 0) *out = QV_METRIC_IP;
    else if (s && strcmp(s, "cosine") == 0) *out = QV_METRIC_COSINE;
    else return qv_fail(QV_EINVAL, "unknown metric '%s' (expected l2, ip or cosine)", s ? s : "(null)");
    return QV_OK;
}

const char *qv_index_kind_name(qv_index_kind k)
{
    switch (k) {
    case QV_INDEX_FLAT: return "flat";
    case QV_INDEX_HNSW: return "hnsw";
    case QV_INDEX_IVF:  return "ivf";
    default:            return NULL;
    }
}

int qv_index_kind_parse(const char *s, qv_index_kind *out)
{
    if (s && strcmp(s, "flat") == 0) *out = QV_INDEX_FLAT;
    else if (s && strcmp(s, "hnsw") == 0) *out = QV_INDEX_HNSW;
    else if (s && strcmp(s, "ivf") == 0) *out = QV_INDEX_IVF;
    else return qv_fail(QV_EINVAL, "unknown index type '%s' (expected flat, hnsw or ivf)", s ? s : "(null)");
    return QV_OK;
}

const char *qv_quant_name(qv_quant q)
{
    switch (q) {
    case QV_QUANT_NONE: return "none";
    case QV_QUANT_SQ8:  return "sq8";
    case QV_QUANT_SQ4:  return "sq4";
    case QV_QUANT_BIT1: return "bit1";
    default:            return NULL;
    }
}

int qv_quant_parse(const char *s, qv_quant *out)
{
    for (int q = QV_QUANT_NONE; q <= QV_QUANT_BIT1; q++)
        if (s && strcmp(s, qv_quant_name((qv_quant)q)) == 0) {
            *out = (qv_quant)q;
            return QV_OK;
        }
    return qv_fail(QV_EINVAL, "unknown quantization '%s' (expected none, sq8, sq4 or bit1)", s ? s : "(null)");
}

const char *qv_vec_type_name(qv_vec_type t)
{
    switch (t) {
    case QV_VEC_F32: return "f32";
    case QV_VEC_U8:  return "u8";
    case QV_VEC_F16: return "f16";
    default:         return NULL;
    }
}

int qv_vec_type_parse(const char *s, qv_vec_type *out)
{
    for (int t = QV_VEC_F32; t <= QV_VEC_F16; t++)
        if (s && strcmp(s, qv_vec_type_name((qv_vec_type)t)) == 0) {
            *out = (qv_vec_type)t;
            return QV_OK;
        }
    return qv_fail(QV_EINVAL, "unknown vector type '%s' (expected f32, u8 or f16)", s ? s : "(null)");
}

void qv_index_params_init(qv_index_params *p, qv_index_kind kind, uint32_t dim, qv_metric metric)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->dim = dim;
    p->metric = metric;
    p->seed = 42;
}

void qv_search_params_init(qv_search_params *sp, uint32_t k)
{
    memset(sp, 0, sizeof *sp);
    sp->k = k;
}

/* Check p and fill every zero default; out receives the resolved copy. */
static int resolve_params(const qv_index_params *p, qv_index_params *out)
{
    if (!p) return qv_fail(QV_EINVAL, "index parameters are NULL");
    *out = *p;
    if (!ops_for(p->kind)) return qv_fail(QV_EINVAL, "unknown index kind %d", (int)p->kind);
    if (!qv_metric_name(p->metric)) return qv_fail(QV_EINVAL, "unknown metric %d", (int)p->metric);
    if (p->dim < 1 || p->dim > QV_MAX_DIM)
        return qv_fail(QV_EINVAL, "dim must be 1..%u, got %u", QV_MAX_DIM, p->dim);
    if (!out->m) out->m = DEFAULT_M;
    if (out->m < 2 || out->m > 100) return qv_fail(QV_EINVAL, "m must be 2..100, got %u", out->m);
    if (!out->ef_construction) out->ef_construction = DEFAULT_EF_CONSTRUCTION;
    if (out->ef_construction > QV_MAX_EF)
        return qv_fail(QV_EINVAL, "ef_construction must be 1..%u, got %u", QV_MAX_EF, out->ef_construction);
    if (!out->ef_search) out->ef_search = DEFAULT_EF_SEARCH;
    if (out->ef_search > QV_MAX_EF)
        return qv_fail(QV_EINVAL, "ef_search must be 1..%u, got %u", QV_MAX_EF, out->ef_search);
    if (out->nlist > (1u << 24)) return qv_fail(QV_EINVAL, "nlist must be 0..16777216, got %u", out->nlist);
    if (!out->nprobe) out->nprobe = DEFAULT_NPROBE;
    if (!out->kmeans_iters) out->kmeans_iters = DEFAULT_KMEANS_ITERS;
    if (out->kmeans_iters > 10000)
        return qv_fail(QV_EINVAL, "kmeans_iters must be 1..10000, got %u", out->kmeans_iters);
    if (out->threads > 1024) return qv_fail(QV_EINVAL, "threads must be 0..1024, got %u", out->threads);
    if (!out->threads) out->threads = qv_cpu_count();
    if ((unsigned)out->gpu > QV_GPU_REQUIRE) return qv_fail(QV_EINVAL, "unknown gpu mode %d", (int)out->gpu);
    if (!qv_quant_name(out->quant)) return qv_fail(QV_EINVAL, "unknown quantization %d", (int)out->quant);
    if (!qv_vec_type_name(out->vec_type)) return qv_fail(QV_EINVAL, "unknown vector type %d", (int)out->vec_type);
    /* u8 vectors only where the float vectors are read for re-scoring and building alone:
     * a float HNSW, flat or IVF index computes every distance on them, and cosine keeps
     * unit vectors, which are not integers. */
    if (out->vec_type == QV_VEC_U8 && (out->kind != QV_INDEX_HNSW || out->quant == QV_QUANT_NONE))
        return qv_fail(QV_EINVAL, "vector type u8 needs a quantized hnsw index (quant sq8, sq4 or bit1)");
    if (out->vec_type == QV_VEC_F16 && (out->kind != QV_INDEX_HNSW || out->quant == QV_QUANT_NONE))
        return qv_fail(QV_EINVAL, "vector type f16 needs a quantized hnsw index (quant sq8, sq4 or bit1)");
    if (out->vec_type == QV_VEC_U8 && out->metric == QV_METRIC_COSINE)
        return qv_fail(QV_EINVAL, "vector type u8 takes the l2 or ip metric, not cosine (unit vectors are not integers)");
    /* A bit1 row keeps its popcount in 16 bits (index/codec_rabitq.c). */
    if (out->quant == QV_QUANT_BIT1 && out->dim > QV_BIT1_MAX_DIM)
        return qv_fail(QV_EINVAL, "quantization bit1 takes dim up to %u, got %u", QV_BIT1_MAX_DIM, out->dim);
    if (out->gpu == QV_GPU_REQUIRE && !qv_gpu_available())
        return qv_fail(QV_ENODEV, "gpu required but no usable GPU (built without CUDA or no device)");
    return QV_OK;
}

static int index_alloc(const qv_index_params *resolved, qv_index **out)
{
    *out = NULL;
    const qv_index_ops *ops = ops_for(resolved->kind);
    if (!ops) return qv_fail(QV_EINVAL, "index kind %d is not built into this library", (int)resolved->kind);
    qv_index *ix = qv_calloc(1, sizeof *ix);
    if (!ix) return QV_ENOMEM;
    ix->ops = ops;
    ix->p = *resolved;
    ix->pool = qv_pool_shared(resolved->threads);
    if (!ix->pool) { qv_free(ix); return qv_fail(QV_ENOMEM, "cannot start %u worker threads", resolved->threads); }
    int rc = ops->create(ix);
    if (rc != QV_OK) { ops->destroy(ix); qv_free(ix); return rc; }
    *out = ix;
    return QV_OK;
}

int qv_index_new(const qv_index_params *p, qv_index **out)
{
    qv_index_params r;
    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    int rc = resolve_params(p, &r);
    if (rc != QV_OK) return rc;
    return index_alloc(&r, out);
}

void qv_index_free(qv_index *ix)
{
    if (!ix) return;
    ix->ops->destroy(ix);
    qv_free(ix);
}

void qv_index_get_params(const qv_index *ix, qv_index_params *out) { *out = ix->p; }

int qv_index_set_gpu(qv_index *ix, qv_gpu_mode mode)
{
    if (!ix) return qv_fail(QV_EINVAL, "index is NULL");
    if ((unsigned)mode > QV_GPU_REQUIRE) return qv_fail(QV_EINVAL, "unknown gpu mode %d", (int)mode);
    if (mode == QV_GPU_REQUIRE && !qv_gpu_available())
        return qv_fail(QV_ENODEV, "gpu required but no usable GPU (built without CUDA or no device)");
    ix->p.gpu = mode;
    return QV_OK;
}

size_t qv_index_size(const qv_index *ix) { return ix ? ix->ops->size(ix) : 0; }

size_t qv_index_memory(const qv_index *ix) { return ix ? ix->ops->memory(ix) + sizeof *ix : 0; }

void qv_index_memory_detail(const qv_index *ix, qv_index_memory_info *out)
{
    memset(out, 0, sizeof *out);
    if (!ix) return;
    if (ix->ops->memory_detail) ix->ops->memory_detail(ix, out);
    else out->total = out->other = ix->ops->memory(ix);
    out->total += sizeof *ix;
    out->other += sizeof *ix;
}

/* QV_EINVAL for the first unusable row of n (see core/vector_check.h); what names a row
 * in the message ("point", "training vector"); ids may be NULL. */
static int check_rows(const float *v, size_t n, size_t dim, qv_metric metric, const char *what,
                      const uint64_t *ids)
{
    char msg[128];
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        int problem = qv_vector_problem(v + i * dim, dim, metric, &col);
        if (problem == QV_VEC_OK) continue;
        qv_vector_problem_text(problem, col, msg, sizeof msg);
        if (ids) return qv_fail(QV_EINVAL, "%s %zu (id %llu): %s", what, i, (unsigned long long)ids[i], msg);
        return qv_fail(QV_EINVAL, "%s %zu: %s", what, i, msg);
    }
    return QV_OK;
}

/* QV_EINVAL for the first value of n rows that the index's vector type cannot hold: for
 * u8, one that is not an integer in 0..255 (NaN fails the range test; nothing is rounded:
 * a silent rounding would change distances the caller believes exact); for f16, one beyond
 * the largest half, whose half would be infinite (other values are rounded to the nearest
 * half: what the caller asked for with f16). Cosine rows are checked after normalizing:
 * unit vectors always fit a half. */
static int check_typed_rows(qv_vec_type t, const float *v, size_t n, size_t dim, const uint64_t *ids)
{
    if (t == QV_VEC_F32) return QV_OK;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) {
            float x = v[i * dim + j];
            if (t == QV_VEC_U8 ? x >= 0.0f && x <= 255.0f && x == (float)(int)x : qv_f16_fits(x)) continue;
            return qv_fail(QV_EINVAL, "point %zu (id %llu): component %zu is %g, %s", i, (unsigned long long)ids[i],
                           j, (double)x,
                           t == QV_VEC_U8 ? "not an integer 0..255 (vector type u8)"
                                          : "beyond the range of a half (vector type f16: |x| <= 65504)");
        }
    return QV_OK;
}

int qv_index_train(qv_index *ix, size_t n, const float *vecs)
{
    int rc;
    if (!ix || (n && !vecs)) return qv_fail(QV_EINVAL, "index or vectors are NULL");
    if (!ix->ops->train) return QV_OK;
    if ((rc = check_rows(vecs, n, ix->p.dim, ix->p.metric, "training vector", NULL)) != QV_OK) return rc;
    if (ix->p.metric != QV_METRIC_COSINE) return ix->ops->train(ix, n, vecs);
    float *copy = qv_reallocarray(NULL, n, (size_t)ix->p.dim * sizeof(float));
    if (!copy) return QV_ENOMEM;
    memcpy(copy, vecs, n * ix->p.dim * sizeof(float));
    for (size_t i = 0; i < n; i++) qv_normalize(copy + i * ix->p.dim, ix->p.dim);
    rc = ix->ops->train(ix, n, copy);
    qv_free(copy);
    return rc;
}

/* QV_EINVAL naming the first id that appears twice in ids[0..n). */
static int check_unique_ids(size_t n, const uint64_t *ids)
{
    qv_idmap seen;
    int rc = QV_OK;
    if (n < 2) return QV_OK;
    if (qv_idmap_init(&seen, n) != QV_OK) return QV_ENOMEM;
    for (size_t i = 0; i < n && rc == QV_OK; i++) {
        uint32_t prev = qv_idmap_get(&seen, ids[i]);
        if (prev != QV_IDMAP_NONE)
            rc = qv_fail(QV_EINVAL, "point %zu: id %llu appears twice in the batch (first at point %u)", i,
                         (unsigned long long)ids[i], prev);
        else
            rc = qv_idmap_put(&seen, ids[i], (uint32_t)i);
    }
    qv_idmap_release(&seen);
    return rc;
}

int qv_index_add(qv_index *ix, size_t n, const uint64_t *ids, const float *vecs)
{
    int rc = QV_OK;
    float *copy = NULL;
    size_t dim;

    if (!ix || (n && (!ids || !vecs))) return qv_fail(QV_EINVAL, "index, ids or vectors are NULL");
    if (n == 0) return QV_OK;
    dim = ix->p.dim;
    if (n > UINT32_MAX - 1) return qv_fail(QV_EINVAL, "batch of %zu points is too large", n);
    if ((rc = check_unique_ids(n, ids)) != QV_OK) return rc;
    if ((rc = check_rows(vecs, n, dim, ix->p.metric, "point", ids)) != QV_OK) return rc;
    if (ix->p.metric == QV_METRIC_COSINE || ix->p.vec_type == QV_VEC_F16) {
        if (!(copy = qv_reallocarray(NULL, n, dim * sizeof(float)))) return QV_ENOMEM;
        memcpy(copy, vecs, n * dim * sizeof(float));
        if (ix->p.metric == QV_METRIC_COSINE)
            for (size_t i = 0; i < n; i++) qv_normalize(copy + i * dim, dim);
        vecs = copy;
    }
    if ((rc = check_typed_rows(ix->p.vec_type, vecs, n, dim, ids)) != QV_OK) goto done;
    /* f16: the values are rounded to halves here, once, so that the codec trains on, the
     * codes encode and the graph is built from the vectors the index then holds: it
     * answers as an f32 index given the halves' values would. */
    if (ix->p.vec_type == QV_VEC_F16)
        for (size_t i = 0; i < n * dim; i++) copy[i] = qv_f16_to_float(qv_f16_from_float(copy[i]));
    rc = ix->ops->add(ix, n, ids, vecs);
done:
    qv_free(copy);
    return rc;
}

int qv_index_remove(qv_index *ix, size_t n, const uint64_t *ids, size_t *n_removed)
{
    size_t dummy;
    if (!n_removed) n_removed = &dummy;
    *n_removed = 0;
    if (!ix || (n && !ids)) return qv_fail(QV_EINVAL, "index or ids are NULL");
    if (n == 0) return QV_OK;
    return ix->ops->remove(ix, n, ids, n_removed);
}

/* Validate sp and resolve its defaults against the index. */
static int resolve_search(const qv_index *ix, const qv_search_params *sp, qv_search_params *out)
{
    int rc = qv_search_params_check(sp);
    if (rc != QV_OK) return rc;
    *out = *sp;
    if (!out->ef) out->ef = ix->p.ef_search;
    if (out->ef < out->k) out->ef = out->k;
    if (!out->nprobe) out->nprobe = ix->p.nprobe;
    return QV_OK;
}

/* A cosine query of up to this many floats is normalized on the stack. */
#define QUERY_STACK_FLOATS 1024

int qv_index_search(const qv_index *ix, const float *query, const qv_search_params *sp,
                    qv_hit *hits, size_t *n_hits)
{
    qv_search_params r;
    float buf[QUERY_STACK_FLOATS], *copy = NULL;
    const float *q;
    int rc;
    if (n_hits) *n_hits = 0;
    if (!ix || !query || !hits || !n_hits) return qv_fail(QV_EINVAL, "index, query, hits or n_hits is NULL");
    if ((rc = resolve_search(ix, sp, &r)) != QV_OK) return rc;
    if ((rc = qv_queries_prepare(ix->p.metric, ix->p.dim, 1, query, buf, QUERY_STACK_FLOATS, &q, &copy)) != QV_OK)
        return rc;
    if ((rc = ix->ops->search(ix, q, &r, hits, n_hits)) != QV_OK) *n_hits = 0;
    qv_free(copy);
    return rc;
}

typedef struct {
    const qv_index *ix;
    const float *q;
    const qv_search_params *sp;
    qv_hit *hits;
    size_t *n_hits;
    int rc;                        /* first failure, written once under the pool's barrier */
    char msg[256];
} batch_job;

static void batch_one(void *arg, size_t i, unsigned worker)
{
    batch_job *job = arg;
    (void)worker;
    size_t k = job->sp->k, dim = job->ix->p.dim;
    int rc = job->ix->ops->search(job->ix, job->q + i * dim, job->sp, job->hits + i * k, &job->n_hits[i]);
    if (rc != QV_OK) {
        job->n_hits[i] = 0;
        /* Benign race on which failure is reported; the code is the same kind of error. */
        if (__atomic_exchange_n(&job->rc, rc, __ATOMIC_RELAXED) == QV_OK)
            snprintf(job->msg, sizeof job->msg, "query %zu: %s", i, qv_last_error());
    }
}

int qv_index_search_batch(const qv_index *ix, size_t nq, const float *queries,
                          const qv_search_params *sp, qv_hit *hits, size_t *n_hits)
{
    qv_search_params r;
    float *copy = NULL;
    const float *q;
    int rc;
    if (!ix || (nq && (!queries || !hits || !n_hits))) return qv_fail(QV_EINVAL, "index, queries, hits or n_hits is NULL");
    if (nq == 0) return QV_OK;
    memset(n_hits, 0, nq * sizeof *n_hits);
    if ((rc = resolve_search(ix, sp, &r)) != QV_OK) return rc;
    if ((rc = qv_queries_prepare(ix->p.metric, ix->p.dim, nq, queries, NULL, 0, &q, &copy)) != QV_OK) return rc;
    if (ix->ops->search_batch) {
        rc = ix->ops->search_batch(ix, nq, q, &r, hits, n_hits);
    } else {
        batch_job job = {ix, q, &r, hits, n_hits, QV_OK, {0}};
        qv_pool_run(ix->pool, nq, 0, batch_one, &job);
        rc = job.rc;
        if (rc != QV_OK) qv_fail(rc, "%s", job.msg);
    }
    if (rc != QV_OK) memset(n_hits, 0, nq * sizeof *n_hits);
    qv_free(copy);
    return rc;
}

/* ---- file format -------------------------------------------------------------------- */

static int write_header(const qv_index *ix, qv_writer *w)
{
    const qv_index_params *p = &ix->p;
    qv_w_bytes(w, QV_INDEX_MAGIC, 4);
    qv_w_u32(w, QV_INDEX_FORMAT_VERSION);
    qv_w_u32(w, (uint32_t)p->kind);
    qv_w_u32(w, p->dim);
    qv_w_u32(w, (uint32_t)p->metric);
    qv_w_u32(w, p->m);
    qv_w_u32(w, p->ef_construction);
    qv_w_u32(w, p->ef_search);
    qv_w_u32(w, p->nlist);
    qv_w_u32(w, p->nprobe);
    qv_w_u32(w, p->kmeans_iters);
    qv_w_u32(w, p->flags);
    qv_w_u64(w, p->seed);
    qv_w_u64(w, (uint64_t)p->max_train_points);
    qv_w_u32(w, (uint32_t)p->quant);
    return qv_w_u32(w, (uint32_t)p->vec_type);   /* offset 68; files before it wrote 0 (f32) */
}

int qv_index_save_mem(const qv_index *ix, void **buf, size_t *len)
{
    qv_writer w;
    int rc;
    if (!ix || !buf || !len) return qv_fail(QV_EINVAL, "index, buf or len is NULL");
    *buf = NULL;
    *len = 0;
    qv_writer_init(&w);
    if ((rc = write_header(ix, &w)) != QV_OK) goto cleanup;
    if ((rc = ix->ops->save(ix, &w)) != QV_OK) goto cleanup;
    rc = qv_writer_finish(&w, buf, len);
cleanup:
    qv_writer_release(&w);
    return rc;
}

int qv_index_save_file(const qv_index *ix, const char *path, int nosync)
{
    qv_atomic_file f;
    qv_writer w;
    int rc;
    if (!ix || !path) return qv_fail(QV_EINVAL, "index or path is NULL");
    if ((rc = qv_atomic_file_begin(&f, path)) != QV_OK) return rc;
    if ((rc = qv_writer_init_fd(&w, f.fd, path)) != QV_OK) goto fail;
    if ((rc = write_header(ix, &w)) != QV_OK) goto fail;
    if ((rc = ix->ops->save(ix, &w)) != QV_OK) goto fail;
    if ((rc = qv_writer_finish_fd(&w)) != QV_OK) goto fail;
    qv_writer_release(&w);
    return qv_atomic_file_commit(&f, nosync);
fail:
    qv_writer_release(&w);
    qv_atomic_file_abort(&f);
    return rc;
}

int qv_index_save(const qv_index *ix, const char *path)
{
    return qv_index_save_file(ix, path, 0);
}

/* The 64-byte header from r into resolved parameters (*p); name for messages. */
static int read_header(qv_reader *r, const char *name, qv_index_params *resolved)
{
    qv_index_params p;
    char magic[4];
    uint32_t version, kind, metric, quant, vec_type;
    uint64_t max_train;
    qv_r_bytes(r, magic, 4, "magic");
    if (r->failed) return r->failed;
    if (memcmp(magic, QV_INDEX_MAGIC, 4) != 0) return qv_fail(QV_ECORRUPT, "%s: offset 0: not a Quiver index (bad magic)", name);
    qv_r_u32(r, &version, "format version");
    if (r->failed) return r->failed;
    if (version < QV_INDEX_FORMAT_VERSION_MIN || version > QV_INDEX_FORMAT_VERSION)
        return qv_fail(QV_ECORRUPT, "%s: offset 4: unsupported format version %u (this build reads %u to %u)", name,
                       version, QV_INDEX_FORMAT_VERSION_MIN, QV_INDEX_FORMAT_VERSION);
    memset(&p, 0, sizeof p);
    qv_r_u32(r, &kind, "kind");
    qv_r_u32(r, &p.dim, "dim");
    qv_r_u32(r, &metric, "metric");
    qv_r_u32(r, &p.m, "m");
    qv_r_u32(r, &p.ef_construction, "ef_construction");
    qv_r_u32(r, &p.ef_search, "ef_search");
    qv_r_u32(r, &p.nlist, "nlist");
    qv_r_u32(r, &p.nprobe, "nprobe");
    qv_r_u32(r, &p.kmeans_iters, "kmeans_iters");
    qv_r_u32(r, &p.flags, "flags");
    qv_r_u64(r, &p.seed, "seed");
    qv_r_u64(r, &max_train, "max_train_points");
    qv_r_u32(r, &quant, "quantization");
    qv_r_u32(r, &vec_type, "vector type");
    if (r->failed) return r->failed;
    /* The vectors' element type, in what was zero padding up to 2026-12-06: older files
     * read as f32; an unknown value fails resolve_params below (QV_ECORRUPT). */
    p.vec_type = (qv_vec_type)vec_type;
    p.quant = (qv_quant)quant;
    p.kind = (qv_index_kind)kind;
    p.metric = (qv_metric)metric;
    p.max_train_points = (size_t)max_train;
    if (resolve_params(&p, resolved) != QV_OK)
        return qv_fail(QV_ECORRUPT, "%s: header: %s", name, qv_last_error());
    return QV_OK;
}

int qv_index_load_mem(const void *buf, size_t len, const char *name, qv_index **out)
{
    qv_reader r;
    qv_index_params resolved;
    qv_index *ix = NULL;
    int rc;

    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    if (!buf) return qv_fail(QV_EINVAL, "buffer is NULL");
    if (!name) name = "(memory)";
    if ((rc = qv_verify_crc(buf, len, name)) != QV_OK) return rc;
    qv_reader_init(&r, buf, len, name);
    if ((rc = read_header(&r, name, &resolved)) != QV_OK) return rc;
    if ((rc = index_alloc(&resolved, &ix)) != QV_OK) return rc;
    if ((rc = ix->ops->load(ix, &r)) != QV_OK) goto cleanup;
    if ((rc = qv_reader_finish(&r)) != QV_OK) goto cleanup;
    *out = ix;
    ix = NULL;
cleanup:
    qv_index_free(ix);
    return rc;
}

int qv_index_load(const char *path, qv_index **out)
{
    void *buf = NULL;
    size_t len = 0;
    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    if (!path) return qv_fail(QV_EINVAL, "path is NULL");
    int rc = qv_read_file(path, &buf, &len);
    if (rc == QV_OK) rc = qv_index_load_mem(buf, len, path, out);
    qv_free(buf);
    return rc;
}

int qv_index_open(const char *path, qv_index **out)
{
    uint8_t head[QV_INDEX_HEADER_BYTES];
    qv_index_params resolved;
    qv_index *ix = NULL;
    qv_reader r;
    struct stat st;
    int fd = -1, rc;

    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    if (!path) return qv_fail(QV_EINVAL, "path is NULL");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) { rc = qv_fail(QV_EIO, "%s: stat: %s", path, strerror(errno)); goto cleanup; }
    if (!S_ISREG(st.st_mode)) { rc = qv_fail(QV_EIO, "%s: not a regular file", path); goto cleanup; }
    ssize_t got = pread(fd, head, sizeof head, 0);
    qv_reader_init(&r, head, got > 0 ? (size_t)got : 0, path);
    if ((rc = read_header(&r, path, &resolved)) != QV_OK) goto cleanup;
    if ((rc = index_alloc(&resolved, &ix)) != QV_OK) goto cleanup;
    /* A quantized hnsw that holds its vectors is read, not mapped: its code rows are
     * re-encoded from the vectors at load; one saved without them (a collection's, whose
     * vectors are in LMDB) maps like a float32 index (hnsw_io.c). */
    rc = ix->ops->open ? ix->ops->open(ix, fd, (uint64_t)st.st_size, path) : QV_INDEX_OPEN_READ;
    if (rc == QV_INDEX_OPEN_READ) {     /* no in-place form: read it */
        qv_index_free(ix);
        ix = NULL;
        rc = qv_index_load(path, &ix);
    }
    if (rc != QV_OK) goto cleanup;
    *out = ix;
    ix = NULL;
cleanup:
    qv_index_free(ix);
    if (fd >= 0) close(fd);
    return rc;
}

int qv_index_set_vector_source(qv_index *ix, const qv_vec_source *src)
{
    return ix && (!src || src->get) && ix->ops->set_vec_source ? ix->ops->set_vec_source(ix, src) : 0;
}

int qv_index_verify(qv_index *ix)
{
    if (!ix) return qv_fail(QV_EINVAL, "index is NULL");
    return ix->ops->verify ? ix->ops->verify(ix) : QV_OK;
}
