/*
 * index/hnsw.h -- private layout and cross-file helpers of the HNSW index (Malkov &
 * Yashunin, arXiv 1603.09320). Files: hnsw_graph.c (layout, growth, locks, scratch,
 * self-check, ops table), hnsw_search.c (layer search, queries, filters, batch),
 * hnsw_insert.c (neighbour heuristic, insertion, add), hnsw_build_codes.c (the 8-bit
 * codes a large add walks on), hnsw_starts.c (where a bit1 search enters level 0),
 * hnsw_delete.c (remove with graph
 * repair), hnsw_reorder.c (slot renumbering for locality), hnsw_io.c (save, load, open in
 * place, deferred verification).
 *
 * Memory layout (laid out for the search loop). Nodes live in dense slots 0..n_slots-1.
 * Each slot owns one block of `block_bytes` bytes (a multiple of 64, the array 64-byte
 * aligned): the vector (dim floats) at offset 0, then the level-0 list
 * [count, link 0 .. link m0-1]. Levels >= 1 of a node sit in a separate array upper[slot]
 * of level * (1 + m) words, one [count, links...] list per level.
 * A quantized index (codec != NULL, hnsw_codes.c) puts the node's code row (index/codec.h)
 * at offset 0 of the block instead, and keeps the float vectors in a separate array
 * `vecs` (slot-major) that only building, repair and re-scoring read: the walk touches
 * codes and links alone. qv_hnsw_row() finds the vector in either layout. With vec_type
 * QV_VEC_U8 or QV_VEC_F16 (quantized index only) `vecs` holds one byte or one half per value
 * (qv_hnsw_vecf widens a row where floats are needed). Inside a
 * collection a quantized index holds no float vectors at all: it reads them from the
 * collection's LMDB map through a vector source (qv_vec_source, index/index.h; src below),
 * in a session each search, insert task and repair opens (qv_hnsw_src_begin/end).
 *
 * The slot arrays (blocks, ids, levels, state, upper) each live in a fixed-address region
 * (core/region.h) with address space reserved ahead, so growing them copies nothing and
 * moves nothing; only a growth past the reservation relocates them (under grow_lock
 * exclusive, as before). An index opened in place (qv_hnsw_open) maps blocks, ids, levels
 * and state straight from the file, privately (copy-on-write), and its upper lists point
 * into the mapped pool of the file; writes then copy only the pages they touch.
 *
 * Concurrency model:
 *  - write_lock (mutex) serializes add/remove/save: one writer batch at a time; inside a
 *    batch, inserts run in parallel on ix->pool.
 *  - grow_lock (rwlock, writer-preferring) is held shared by every search and exclusive
 *    only to swap in larger arrays and to quiesce searches before freed slots are reused.
 *  - stripes[] (mutexes by slot) guard writers of one node's link lists.
 *  - entry_lock guards raising the entry point; the entry point itself is one atomic u64.
 *  - The build codes kept across adds (bcodes) are read by inserts only, and made,
 *    grown and dropped under write_lock (by add() or by their reaper thread, which waits
 *    on bc_cond with write_lock); searches never read them.
 *  - Readers never lock lists: counts and links are read with acquire loads and written
 *    with release stores (plain moves on x86), so a reader that sees a link also sees the
 *    linked node's vector, id and level. Every word of a list is always either a live or
 *    once-live node id or the owner's own id (tails are filled with the owner), so a reader
 *    racing with a rewrite sees only valid slots; freed slots are reused only after a
 *    quiesce, when no running search can still hold them.
 *  - state[slot]: 0 empty/free or still being inserted, 1 live, 2 deleted (awaiting
 *    reuse); results include only live slots, and walks settle only on inserted ones
 *    (qv_hnsw_inserted).
 */
#ifndef QV_INDEX_HNSW_H
#define QV_INDEX_HNSW_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "index/index.h"
#include "index/codec.h"
#include "core/distance.h"
#include "core/idmap.h"
#include "core/region.h"
#include "core/rng.h"

