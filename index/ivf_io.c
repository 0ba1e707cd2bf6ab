/*
 * index/ivf_io.c -- the IVF body of the index file (index.c writes the header and CRC).
 *
 * Body layout, little-endian (version 1 of the index format):
 *   u32 nlist                      0 = not trained (then count must be 0)
 *   f32 centroids[nlist*dim]
 *   u64 count                      live vectors
 *   nlist times: u32 len, u64 ids[len], f32 vecs[len*dim]
 *   codec                          quantized index (header quant != none) when trained:
 *                                  its parameters (index/codec.c), last like hnsw's; the
 *                                  codes are not stored but re-encoded from the vectors
 * Squared norms, the id map and the slot table are rebuilt on load, not stored.
 * Arrays are written as raw bytes, which is the little-endian layout on the hosts Quiver
 * builds for (checked at compile time below).
 *
 * Load trusts nothing: nlist in range and equal to the header's nlist when that is set,
 * every length checked against the bytes left before anything is allocated, centroids and
 * vectors finite (vectors unit length within 1e-3 for cosine), ids unique, list lengths
 * summing to count. Failures are QV_ECORRUPT naming the offset (qv_r_corrupt).
 */
#include "index/ivf.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ivf_io.c writes arrays in host order: little-endian only");

#define MAX_NLIST (1u << 24)

int qv_ivf_save(const qv_index *ix, qv_writer *w)
{
    qv_ivf *v = ix->impl;
    int rc;
    pthread_rwlock_rdlock(&v->lock);
    qv_w_u32(w, v->nlist);
    if (v->nlist) qv_w_bytes(w, v->centroids, (size_t)v->nlist * v->dim * sizeof(float));
    qv_w_u64(w, (uint64_t)v->n);
    for (uint32_t l = 0; l < v->nlist; l++) {
        const qv_ivf_list *L = &v->lists[l];
        qv_w_u32(w, L->len);
        qv_w_bytes(w, L->ids, (size_t)L->len * sizeof *L->ids);
        qv_w_bytes(w, L->vecs, (size_t)L->len * v->dim * sizeof(float));
    }
    if (v->nlist && v->codec) qv_codec_save(v->codec, w);
    rc = w->failed ? w->failed : QV_OK;
    pthread_rwlock_unlock(&v->lock);
    return rc;
}

/* Bytes left in the reader (0 once it failed). */
static size_t left(const qv_reader *r) { return r->failed ? 0 : r->len - r->off; }

static int load_lists(qv_ivf *v, qv_reader *r, uint64_t count)
{
    int rc;
    size_t dim = v->dim, row = dim * sizeof(float);
    uint64_t total = 0;
    float *x = NULL;                                    /* one row, aligned copy of the view */

    if ((rc = qv_ivf_reserve_slots(v, (size_t)count)) != QV_OK) return rc;
    if (!(x = qv_malloc(row))) return QV_ENOMEM;
    for (uint32_t l = 0; l < v->nlist; l++) {
        uint32_t len;
        const void *pids, *pvecs;
        if ((rc = qv_r_u32(r, &len, "ivf list length")) != QV_OK) goto cleanup;
        if (len > count - total) {
            rc = qv_r_corrupt(r, "ivf list %u holds %u vectors but only %llu of the declared %llu remain", l, len,
                              (unsigned long long)(count - total), (unsigned long long)count);
            goto cleanup;
        }
        if ((size_t)len > left(r) / (sizeof(uint64_t) + row)) {
            rc = qv_r_corrupt(r, "ivf list %u: %u vectors do not fit in the %zu bytes left", l, len, left(r));
            goto cleanup;
        }
        size_t ids_off = r->off;
        if ((rc = qv_r_view(r, &pids, (size_t)len * sizeof(uint64_t), "ivf list ids")) != QV_OK) goto cleanup;
        size_t vecs_off = r->off;
        if ((rc = qv_r_view(r, &pvecs, (size_t)len * row, "ivf list vectors")) != QV_OK) goto cleanup;
        if ((rc = qv_ivf_list_reserve(&v->lists[l], dim, v->metric == QV_METRIC_L2, v->codec, len)) != QV_OK) goto cleanup;
        for (uint32_t j = 0; j < len; j++) {
            uint64_t id;
            size_t at = vecs_off + (size_t)j * row;
            memcpy(&id, (const uint8_t *)pids + (size_t)j * sizeof id, sizeof id);
            memcpy(x, (const uint8_t *)pvecs + (size_t)j * row, row);
            if (!qv_all_finite(x, dim)) {
                rc = qv_r_corrupt(r, "ivf list %u entry %u (vector at offset %zu) is not finite", l, j, at);
                goto cleanup;
            }
            if (v->metric == QV_METRIC_COSINE && fabsf(qv_norm_sq(x, dim) - 1.0f) > 1e-3f) {
                rc = qv_r_corrupt(r, "ivf list %u entry %u (vector at offset %zu) is not unit length (cosine)", l,
                                  j, at);
                goto cleanup;
            }
            if (qv_idmap_get(&v->map, id) != QV_IDMAP_NONE) {
                rc = qv_r_corrupt(r, "ivf list %u entry %u (id at offset %zu): duplicate id %llu", l, j,
                                  ids_off + (size_t)j * sizeof id, (unsigned long long)id);
                goto cleanup;
            }
            if ((rc = qv_ivf_append(v, l, id, x)) != QV_OK) goto cleanup;
        }
        total += len;
    }
    if (total != count)
        rc = qv_r_corrupt(r, "ivf lists hold %llu vectors, the body declares %llu", (unsigned long long)total,
                          (unsigned long long)count);
cleanup:
    qv_free(x);
    return rc;
}

