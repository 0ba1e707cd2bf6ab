/*
 * index/hnsw_io.c -- HNSW save/load body (index.c writes the header and the CRC).
 *
 * Body layout (little-endian):
 *   u32 n_slots; u64 entry ((slot << 32) | level, or all ones when empty);
 *   4 x u64 generator state (so later inserts draw the same levels as the saved index);
 *   u32 n_free, n_free x u32 free slots (in reuse order);
 *   per slot 0..n_slots-1: u32 state (0 = free, 1 = live); a live slot continues with
 *   u64 id, u32 level, dim x f32 vector, then for each level 0..level: u32 count and
 *   count x u32 links; a quantized index ends with its codec's trained parameters
 *   (index/codec.c). Code rows are not stored: load re-encodes them from the vectors
 *   (deterministic, and cheaper than validating stored codes).
 * Slot numbers are kept, so a loaded index is the same graph and answers identically.
 * Load validates before linking: counts within the level's maximum, links < n_slots, not
 * self, pointing at live nodes of a high enough level, ids unique, vectors finite, levels
 * <= QV_HNSW_MAX_LEVEL, the free list exactly the non-live slots, the entry point live and
 * on the top level. Any violation is QV_ECORRUPT with the offset.
 */
#include "index/hnsw.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static int w_u32s(qv_writer *w, const uint32_t *v, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return qv_w_bytes(w, v, n * sizeof *v);
#else
    int rc = QV_OK;
    for (size_t i = 0; i < n && rc == QV_OK; i++) rc = qv_w_u32(w, v[i]);
    return rc;
#endif
}

static int w_f32s(qv_writer *w, const float *v, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return qv_w_bytes(w, v, n * sizeof *v);
#else
    int rc = QV_OK;
    for (size_t i = 0; i < n && rc == QV_OK; i++) rc = qv_w_f32(w, v[i]);
    return rc;
#endif
}

static int r_u32s(qv_reader *r, uint32_t *v, size_t n, const char *what)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return qv_r_bytes(r, v, n * sizeof *v, what);
#else
    int rc = QV_OK;
    for (size_t i = 0; i < n && rc == QV_OK; i++) rc = qv_r_u32(r, &v[i], what);
    return rc;
#endif
}

static int r_f32s(qv_reader *r, float *v, size_t n, const char *what)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return qv_r_bytes(r, v, n * sizeof *v, what);
#else
    int rc = QV_OK;
    for (size_t i = 0; i < n && rc == QV_OK; i++) rc = qv_r_f32(r, &v[i], what);
    return rc;
#endif
}

int qv_hnsw_save(const qv_index *ix, qv_writer *w)
{
    qv_hnsw *h = ix->impl;
    pthread_mutex_lock(&h->write_lock);
    uint32_t n = h->n_slots;
    qv_w_u32(w, n);
    qv_w_u64(w, h->entry);
    for (int i = 0; i < 4; i++) qv_w_u64(w, h->rng.s[i]);
    qv_w_u32(w, (uint32_t)h->n_free);
    if (h->n_free) w_u32s(w, h->free_slots, h->n_free);
    for (uint32_t s = 0; s < n; s++) {
        if (h->state[s] != QV_HNSW_LIVE) { qv_w_u32(w, 0); continue; }
        qv_w_u32(w, 1);
        qv_w_u64(w, h->ids[s]);
        unsigned lv = h->levels[s];
        qv_w_u32(w, lv);
        w_f32s(w, qv_hnsw_vec(h, s), h->dim);
        for (unsigned l = 0; l <= lv; l++) {
            const uint32_t *list = qv_hnsw_list(h, s, l);
            uint32_t c = list[0];
            qv_w_u32(w, c);
            w_u32s(w, list + 1, c);
        }
    }
    if (h->codec) qv_codec_save(h->codec, w);
    int rc = w->failed ? w->failed : QV_OK;
    pthread_mutex_unlock(&h->write_lock);
    return rc;
}