#define QV_HNSW_MAX_LEVEL 31u          /* random levels are clamped here (p < 1e-9 at m=2) */
#define QV_HNSW_MAX_M0 200u            /* longest level-0 list: 2 x the largest m (index.c) */
#define QV_HNSW_NSTRIPES 1024u
#define QV_HNSW_NONE UINT32_MAX
#define QV_HNSW_ENTRY_NONE UINT64_MAX

enum { QV_HNSW_EMPTY = 0, QV_HNSW_LIVE = 1, QV_HNSW_DELETED = 2 };

typedef struct { float d; uint32_t id; } qv_hnsw_cand;

/* Visited tags: 16 bits, so the tags of 1M slots take 2 MB instead of 4 and stay in the
 * caches better; the array is cleared when the epoch wraps, once per 65535 searches. */
typedef uint16_t qv_hnsw_tag;

/* Per-thread search/insert scratch, reused across queries (no allocation on the search
 * path once warm). */
typedef struct qv_hnsw_scratch {
    qv_hnsw_tag *visited;              /* epoch tags, one per slot */
    size_t visited_cap;
    qv_hnsw_tag epoch;
    qv_hnsw_cand *cand;                /* min-heap of candidates to expand */
    size_t cand_cap;
    qv_hnsw_cand *res;                 /* max-heap of the best ef found */
    size_t res_cap;
    qv_hnsw_cand *work;                /* sorted candidates for selection / repair */
    size_t work_cap;
    qv_hnsw_cand *sel;                 /* selected neighbours */
    size_t sel_cap;
    uint32_t *nbuf;                    /* unvisited neighbours of one expansion */
    size_t nbuf_cap;
    void *qbuf;                        /* quantized index: the prepared query (64-aligned) */
    float *qtmp;                       /* quantized index: rotation / encoding scratch */
    uint32_t *expd;                    /* quantized index: nodes expanded by the walk */
    size_t expd_cap;
    qv_hnsw_cand *ex;                  /* bit1: exact distances of expanded nodes (max-heap) */
    size_t ex_cap;
    /* bit1 with ex rows (hnsw_codes.c), expd_cap entries each: */
    float *xlo;                        /* lower bound of each expanded node's distance */
    qv_hnsw_cand *fl;                  /* nodes whose float vector is read: (lower, id) */
    qv_hnsw_cand *ub;                  /* max-heap of the k best upper bounds, ex_cap */
    float *vf;                         /* u8, f16 rows: 3 * dim floats, stored rows widened to
                                          serve as queries (insert, connect, select) */
    size_t bytes;                      /* all bytes held, for memory() */
} qv_hnsw_scratch;