int qv_ivf_load(qv_index *ix, qv_reader *r)
{
    qv_ivf *v = ix->impl;
    uint32_t nlist;
    uint64_t count;
    const void *pc;
    float *cent = NULL;
    int rc;

    pthread_rwlock_wrlock(&v->lock);
    if ((rc = qv_r_u32(r, &nlist, "ivf nlist")) != QV_OK) goto cleanup;
    if (nlist > MAX_NLIST) {
        rc = qv_r_corrupt(r, "ivf nlist %u is out of range (at most %u)", nlist, MAX_NLIST);
        goto cleanup;
    }
    if (nlist && ix->p.nlist && nlist != ix->p.nlist) {
        rc = qv_r_corrupt(r, "ivf body has %u lists but the header says nlist = %u", nlist, ix->p.nlist);
        goto cleanup;
    }
    if (nlist == 0) {
        if ((rc = qv_r_u64(r, &count, "ivf count")) != QV_OK) goto cleanup;
        if (count != 0) rc = qv_r_corrupt(r, "untrained ivf index declares %llu vectors", (unsigned long long)count);
        goto cleanup;
    }
    size_t cbytes = (size_t)nlist * v->dim * sizeof(float);
    if (cbytes > left(r)) {
        rc = qv_r_corrupt(r, "ivf centroids need %zu bytes, %zu left", cbytes, left(r));
        goto cleanup;
    }
    size_t coff = r->off;
    if ((rc = qv_r_view(r, &pc, cbytes, "ivf centroids")) != QV_OK) goto cleanup;
    if (!(cent = qv_aligned_calloc((size_t)nlist * v->dim, sizeof(float)))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    memcpy(cent, pc, cbytes);
    for (size_t i = 0; i < (size_t)nlist * v->dim; i++)
        if (!isfinite(cent[i])) {
            rc = qv_r_corrupt(r, "ivf centroid %zu (at offset %zu) is not finite", i / v->dim,
                              coff + (i / v->dim) * v->dim * sizeof(float));
            goto cleanup;
        }
    if ((rc = qv_r_u64(r, &count, "ivf count")) != QV_OK) goto cleanup;
    if (count > UINT32_MAX - 1u || count > left(r) / (sizeof(uint64_t) + v->dim * sizeof(float))) {
        rc = qv_r_corrupt(r, "ivf count %llu does not fit the %zu bytes left", (unsigned long long)count, left(r));
        goto cleanup;
    }
    rc = qv_ivf_install(v, nlist, cent);
    cent = NULL;                                        /* owned by v (or freed) now */
    if (rc != QV_OK) goto cleanup;
    /* The lists come before the codec: they are encoded once it is read. */
    qv_codec *codec = v->codec;
    v->codec = NULL;
    rc = load_lists(v, r, count);
    v->codec = codec;
    if (rc != QV_OK) goto cleanup;
    if (codec) {
        if ((rc = qv_codec_load(codec, r)) != QV_OK) goto cleanup;
        for (uint32_t l = 0; l < nlist; l++)
            if ((rc = qv_code_rows_reserve(&v->lists[l].codes, codec, 0, v->lists[l].cap)) != QV_OK) goto cleanup;
        qv_ivf_codes_encode_all(v);
    }
    ix->p.nlist = nlist;
cleanup:
    pthread_rwlock_unlock(&v->lock);
    qv_free(cent);
    return rc;
}