int qv_hnsw_load(qv_index *ix, qv_reader *r)
{
    qv_hnsw *h = ix->impl;
    uint32_t n, n_free;
    uint64_t entry;
    int rc;
    qv_r_u32(r, &n, "hnsw slot count");
    qv_r_u64(r, &entry, "hnsw entry point");
    for (int i = 0; i < 4; i++) qv_r_u64(r, &h->rng.s[i], "hnsw generator state");
    qv_r_u32(r, &n_free, "hnsw free count");
    if (r->failed) return r->failed;
    /* Every slot takes at least 4 bytes: bound n before allocating anything. */
    if (n > (r->len - r->off) / 4 || n_free > n)
        return qv_r_corrupt(r, "hnsw: %u slots / %u free do not fit the %zu bytes left", n, n_free,
                            r->len - r->off);
    if (h->rng.s[0] == 0 && h->rng.s[1] == 0 && h->rng.s[2] == 0 && h->rng.s[3] == 0)
        return qv_r_corrupt(r, "hnsw: generator state is all zero");
    if ((rc = qv_hnsw_reserve(h, n)) != QV_OK) return rc;
    if (!(h->free_slots = qv_calloc(n_free ? n_free : 1, sizeof *h->free_slots))) return QV_ENOMEM;
    h->free_cap = n_free ? n_free : 1;
    if (n_free && (rc = r_u32s(r, h->free_slots, n_free, "hnsw free list")) != QV_OK) return rc;
    h->n_free = n_free;
    if ((rc = qv_idmap_reserve(&h->map, n)) != QV_OK) return rc;

    size_t n_live = 0;
    unsigned top = 0;
    for (uint32_t s = 0; s < n; s++) {
        uint32_t st, lv;
        uint64_t id;
        if ((rc = qv_r_u32(r, &st, "hnsw slot state")) != QV_OK) return rc;
        if (st > 1) return qv_r_corrupt(r, "hnsw: slot %u has state %u (expected 0 or 1)", s, st);
        if (!st) continue;
        qv_r_u64(r, &id, "hnsw id");
        if ((rc = qv_r_u32(r, &lv, "hnsw level")) != QV_OK) return rc;
        if (lv > QV_HNSW_MAX_LEVEL)
            return qv_r_corrupt(r, "hnsw: slot %u has level %u (max %u)", s, lv, QV_HNSW_MAX_LEVEL);
        if (qv_idmap_get(&h->map, id) != QV_IDMAP_NONE)
            return qv_r_corrupt(r, "hnsw: id %llu appears twice", (unsigned long long)id);
        if ((rc = qv_idmap_put(&h->map, id, s)) != QV_OK) return rc;
        float *v = qv_hnsw_vec(h, s);
        if ((rc = r_f32s(r, v, h->dim, "hnsw vector")) != QV_OK) return rc;
        for (uint32_t j = 0; j < h->dim; j++)
            if (!isfinite(v[j])) return qv_r_corrupt(r, "hnsw: slot %u vector is not finite", s);
        h->ids[s] = id;
        h->levels[s] = (uint8_t)lv;
        h->state[s] = QV_HNSW_LIVE;
        if (lv) {
            size_t words = (size_t)lv * (h->m + 1);
            if (!(h->upper[s] = qv_calloc(words, sizeof(uint32_t)))) return QV_ENOMEM;
            h->upper_bytes += words * sizeof(uint32_t);
        }
        for (unsigned l = 0; l <= lv; l++) {
            uint32_t *list = qv_hnsw_list(h, s, l), c, maxl = qv_hnsw_maxlinks(h, l);
            if ((rc = qv_r_u32(r, &c, "hnsw link count")) != QV_OK) return rc;
            if (c > maxl) return qv_r_corrupt(r, "hnsw: slot %u level %u has %u links (max %u)", s, l, c, maxl);
            if ((rc = r_u32s(r, list + 1, c, "hnsw links")) != QV_OK) return rc;
            for (uint32_t i = 0; i < c; i++)
                if (list[1 + i] >= n || list[1 + i] == s)
                    return qv_r_corrupt(r, "hnsw: slot %u level %u link %u is %u (self or >= %u slots)",
                                        s, l, i, list[1 + i], n);
            list[0] = c;
            for (uint32_t i = c; i < maxl; i++) list[1 + i] = s;
        }
        n_live++;
        if (lv > top) top = lv;
    }
    /* Cross-checks that need every slot read. */
    for (uint32_t s = 0; s < n; s++) {
        if (h->state[s] != QV_HNSW_LIVE) continue;
        for (unsigned l = 0; l <= h->levels[s]; l++) {
            const uint32_t *list = qv_hnsw_list(h, s, l);
            for (uint32_t i = 0; i < list[0]; i++) {
                uint32_t t = list[1 + i];
                if (h->state[t] != QV_HNSW_LIVE || h->levels[t] < l)
                    return qv_r_corrupt(r, "hnsw: slot %u level %u links to slot %u, which is %s",
                                        s, l, t, h->state[t] != QV_HNSW_LIVE ? "free" : "below that level");
            }
        }
    }
    if (n_free != n - n_live)
        return qv_r_corrupt(r, "hnsw: %u free slots listed, %zu slots are free", n_free, (size_t)(n - n_live));
    for (uint32_t i = 0; i < n_free; i++) {
        uint32_t s = h->free_slots[i];
        if (s >= n || h->state[s] != QV_HNSW_EMPTY)
            return qv_r_corrupt(r, "hnsw: free list entry %u (slot %u) is not a free slot", i, s);
        h->state[s] = QV_HNSW_DELETED;             /* mark to catch duplicates */
    }
    for (uint32_t i = 0; i < n_free; i++) h->state[h->free_slots[i]] = QV_HNSW_EMPTY;
    if (n_live == 0) {
        if (entry != QV_HNSW_ENTRY_NONE) return qv_r_corrupt(r, "hnsw: entry point set in an empty index");
    } else {
        uint32_t es = (uint32_t)(entry >> 32), el = (uint32_t)(entry & 0xffffffffu);
        if (entry == QV_HNSW_ENTRY_NONE || es >= n || h->state[es] != QV_HNSW_LIVE ||
            h->levels[es] != el || el != top)
            return qv_r_corrupt(r, "hnsw: entry point (slot %u, level %u) is not a live node on the top level %u",
                                es, el, top);
    }
    h->entry = entry;
    h->n_slots = n;
    h->n_live = n_live;
    if (h->codec) {
        /* The codec's trained parameters; rows are re-encoded from the vectors. */
        float *tmp;
        if ((rc = qv_codec_load(h->codec, r)) != QV_OK) return rc;
        if (!(tmp = qv_malloc(qv_codec_scratch_floats(h->codec) * sizeof *tmp))) return QV_ENOMEM;
        qv_hnsw_encode_slots(h, 0, n, tmp);
        qv_free(tmp);
    }
    qv_hnsw_update_memory(h);
    return QV_OK;
}