typedef struct qv_hnsw {
    uint32_t dim, m, m0, efc, flags;
    qv_metric metric;
    double ml;                         /* 1 / ln(m) */
    size_t block_bytes, links_off;
    uint8_t *vec_base;                 /* vector of slot s at vec_base + s * vec_stride */
    size_t vec_stride;
    qv_codec *codec;                   /* NULL = float32 index; swapped under grow_lock */
    uint8_t *vecs;                     /* quantized index: cap rows of vec_bytes, else NULL */
    qv_row_dist_fn dist;               /* a float query against a stored row (vec_type) */
    qv_row_dist_x4_fn dist_x4;

    /* slot arrays, each the start of its region (replaced only by a relocation, under
     * grow_lock exclusive) */
    uint8_t *blocks;
    uint64_t *ids;
    uint8_t *levels;
    uint8_t *state;
    uint32_t **upper;
    size_t cap;                        /* slots usable in every array (under grow_lock) */
    size_t reserve_cap;                /* slots the regions can grow to in place */
    qv_region r_blocks, r_ids, r_levels, r_state, r_upper;
    qv_region r_vecs;                  /* quantized index: the float vectors (vecs) */
    qv_region r_pool;                  /* opened in place: the file's upper lists */
    uint32_t n_slots;                  /* high-water mark; atomic */
    size_t n_live;                     /* atomic */
    size_t upper_bytes;                /* bytes in upper arrays; under write_lock */
    size_t ordered_live;               /* n_live at the last renumbering (hnsw_reorder.c) */

    uint32_t *free_slots;              /* reusable slots (quiesced), used LIFO */
    size_t n_free, free_cap;

    qv_idmap map;                      /* external id -> slot; under write_lock */
    uint64_t entry;                    /* (slot << 32) | level, or ENTRY_NONE; atomic */
    qv_rng rng;                        /* level draws; under write_lock */

    pthread_mutex_t write_lock, entry_lock, scratch_lock;
    pthread_rwlock_t grow_lock;
    pthread_mutex_t stripes[QV_HNSW_NSTRIPES];

    qv_hnsw_scratch **spare;           /* idle scratch objects; under scratch_lock */
    size_t n_spare, spare_cap;
    size_t mem_bytes;                  /* graph bytes, refreshed by writers; atomic */

    /* Opened in place: the checks that need every page (file checksum, level-0 links,
     * vectors, unique ids -> the id map) wait for qv_hnsw_verify_locked. Until then
     * searches run (every link they follow is bounds-checked) and writers verify first. */
    int unverified;                    /* atomic */
    int verify_rc;                     /* its result, sticky (under write_lock) */
    char verify_msg[320];
    int fd;                            /* the file, kept for the checksum pass; -1 */
    uint64_t file_len;
    char *file_name;
    size_t mem_vectors, mem_codes;     /* the float vectors / code rows within; atomic */
    /* Off the walks' first two cache lines (see src below): read once per search. */
    qv_vec_type vec_type;              /* rows of float32, or of u8 or f16 (quantized index only) */
    size_t vec_bytes;                  /* bytes of one row: qv_row_bytes(vec_type, dim) */
    int locks_ready;                   /* the mutexes above were initialized */
    int codec_pinned;                  /* trained by qv_index_train: no automatic retraining */
    size_t codes_trained_n;            /* n_slots at the last training (0: not since load);
                                          under write_lock */
    /* bit1: the second stage's ex rows (index/codec.h), ex_bytes per slot, kept while the
     * index holds its float vectors (they are re-encoded from them on load); NULL with a
     * vector source, where re-scoring goes straight to the vectors. */
    uint8_t *xcodes;
    size_t ex_bytes;
    qv_region r_xcodes;

    /* Build codes kept across small adds (hnsw_build_codes.c), all under write_lock. */
    struct qv_hnsw_bcodes *bcodes;     /* NULL: the next add walks on floats */
    size_t bc_recent;                  /* points added since the kept codes were last dropped */
    uint64_t bc_last_ms;               /* when the last add ended (monotonic ms) */
    uint64_t bc_due_ms;                /* when the reaper drops the kept codes */
    int bc_reaper;                     /* 0 none, 1 running, 2 exited (join it) */
    int bc_stop;                       /* destroy: the reaper returns at once */
    pthread_t bc_thread;
    pthread_cond_t bc_cond;            /* wakes the reaper (with write_lock) */

    /* A collection's on_disk vectors, last and read once per search (qv_hnsw_vecs_of):
     * the fields the walks read on every step (vec_base .. blocks, dist, dist_x4) stay in
     * the struct's first two cache lines. */
    qv_vec_source src;                 /* quantized index without vecs: where they are */
    /* bit1: the level-0 nodes a search starts from, one per centroid (hnsw_starts.c). */
    uint32_t starts[QV_RABITQ_MAX_CLUSTERS];   /* slot or QV_HNSW_NONE; atomic, written under
                                                  write_lock (or grow_lock exclusive) */
    float *start_tab;                  /* QV_HNSW_START_DIMS x 64: the centroids ranked by;
                                          rewritten only under grow_lock exclusive */
    size_t starts_n;                   /* n_live when they were found (0: not yet); write_lock */
    float *src_missing;                /* with src: dim zeros, the vector of an id src lacks */
    int vecs_absent;                   /* loaded from a file without vectors, src not yet set */
    int vecs_owned_elsewhere;          /* save without vecs even while holding them */
} qv_hnsw;

/* ---- inline accessors ------------------------------------------------------------- */

/* The stored row of slot: dim floats, u8 or f16 values (vec_type), for h->dist. */
static inline uint8_t *qv_hnsw_row(const qv_hnsw *h, uint32_t slot)
{
    if (__builtin_expect(h->src.get != NULL, 0)) {   /* read-only: the caller's session keeps it valid */
        const float *v = h->src.get(h->src.ctx, h->ids[slot]);
        return (uint8_t *)(v ? v : h->src_missing);
    }
    return h->vec_base + (size_t)slot * h->vec_stride;
}

/* The vector of slot as floats: the row itself in a float index, else widened into buf
 * (dim floats). For the places that use a stored vector as a query or encode it. */
static inline const float *qv_hnsw_vecf(const qv_hnsw *h, uint32_t slot, float *buf)
{
    const uint8_t *row = qv_hnsw_row(h, slot);
    if (h->vec_type == QV_VEC_F32) return (const float *)row;
    qv_row_to_float(h->vec_type, row, h->dim, buf);
    return buf;
}

/* Store v (dim floats, already checked to be integers 0..255 for u8, already rounded to
 * halves for f16: qv_index_add) as slot's row. */
static inline void qv_hnsw_put_row(qv_hnsw *h, uint32_t slot, const float *v)
{
    uint8_t *row = qv_hnsw_row(h, slot);
    if (h->vec_type == QV_VEC_F16) {
        uint16_t *r16 = (uint16_t *)row;
        for (size_t i = 0; i < h->dim; i++) r16[i] = qv_f16_from_float(v[i]);
        return;
    }
    if (h->vec_type != QV_VEC_U8) {
        memcpy(row, v, h->dim * sizeof(float));
        return;
    }
    for (size_t i = 0; i < h->dim; i++) row[i] = (uint8_t)v[i];
}

/* Whether a vector's memory is worth prefetching before it is read: not with a source,
 * where finding it is the read. */
static inline int qv_hnsw_vec_inline(const qv_hnsw *h) { return h->src.get == NULL; }

/* Where one search (or insertion walk) reads vectors, looked up once at its start: base is
 * the held vectors' array, NULL when they come from the source. The walks' loops read
 * through qv_hnsw_vecs_at, a register test and an address computation, instead of loading
 * and testing h->src on every read (each call to a distance kernel made the compiler
 * load it again). */
typedef struct {
    const uint8_t *base;
    size_t stride;
    const qv_hnsw *h;
} qv_hnsw_vecs;

static inline qv_hnsw_vecs qv_hnsw_vecs_of(const qv_hnsw *h)
{
    qv_hnsw_vecs v = {qv_hnsw_vec_inline(h) ? h->vec_base : NULL, h->vec_stride, h};
    return v;
}

static inline const uint8_t *qv_hnsw_vecs_at(qv_hnsw_vecs v, uint32_t slot)
{
    if (__builtin_expect(v.base != NULL, 1)) return v.base + (size_t)slot * v.stride;
    return qv_hnsw_row(v.h, slot);
}

/* A vector-source session around work that reads vectors in this thread (grow_lock or
 * write_lock held, so src does not change meanwhile): 1 when one was opened (end it with
 * qv_hnsw_src_end), 0 for an index that holds its vectors, or a QV_E* code. */
static inline int qv_hnsw_src_begin(const qv_hnsw *h)
{
    if (!h->src.begin) return 0;
    int rc = h->src.begin(h->src.ctx);
    return rc == QV_OK ? 1 : rc;
}
static inline void qv_hnsw_src_end(const qv_hnsw *h) { h->src.end(h->src.ctx); }

/* The code row of slot (quantized index only). */
static inline uint8_t *qv_hnsw_code(const qv_hnsw *h, uint32_t slot)
{
    return h->blocks + (size_t)slot * h->block_bytes;
}

/* The ex row of slot (bit1 with xcodes only). */
static inline uint8_t *qv_hnsw_xcode(const qv_hnsw *h, uint32_t slot)
{
    return h->xcodes + (size_t)slot * h->ex_bytes;
}

/* The [count, links...] list of slot at level (NULL when the node has no such level). */
static inline uint32_t *qv_hnsw_list(const qv_hnsw *h, uint32_t slot, unsigned level)
{
    if (level == 0) return (uint32_t *)(h->blocks + (size_t)slot * h->block_bytes + h->links_off);
    if (__atomic_load_n(&h->levels[slot], __ATOMIC_RELAXED) < level) return NULL;
    uint32_t *u = __atomic_load_n(&h->upper[slot], __ATOMIC_ACQUIRE);
    return u ? u + (size_t)(level - 1) * (h->m + 1) : NULL;
}

static inline uint32_t qv_hnsw_maxlinks(const qv_hnsw *h, unsigned level)
{
    return level == 0 ? h->m0 : h->m;
}

static inline uint32_t qv_hnsw_ld(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void qv_hnsw_st(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* Whether slot's insertion has finished (live, or deleted since): insert_one writes all
 * its lists before the release store of its state. A node still being inserted is already
 * linked from its neighbours at the levels done so far while its own lower lists are
 * empty, so a walk must not settle on it: see qv_hnsw_descend and insert_one. */
static inline int qv_hnsw_inserted(const qv_hnsw *h, uint32_t slot)
{
    return __atomic_load_n(&h->state[slot], __ATOMIC_ACQUIRE) != QV_HNSW_EMPTY;
}

static inline uint64_t qv_hnsw_entry_pack(uint32_t slot, unsigned level)
{
    return ((uint64_t)slot << 32) | level;
}

static inline pthread_mutex_t *qv_hnsw_stripe(qv_hnsw *h, uint32_t slot)
{
    return &h->stripes[slot & (QV_HNSW_NSTRIPES - 1)];
}

/* ---- hnsw_graph.c ------------------------------------------------------------------ */
/** Grow slot arrays to hold at least `need` slots (write_lock held). QV_OK / QV_ENOMEM. */
int  qv_hnsw_reserve(qv_hnsw *h, size_t need);
/** Take a scratch sized for the current capacity (caller holds grow_lock shared or
 *  write_lock). NULL with QV_ENOMEM set on failure. */
qv_hnsw_scratch *qv_hnsw_scratch_get(qv_hnsw *h);
/** Regrow s after the index grew (visited tags for every slot). */
int  qv_hnsw_scratch_refresh(qv_hnsw *h, qv_hnsw_scratch *s);
void qv_hnsw_scratch_put(qv_hnsw *h, qv_hnsw_scratch *s);
/** Make sure s can hold cand/res heaps for ef and a work list of `work` entries. */
int  qv_hnsw_scratch_fit(qv_hnsw_scratch *s, size_t ef, size_t work);
/** A fresh visited epoch (clears the tags on wraparound). */
qv_hnsw_tag qv_hnsw_new_epoch(qv_hnsw_scratch *s);
/** Write a list: entries, then count, then the tail filled with the owner's id. */
void qv_hnsw_write_list(uint32_t *list, uint32_t owner, uint32_t max, const uint32_t *links,
                        uint32_t count);
/** Recompute mem_bytes (write_lock held), so memory() never waits for a long add. */
void qv_hnsw_update_memory(qv_hnsw *h);

/** Make every live node reachable at level 0 from the entry point (write_lock held):
 *  each unreachable node gets an in-link from its nearest reachable node. tmp holds
 *  qv_hnsw_fix_bytes(cap) bytes; s is a scratch sized for the index. */
size_t qv_hnsw_fix_bytes(size_t cap);
void qv_hnsw_fix_reach(qv_hnsw *h, qv_hnsw_scratch *s, void *tmp);

/* Graph self-check (tests, `quiver info`): fills r, never prints. */
typedef struct {
    size_t live;                       /* live nodes */
    size_t reachable;                  /* live nodes reachable at level 0 from the entry */
    size_t dangling;                   /* links to non-live or out-of-range slots */
    size_t self_links;
    size_t bad_level;                  /* level-l links to nodes below level l */
    size_t over_degree;                /* counts above the level's maximum */
    unsigned max_level;
    int entry_ok;                      /* entry live and at the top level (or empty index) */
} qv_hnsw_report;
int qv_hnsw_check(const qv_index *ix, qv_hnsw_report *r);

/* ---- hnsw_build_codes.c -------------------------------------------------------------- */
/* A large add() to a float index walks on 8-bit codes of every slot (see the file). */
#define QV_HNSW_BCODES_MIN 50000u      /* batch size from which it does */
extern size_t qv_hnsw_bcodes_min;      /* that size, QV_HNSW_BCODES_MIN (tests change it) */
#define QV_HNSW_BCODES_MAX_EF 1024u    /* and efConstruction up to which (the re-scoring sort) */
#define QV_HNSW_BCODES_IDLE_MS 2000u  /* kept codes are dropped after this long with no add */
/* An index that reads its vectors from a source (on_disk) keeps codes for a stream of
 * adds from this many points and 1/QV_HNSW_BCODES_SRC_SHARE of the index (see the file). */
#define QV_HNSW_BCODES_SRC_MIN 1000u
#define QV_HNSW_BCODES_SRC_SHARE 256u
extern size_t qv_hnsw_bcodes_src_min;  /* QV_HNSW_BCODES_SRC_MIN (tests change it) */
extern unsigned qv_hnsw_bcodes_idle_ms; /* that time (tests change it) */
typedef struct qv_hnsw_bcodes {
    qv_codec *codec;                   /* sq8, fitted to the batch */
    size_t trained_n;                  /* kept codes: n_slots when they were fitted */
    const qv_code_kernels *k;
    uint8_t *rows;                     /* cap rows of stride bytes: the u8 code of each slot */
    float *f0;                         /* cap: the row's factor (codec.h) */
    size_t stride, cap, qbytes, tmp_floats;
    unsigned workers;
    uint8_t *qbufs;                    /* workers x qbytes: each one's prepared query */
    float *tmp;                        /* workers x (codec scratch + one row) */
} qv_hnsw_bcodes;
/* An insert's prepared query: est(slot) = a + f0[slot] - gamma * dot(rows[slot], w). */
typedef struct {
    const qv_hnsw_bcodes *b;
    float a, gamma;
    const int8_t *w;
} qv_hnsw_bquery;
/** Fit the codes to the batch's n vectors and allocate rows for h->cap slots and one
 *  query buffer per worker (before the index changes). QV_OK / QV_ENOMEM. */
int  qv_hnsw_bcodes_new(const qv_hnsw *h, size_t n, const float *vecs, unsigned workers,
                        qv_hnsw_bcodes **out);
/** Encode every slot below n_slots from its vector, in parallel on pool. */
void qv_hnsw_bcodes_encode(const qv_hnsw *h, qv_hnsw_bcodes *b, qv_pool *pool);
void qv_hnsw_bcodes_query(const qv_hnsw_bcodes *b, const float *q, unsigned worker, qv_hnsw_bquery *out);
void qv_hnsw_bcodes_free(qv_hnsw_bcodes *b);
/** Kept codes for add() (write_lock held; the vectors of the batch's n slots in place):
 *  the kept ones brought up to date, new ones once a stream of adds adds up to a large
 *  batch, or NULL (walk on floats). Never fails: out of memory means floats. A single
 *  large batch still gets codes of its own, freed when it ends (qv_hnsw_add). */
qv_hnsw_bcodes *qv_hnsw_bcodes_for_add(qv_hnsw *h, const uint32_t *slots, size_t n, qv_pool *pool);
/** After add(): note the use and make sure a reaper drops them once writes stop. */
void qv_hnsw_bcodes_after_add(qv_hnsw *h);
/** Re-encode the kept codes after the slots were renumbered (write_lock held). */
void qv_hnsw_bcodes_renumbered(qv_hnsw *h, qv_pool *pool);
/** Drop the kept codes now (write_lock held). */
void qv_hnsw_bcodes_drop(qv_hnsw *h);
/** Stop and join the reaper, drop the codes (destroy; no other user left). */
void qv_hnsw_bcodes_shutdown(qv_hnsw *h);

/* ---- hnsw_search.c ---------------------------------------------------------------- */
/** Beam search at one level from n_ep entry points; leaves up to ef best in s->res (a
 *  max-heap, length returned). With only_live, only live nodes that pass f (NULL = no
 *  filter) enter res, while the walk still passes through the others; insertion passes
 *  only_live = 0 so nodes still being inserted can be linked. Stops after max_visits
 *  distance computations. */
typedef struct qv_hnsw_filter qv_hnsw_filter;
size_t qv_hnsw_search_layer(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q,
                            const uint32_t *ep, size_t n_ep, size_t ef, unsigned level,
                            int only_live, const qv_hnsw_filter *f, size_t max_visits);
/** The insertion walk at one level (only_live = 0, no filter, no bound): the same walk as
 *  qv_hnsw_search_layer, but the ef best are kept in one sorted array, s->work, that also
 *  serves as the candidate list; returns their count, ascending by (d, id) in s->work.
 *  With bq (build codes) the walk ranks by estimates, and the ef found are re-scored with
 *  the float vectors and sorted again: s->work holds exact distances either way. */
size_t qv_hnsw_build_layer(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q,
                           const qv_hnsw_bquery *bq, uint32_t ep, size_t ef, unsigned level);
/** Greedy descent from the entry down to (and excluding) level `stop`. */
uint32_t qv_hnsw_descend(const qv_hnsw *h, const float *q, uint32_t cur, unsigned top,
                         unsigned stop);
/** Pop all of s->res into ascending order in s->work; returns the count. */
size_t qv_hnsw_res_sorted(qv_hnsw_scratch *s, size_t len);
int qv_hnsw_search(const qv_index *ix, const float *q, const qv_search_params *sp,
                   qv_hit *hits, size_t *n_hits);
int qv_hnsw_search_batch(const qv_index *ix, size_t nq, const float *q,
                         const qv_search_params *sp, qv_hit *hits, size_t *n_hits);

/* ---- hnsw_insert.c ---------------------------------------------------------------- */
/** Neighbour-selection heuristic over cands (ascending by distance to the base node):
 *  out[0..npre) are already chosen; appends until max ids are in out. keep_pruned fills
 *  up with discarded ones. Returns the count in out. */
uint32_t qv_hnsw_select(const qv_hnsw *h, const qv_hnsw_cand *cands, size_t n, uint32_t max,
                        int keep_pruned, uint32_t *out, uint32_t npre, float *vf);
/** y gains a link to x at level l (dxy = dist(x, y)); y's list is pruned by the
 *  heuristic when full. Locks y's stripe. vf: 2 * dim floats of scratch (s->vf + dim),
 *  select's: dim floats (s->vf + 2 * dim); read only with u8 rows. */
void qv_hnsw_connect(qv_hnsw *h, uint32_t y, uint32_t x, float dxy, unsigned l, int keep, float *vf);
int qv_hnsw_add(qv_index *ix, size_t n, const uint64_t *ids, const float *vecs);

/* ---- hnsw_delete.c ---------------------------------------------------------------- */
/** Remove with repair; write_lock held by the caller. Cannot fail once `scr` (one per pool
 *  worker) are given. */
void qv_hnsw_remove_locked(qv_index *ix, const uint64_t *ids, size_t n, size_t *n_removed,
                           qv_hnsw_scratch **scr, void *fix_tmp);
int qv_hnsw_remove(qv_index *ix, size_t n, const uint64_t *ids, size_t *n_removed);

/** Free an upper-level array unless it lives in the mapped pool. */
void qv_hnsw_upper_free(qv_hnsw *h, uint32_t *u);
/* ---- hnsw_codes.c (quantized index) ---------------------------------------------- */
/** Search on codes, then re-score (sp->rescore): leaves up to ceil(k * oversampling)
 *  candidates in s->res (a max-heap, length returned), exact distances when re-scored. */
size_t qv_hnsw_search_codes(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q,
                            const qv_search_params *sp, const qv_hnsw_filter *f, size_t max_visits);
/** Encode one slot's code row from v. */
void qv_hnsw_encode_one(qv_hnsw *h, uint32_t slot, const float *v, float *tmp);
/** Floats of tmp that qv_hnsw_encode_slots needs (the codec's scratch, then a row widened). */
size_t qv_hnsw_encode_tmp_floats(const qv_hnsw *h);
/** Encode slots [from, to) from their vectors (rows of free slots are harmless). */
void qv_hnsw_encode_slots(qv_hnsw *h, uint32_t from, uint32_t to, float *tmp);
/** Train the codec when it has not seen enough vectors (first batch, or the index has
 *  doubled since): fits a new codec to the vectors present and re-encodes every row,
 *  under grow_lock exclusive. write_lock held. Failure leaves the old codec. */
int  qv_hnsw_codes_retrain(qv_hnsw *h, int force);
/** Train on a sample of n vectors (empty index: before the first rows are encoded). */
int  qv_hnsw_codes_train_on(qv_hnsw *h, const float *vecs, size_t n);
int  qv_hnsw_train(qv_index *ix, size_t n, const float *vecs);
/** ops->set_vec_source: drop vecs, read vectors from src (quantized index only). */
int  qv_hnsw_set_vec_source(qv_index *ix, const qv_vec_source *src);
/** QV_OK, or QV_ESTATE when the index was loaded without its vectors and has no source. */
int  qv_hnsw_check_vectors(const qv_hnsw *h);

/** The nearest live node to q by estimate (a walk on codes from the descent, beam ef, no
 *  re-scoring), or QV_HNSW_NONE (empty index, out of memory). s: a scratch of the index. */
uint32_t qv_hnsw_codes_nearest(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q, size_t ef);

/* ---- hnsw_starts.c (bit1) ----------------------------------------------------------- */
#define QV_HNSW_START_DIMS 64u         /* rotated coordinates the centroids are ranked by */
#define QV_HNSW_NSTARTS 2u             /* centroids whose start nodes a search starts from */
extern int qv_hnsw_starts_on;          /* 0: searches always descend (tests, A/B runs) */
/** Forget the start nodes (searches descend). */
void   qv_hnsw_starts_clear(qv_hnsw *h);
/** After the codec changed (grow_lock exclusive, or the index not yet shared): the
 *  centroids' ranking table; clears the start nodes. Out of memory leaves starts off. */
void   qv_hnsw_starts_table(qv_hnsw *h);
/** The start nodes for a prepared query into out; 0 when the search should descend. */
size_t qv_hnsw_starts_pick(const qv_hnsw *h, qv_codec_query *qq, uint32_t out[QV_HNSW_NSTARTS]);
/** Find every centroid's start node now (write_lock held; s: a scratch of the index). */
void   qv_hnsw_starts_find(qv_hnsw *h, qv_hnsw_scratch *s);
/** After add(): find them when missing, lost, or the index has doubled since. */
void   qv_hnsw_starts_refresh(qv_hnsw *h, qv_hnsw_scratch *s);
/** After a removal, before its slots can be reused: find them again if one was removed. */
void   qv_hnsw_starts_removed(qv_hnsw *h, qv_hnsw_scratch *s);
/** Before a save (write_lock held): find them on the graph saved, as its load will, so that
 *  the index and its copy answer alike. */
void   qv_hnsw_starts_settle(qv_hnsw *h);
/** Slots renumbered: new slot = perm[old] (grow_lock exclusive). */
void   qv_hnsw_starts_renumber(qv_hnsw *h, const uint32_t *perm, uint32_t n);

/* ---- hnsw_reorder.c ------------------------------------------------------------- */
/** Renumber the slots in breadth-first order of the level-0 graph (write_lock held; takes
 *  grow_lock exclusive). Ids, results and the id map are unchanged. 1 when done, 0 when
 *  skipped (empty index, or no memory for the permutation). */
int qv_hnsw_reorder(qv_hnsw *h);
/** Whether add() should renumber now: the live count passed REORDER_MIN and has grown
 *  by half since the last renumbering. */
int qv_hnsw_reorder_due(const qv_hnsw *h);

/* ---- hnsw_io.c -------------------------------------------------------------------- */
int qv_hnsw_save(const qv_index *ix, qv_writer *w);
int qv_hnsw_load(qv_index *ix, qv_reader *r);
/** Open in place from fd (file_len bytes, header already read); see hnsw_io.c. */
int qv_hnsw_open(qv_index *ix, int fd, uint64_t file_len, const char *name);
/** Run the checks an open deferred (write_lock held); QV_OK or the sticky QV_ECORRUPT. */
int qv_hnsw_verify_locked(qv_hnsw *h);
int qv_hnsw_verify(qv_index *ix);

#endif
