/*
 * index/hnsw_io.c -- HNSW save, load (a copy into fresh memory) and open in place (the
 * arrays mapped from the file), with the file's checks split into the ones an open makes
 * at once and the ones it defers. index.c writes the 72-byte header and the CRC.
 *
 * Body layout (format version 4, which reads version 3 too; little-endian; offsets are from the start of the file):
 *   u32 n_slots, u32 cap_slots (= n_slots rounded up to 64), u32 block_bytes, u32 n_free,
 *   u64 entry ((slot << 32) | level, or all ones when empty), 4 x u64 generator state
 *   (so later inserts draw the same levels as the saved index), u64 upper_words,
 *   u32 n_arrays, u32 0, then n_arrays x {u32 tag, u32 0, u64 offset, u64 bytes},
 *   n_free x u32 free slots (in reuse order), zeros up to a 4 KiB boundary; then the
 *   arrays, in table order, each at a 4 KiB-aligned offset and followed by zeros up to the
 *   next 4 KiB boundary:
 *     "BLK0" cap_slots x block_bytes   the memory image of the blocks: vector, then the
 *                                      level-0 list [count, m0 links] (hnsw.h)
 *     "IDS_" cap_slots x u64           external id per slot
 *     "LVLS" cap_slots x u8            level per slot (0 for free slots)
 *     "STAT" cap_slots x u8            0 = free, 1 = live
 *     "UPPR" upper_words x u32         the upper lists of the live slots with level > 0,
 *                                      in slot order, level * (m + 1) words each
 *   Slots n_slots..cap_slots-1 are zero. Every array is a page-aligned image of the
 *   in-memory one, so an open maps it instead of reading it (core/region.h); that is why
 *   blocks keep their in-memory padding in the file. Another array (quantized codes, say)
 *   is one more table entry with its own tag: readers refuse tags they do not know.
 *
 * Checks. A load (copy) makes them all before the index is returned. An open makes at
 * once the ones that searches depend on and that read little: the array table against the
 * file size, levels and states, the free list, the entry point and every upper list (a
 * few MB at 1M points); and defers the ones that need every page -- the file checksum,
 * the level-0 lists, finite vectors, unique ids (which also builds the id map) -- to
 * qv_hnsw_verify_locked, run by the first writer or by qv_index_verify. Meanwhile a search
 * bounds every level-0 link it follows by the slot capacity, so a damaged file can give
 * wrong neighbours but never a bad memory access. Any violation is QV_ECORRUPT naming
 * the file; a failed verification is sticky (writers get it too).
 *
 * A quantized index (its blocks hold code rows and links, hnsw.h) follows the arrays with
 * a tail: u32 tag, u32 0, then
 *   "VECS": zeros to a 4 KiB boundary and n_slots x dim vectors, f32 or u8 as the header's
 *           vector type says (offset 68, index.c; 0 = f32 in older files) -- an index that
 *           holds its vectors. Load re-encodes the rows from them (deterministic, cheaper
 *           than validating stored codes); qv_index_open reads such a file, not maps it;
 *   "VECX": the same vectors, then the bit1 ex rows (format version 4 on): u32 ex format
 *           (the codec's ex_bits: bits per dimension), u32 ex_bytes, u32 n_slots, u32
 *           CRC32C of the rows, then n_slots x ex_bytes rows. Load takes these rows and the
 *           code rows in the blocks as stored (each checked: qv_codec_row_ok,
 *           qv_codec_ex_row_ok) instead of re-encoding every vector -- fashion-mnist-784
 *           (60K x 784, bit1 M12) loaded in 0.95 s, now 0.26 s. Rows of another ex format (an
 *           older or newer build's) are skipped and re-encoded, as is a "VECS" file of
 *           version 3; a truncated or damaged section is QV_ECORRUPT;
 *   "NOVC": nothing -- an index whose vectors its owner keeps (a collection: they are in
 *           LMDB, hnsw.h), so its snapshot holds graph and codes only. Its code
 *           rows are used as stored, and it opens in place like a float32 index: bit1
 *           rows (a centroid number that indexes an array) are checked at once, sq rows'
 *           factors with the deferred checks; a damaged row is QV_ECORRUPT. Until a source
 *           is set (qv_index_set_vector_source) it refuses searches and writes (QV_ESTATE).
 * then its codec's trained parameters (index/codec.c). Before 2026-12-05 the tail was the
 * vectors alone; such files now read as QV_ECORRUPT (a collection rebuilds from its points).
 */
#include "index/hnsw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "core/error.h"

#define PAGE 4096u
#define SLOT_ALIGN 64u                 /* cap_slots granularity: 64 blocks are whole pages */
#define N_ARRAYS 5u
#define HEADER_BYTES QV_INDEX_HEADER_BYTES
#define FIXED_META (16u + 8u + 32u + 8u + 8u)
#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define TAIL_VECS TAG('V', 'E', 'C', 'S')
#define TAIL_NOVC TAG('N', 'O', 'V', 'C')
#define TAIL_VECX TAG('V', 'E', 'C', 'X')

enum { A_BLOCKS, A_IDS, A_LEVELS, A_STATE, A_UPPER };
static const uint32_t array_tags[N_ARRAYS] = {
    TAG('B', 'L', 'K', '0'), TAG('I', 'D', 'S', '_'), TAG('L', 'V', 'L', 'S'), TAG('S', 'T', 'A', 'T'),
    TAG('U', 'P', 'P', 'R'),
};

typedef struct {
    uint32_t n, cap, block_bytes, n_free;
    uint64_t entry, rng[4], upper_words;
    uint64_t off[N_ARRAYS], bytes[N_ARRAYS];
    uint64_t tail;                     /* quantized: where the tail starts (page-aligned) */
} hnsw_meta;

static uint64_t round_page(uint64_t x) { return (x + PAGE - 1) / PAGE * PAGE; }

static size_t round_slots(uint32_t n) { return ((size_t)n + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN; }

static int little_endian_only(void)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return QV_OK;
#else
    return qv_fail(QV_EINVAL, "hnsw index files are read and written on little-endian hosts only");
#endif
}

/* ---- save ------------------------------------------------------------------------- */

static int w_zeros(qv_writer *w, uint64_t n)
{
    static const uint8_t zeros[PAGE];
    int rc = QV_OK;
    while (n && rc == QV_OK) {
        size_t m = n < sizeof zeros ? (size_t)n : sizeof zeros;
        rc = qv_w_bytes(w, zeros, m);
        n -= m;
    }
    return rc;
}

/* The first n slots of an array of elem-byte entries, zeros up to cap slots, then the
 * page padding. */
static int w_array(qv_writer *w, const void *p, size_t n, size_t cap, size_t elem)
{
    qv_w_bytes(w, p, n * elem);
    w_zeros(w, (uint64_t)(cap - n) * elem);
    return qv_w_pad(w, PAGE);
}

int qv_hnsw_save(const qv_index *ix, qv_writer *w)
{
    qv_hnsw *h = ix->impl;
    hnsw_meta m;
    int rc;
    if ((rc = little_endian_only()) != QV_OK) return rc;
    pthread_mutex_lock(&h->write_lock);
    /* A mapped file is copied only once it is known to be sound. */
    if ((rc = qv_hnsw_verify_locked(h)) != QV_OK) goto out;
    qv_hnsw_starts_settle(h);                  /* bit1: as the file's load will find them */
    memset(&m, 0, sizeof m);
    m.n = h->n_slots;
    m.cap = (uint32_t)round_slots(m.n);
    m.block_bytes = (uint32_t)h->block_bytes;
    m.n_free = (uint32_t)h->n_free;
    m.entry = h->entry;
    for (int i = 0; i < 4; i++) m.rng[i] = h->rng.s[i];
    for (uint32_t s = 0; s < m.n; s++)
        if (h->state[s] == QV_HNSW_LIVE) m.upper_words += (uint64_t)h->levels[s] * (h->m + 1);
    size_t elem[N_ARRAYS] = {h->block_bytes, sizeof *h->ids, 1, 1, 0};
    for (int i = 0; i < A_UPPER; i++) m.bytes[i] = (uint64_t)m.cap * elem[i];
    m.bytes[A_UPPER] = m.upper_words * sizeof(uint32_t);
    uint64_t pos = qv_writer_pos(w) + FIXED_META + (uint64_t)N_ARRAYS * 24 + (uint64_t)m.n_free * 4;
    for (unsigned i = 0; i < N_ARRAYS; i++) {
        m.off[i] = round_page(pos);
        pos = m.off[i] + m.bytes[i];
    }

    qv_w_u32(w, m.n);
    qv_w_u32(w, m.cap);
    qv_w_u32(w, m.block_bytes);
    qv_w_u32(w, m.n_free);
    qv_w_u64(w, m.entry);
    for (int i = 0; i < 4; i++) qv_w_u64(w, m.rng[i]);
    qv_w_u64(w, m.upper_words);
    qv_w_u32(w, N_ARRAYS);
    qv_w_u32(w, 0);
    for (unsigned i = 0; i < N_ARRAYS; i++) {
        qv_w_u32(w, array_tags[i]);
        qv_w_u32(w, 0);
        qv_w_u64(w, m.off[i]);
        qv_w_u64(w, m.bytes[i]);
    }
    if (m.n_free) qv_w_bytes(w, h->free_slots, (size_t)m.n_free * 4);
    qv_w_pad(w, PAGE);
    w_array(w, h->blocks, m.n, m.cap, h->block_bytes);
    w_array(w, h->ids, m.n, m.cap, sizeof *h->ids);
    w_array(w, h->levels, m.n, m.cap, 1);
    w_array(w, h->state, m.n, m.cap, 1);
    for (uint32_t s = 0; s < m.n; s++)
        if (h->state[s] == QV_HNSW_LIVE && h->levels[s])
            qv_w_bytes(w, h->upper[s], (size_t)h->levels[s] * (h->m + 1) * sizeof(uint32_t));
    qv_w_pad(w, PAGE);
    rc = w->failed;
    if (rc == QV_OK && qv_writer_pos(w) != round_page(pos))
        rc = qv_fail(QV_EINTERNAL, "hnsw save: wrote %llu bytes, planned %llu",
                     (unsigned long long)qv_writer_pos(w), (unsigned long long)round_page(pos));
    if (rc == QV_OK && h->codec) {
        int with = h->vecs && !__atomic_load_n(&h->vecs_owned_elsewhere, __ATOMIC_RELAXED);
        int ex = with && h->xcodes;
        qv_w_u32(w, !with ? TAIL_NOVC : ex ? TAIL_VECX : TAIL_VECS);
        qv_w_u32(w, 0);
        if (with) {
            qv_w_pad(w, PAGE);
            qv_w_bytes(w, h->vecs, (size_t)m.n * h->vec_bytes);
        }
        if (ex) {
            size_t bytes = (size_t)m.n * h->ex_bytes;
            qv_w_u32(w, h->codec->ex_bits);
            qv_w_u32(w, (uint32_t)h->ex_bytes);
            qv_w_u32(w, m.n);
            qv_w_u32(w, qv_crc32c(0, h->xcodes, bytes));
            qv_w_bytes(w, h->xcodes, bytes);
        }
        qv_codec_save(h->codec, w);
        rc = w->failed;
    }
out:
    pthread_mutex_unlock(&h->write_lock);
    return rc;
}

/* ---- the array table ---------------------------------------------------------------- */

/* Fixed fields and the array table from r (positioned just after the file header), checked
 * against h and against a file of file_len bytes (its last 4 the CRC). */
static int read_meta(qv_hnsw *h, qv_reader *r, uint64_t file_len, hnsw_meta *m)
{
    uint32_t n_arrays, zero;
    memset(m, 0, sizeof *m);
    qv_r_u32(r, &m->n, "hnsw slot count");
    qv_r_u32(r, &m->cap, "hnsw slot capacity");
    qv_r_u32(r, &m->block_bytes, "hnsw block size");
    qv_r_u32(r, &m->n_free, "hnsw free count");
    qv_r_u64(r, &m->entry, "hnsw entry point");
    for (int i = 0; i < 4; i++) qv_r_u64(r, &m->rng[i], "hnsw generator state");
    qv_r_u64(r, &m->upper_words, "hnsw upper list words");
    qv_r_u32(r, &n_arrays, "hnsw array count");
    qv_r_u32(r, &zero, "hnsw array count");
    if (r->failed) return r->failed;
    if (m->cap != round_slots(m->n) || m->n_free > m->n)
        return qv_r_corrupt(r, "hnsw: %u slots, capacity %u, %u free do not agree", m->n, m->cap, m->n_free);
    if (m->block_bytes != h->block_bytes)
        return qv_r_corrupt(r, "hnsw: block size %u, expected %zu for dim %u and m %u", m->block_bytes,
                            h->block_bytes, h->dim, h->m);
    if (n_arrays != N_ARRAYS || zero != 0)
        return qv_r_corrupt(r, "hnsw: %u arrays listed (this build reads %u)", n_arrays, N_ARRAYS);
    if (m->rng[0] == 0 && m->rng[1] == 0 && m->rng[2] == 0 && m->rng[3] == 0)
        return qv_r_corrupt(r, "hnsw: generator state is all zero");
    if (m->upper_words > (uint64_t)m->n * QV_HNSW_MAX_LEVEL * (h->m + 1))
        return qv_r_corrupt(r, "hnsw: %llu upper list words for %u slots", (unsigned long long)m->upper_words, m->n);
    size_t elem[N_ARRAYS] = {h->block_bytes, sizeof(uint64_t), 1, 1, 0};
    uint64_t end = HEADER_BYTES + FIXED_META + (uint64_t)N_ARRAYS * 24 + (uint64_t)m->n_free * 4;
    for (unsigned i = 0; i < N_ARRAYS; i++) {
        uint32_t tag;
        qv_r_u32(r, &tag, "hnsw array tag");
        qv_r_u32(r, &zero, "hnsw array flags");
        qv_r_u64(r, &m->off[i], "hnsw array offset");
        qv_r_u64(r, &m->bytes[i], "hnsw array size");
        if (r->failed) return r->failed;
        uint64_t want = i == A_UPPER ? m->upper_words * 4 : (uint64_t)m->cap * elem[i];
        if (tag != array_tags[i] || zero != 0)
            return qv_r_corrupt(r, "hnsw: array %u has tag %08x (expected %08x)", i, (unsigned)tag,
                                (unsigned)array_tags[i]);
        if (m->bytes[i] != want || m->off[i] % PAGE || m->off[i] < end ||
            m->off[i] > file_len || m->bytes[i] > file_len - m->off[i])
            return qv_r_corrupt(r, "hnsw: array %u (%llu bytes at %llu) does not fit the file of %llu bytes", i,
                                (unsigned long long)m->bytes[i], (unsigned long long)m->off[i],
                                (unsigned long long)file_len);
        end = round_page(m->off[i] + m->bytes[i]);
    }
    /* A quantized index continues with its tail and codec (their reads check the rest). */
    m->tail = end;
    if (h->codec ? end + 8 + 4 > file_len : end + 4 != file_len)
        return qv_r_corrupt(r, "hnsw: the arrays end at %llu, the file at %llu", (unsigned long long)end,
                            (unsigned long long)file_len);
    return QV_OK;
}

/* ---- checks ------------------------------------------------------------------------- */

/* The checks an open makes at once (arrays in place, h->upper set): levels and states,
 * upper lists, free list, entry point; then the counters are set. name: for messages. */
static int check_now(qv_hnsw *h, const hnsw_meta *m, const char *name)
{
    size_t n_live = 0;
    uint64_t words = 0;
    unsigned top = 0;
    const uint32_t n = m->n;
    for (uint32_t s = 0; s < n; s++) {
        unsigned st = h->state[s], lv = h->levels[s];
        if (st > QV_HNSW_LIVE || lv > QV_HNSW_MAX_LEVEL || (st != QV_HNSW_LIVE && lv))
            return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u has state %u and level %u", name, s, st, lv);
        if (st != QV_HNSW_LIVE) continue;
        n_live++;
        if (lv > top) top = lv;
        words += (uint64_t)lv * (h->m + 1);
    }
    if (words != m->upper_words)
        return qv_fail(QV_ECORRUPT, "%s: hnsw levels need %llu upper list words, the file holds %llu", name,
                       (unsigned long long)words, (unsigned long long)m->upper_words);
    for (uint32_t s = 0; s < n; s++) {
        if (h->state[s] != QV_HNSW_LIVE) continue;
        for (unsigned l = 1; l <= h->levels[s]; l++) {
            const uint32_t *list = qv_hnsw_list(h, s, l);
            if (list[0] > h->m)
                return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u level %u has %u links (max %u)", name, s, l, list[0], h->m);
            for (uint32_t i = 0; i < list[0]; i++) {
                uint32_t t = list[1 + i];
                if (t >= n || t == s || h->state[t] != QV_HNSW_LIVE || h->levels[t] < l)
                    return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u level %u links to slot %u (self, free, absent "
                                   "or below that level)", name, s, l, t);
            }
        }
    }
    if (m->n_free != n - n_live)
        return qv_fail(QV_ECORRUPT, "%s: hnsw: %u free slots listed, %zu slots are free", name, m->n_free,
                       (size_t)(n - n_live));
    if (m->n_free) {
        /* seen[] catches duplicates without writing to the (possibly mapped) arrays */
        uint64_t *seen = qv_calloc((size_t)n / 64 + 1, sizeof *seen);
        if (!seen) return QV_ENOMEM;
        for (uint32_t i = 0; i < m->n_free; i++) {
            uint32_t s = h->free_slots[i];
            if (s >= n || h->state[s] != QV_HNSW_EMPTY || (seen[s / 64] >> (s % 64) & 1)) {
                qv_free(seen);
                return qv_fail(QV_ECORRUPT, "%s: hnsw free list entry %u (slot %u) is not a free slot", name, i, s);
            }
            seen[s / 64] |= 1ull << (s % 64);
        }
        qv_free(seen);
    }
    if (n_live == 0) {
        if (m->entry != QV_HNSW_ENTRY_NONE) return qv_fail(QV_ECORRUPT, "%s: hnsw entry point set in an empty index", name);
    } else {
        uint32_t es = (uint32_t)(m->entry >> 32), el = (uint32_t)(m->entry & 0xffffffffu);
        if (m->entry == QV_HNSW_ENTRY_NONE || es >= n || h->state[es] != QV_HNSW_LIVE || h->levels[es] != el ||
            el != top)
            return qv_fail(QV_ECORRUPT, "%s: hnsw entry point (slot %u, level %u) is not a live node on the top "
                           "level %u", name, es, el, top);
    }
    h->entry = m->entry;
    h->n_slots = n;
    h->n_live = n_live;
    h->ordered_live = n_live;              /* renumber again only after it grows (hnsw_reorder.c) */
    for (int i = 0; i < 4; i++) h->rng.s[i] = m->rng[i];
    return QV_OK;
}

/* The checks that read every block (write_lock held or h not yet shared): level-0 lists,
 * finite vectors, code rows used as stored (without vectors, or with the ex rows taken
 * from the file: `stored`), unique ids; fills the id map. */
static int check_blocks(qv_hnsw *h, const char *name, int stored)
{
    const uint32_t n = h->n_slots;
    int rc = qv_idmap_reserve(&h->map, h->n_live);
    if (rc != QV_OK) return rc;
    for (uint32_t s = 0; s < n; s++) {
        if (h->state[s] != QV_HNSW_LIVE) continue;
        const uint32_t *list = qv_hnsw_list(h, s, 0);
        if (list[0] > h->m0)
            return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u level 0 has %u links (max %u)", name, s, list[0], h->m0);
        for (uint32_t i = 0; i < list[0]; i++) {
            uint32_t t = list[1 + i];
            if (t >= n || t == s || h->state[t] != QV_HNSW_LIVE)
                return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u level 0 links to slot %u (self, free or absent)", name,
                               s, t);
        }
        if (h->codec && (stored || !h->vecs)) {
            if (!qv_codec_row_ok(h->codec, qv_hnsw_code(h, s)))
                return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u: damaged code row", name, s);
            if (stored && !qv_codec_ex_row_ok(h->codec, qv_hnsw_xcode(h, s)))
                return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u: damaged ex row", name, s);
        }
        if (h->vecs && h->vec_type == QV_VEC_F16) {
            const uint16_t *v = (const uint16_t *)qv_hnsw_row(h, s);
            for (uint32_t j = 0; j < h->dim; j++)
                if ((v[j] & 0x7c00u) == 0x7c00u)
                    return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u vector is not finite", name, s);
        }
        if ((!h->codec || h->vecs) && h->vec_type == QV_VEC_F32) {      /* (any u8 byte is a value) */
            const float *v = (const float *)qv_hnsw_row(h, s);
            for (uint32_t j = 0; j < h->dim; j++)
                if (!isfinite(v[j])) return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u vector is not finite", name, s);
        }
        if (qv_idmap_get(&h->map, h->ids[s]) != QV_IDMAP_NONE)
            return qv_fail(QV_ECORRUPT, "%s: hnsw id %llu appears twice", name, (unsigned long long)h->ids[s]);
        qv_idmap_put(&h->map, h->ids[s], s);          /* room reserved above */
    }
    return QV_OK;
}

/* ---- load: a copy ------------------------------------------------------------------- */

/* Advance r to absolute offset `to` over zero bytes. */
static int skip_padding(qv_reader *r, uint64_t to)
{
    const uint8_t *p;
    if (to < r->off) return qv_r_corrupt(r, "hnsw: arrays out of order");
    size_t n = (size_t)(to - r->off);
    if (qv_r_view(r, (const void **)&p, n, "hnsw padding") != QV_OK) return r->failed;
    for (size_t i = 0; i < n; i++)
        if (p[i]) return qv_r_corrupt(r, "hnsw: padding byte %zu before offset %llu is not zero", i, (unsigned long long)to);
    return QV_OK;
}

/* The quantized tail's tag (r at the end of the arrays) into *tag: with "NOVC" the index
 * holds no vectors (vecs_absent, set before the arrays are sized); with "VECS" or "VECX"
 * r is left at them. */
static int read_tail_tag(qv_hnsw *h, qv_reader *r, uint32_t *tag)
{
    uint32_t zero;
    int rc;
    if ((rc = skip_padding(r, round_page(r->off))) != QV_OK) return rc;
    qv_r_u32(r, tag, "hnsw vectors tag");
    if ((rc = qv_r_u32(r, &zero, "hnsw vectors tag")) != QV_OK) return rc;
    if (zero != 0 || (*tag != TAIL_VECS && *tag != TAIL_VECX && *tag != TAIL_NOVC))
        return qv_r_corrupt(r, "hnsw: vectors tag %08x (expected VECS, VECX or NOVC)", (unsigned)*tag);
    if (*tag != TAIL_NOVC) return skip_padding(r, round_page(r->off));
    h->vecs_absent = 1;
    return QV_OK;
}

/* The ex row section of a "VECX" tail (r at it) into h->xcodes (room for n rows).
 * Returns QV_OK with *stored set when the rows were taken, clear when they are of another
 * format than this build's (skipped: the caller re-encodes them). */
static int read_ex_rows(qv_hnsw *h, qv_reader *r, uint32_t n, int *stored)
{
    uint32_t format, ex_bytes, count, crc;
    const void *rows;
    int rc;
    *stored = 0;
    qv_r_u32(r, &format, "hnsw ex rows format");
    qv_r_u32(r, &ex_bytes, "hnsw ex row size");
    qv_r_u32(r, &count, "hnsw ex row count");
    if ((rc = qv_r_u32(r, &crc, "hnsw ex rows checksum")) != QV_OK) return rc;
    if (count != n)
        return qv_r_corrupt(r, "hnsw: %u ex rows for %u slots", count, n);
    if (ex_bytes == 0 || ex_bytes > (1u << 20))
        return qv_r_corrupt(r, "hnsw: ex rows of %u bytes", ex_bytes);
    if (!h->xcodes) return qv_r_corrupt(r, "hnsw: ex rows in a %s index", qv_quant_name(h->codec->kind));
    if ((rc = qv_r_view(r, &rows, (size_t)n * ex_bytes, "hnsw ex rows")) != QV_OK) return rc;
    if (format != h->codec->ex_bits || ex_bytes != h->ex_bytes) return QV_OK;
    uint32_t got = qv_crc32c(0, rows, (size_t)n * ex_bytes);
    if (got != crc)
        return qv_r_corrupt(r, "hnsw: ex rows checksum mismatch (stored %08x, computed %08x)", (unsigned)crc,
                            (unsigned)got);
    memcpy(h->xcodes, rows, (size_t)n * ex_bytes);
    *stored = 1;
    return QV_OK;
}

int qv_hnsw_load(qv_index *ix, qv_reader *r)
{
    qv_hnsw *h = ix->impl;
    hnsw_meta m;
    const void *src[N_ARRAYS];
    uint32_t tail = 0;
    int rc, stored = 0;
    if ((rc = little_endian_only()) != QV_OK) return rc;
    if (r->off != HEADER_BYTES) return qv_r_corrupt(r, "hnsw: body not at offset %u", HEADER_BYTES);
    if ((rc = read_meta(h, r, r->len, &m)) != QV_OK) return rc;
    if (!(h->free_slots = qv_calloc(m.n_free ? m.n_free : 1, sizeof *h->free_slots))) return QV_ENOMEM;
    h->free_cap = m.n_free ? m.n_free : 1;
    if ((rc = qv_r_bytes(r, h->free_slots, (size_t)m.n_free * 4, "hnsw free list")) != QV_OK) return rc;
    h->n_free = m.n_free;
    for (unsigned i = 0; i < N_ARRAYS; i++) {
        if ((rc = skip_padding(r, m.off[i])) != QV_OK) return rc;
        if ((rc = qv_r_view(r, &src[i], (size_t)m.bytes[i], "hnsw array")) != QV_OK) return rc;
    }
    if (!h->codec && (rc = skip_padding(r, r->len - 4)) != QV_OK) return rc;
    if (h->codec && (rc = read_tail_tag(h, r, &tail)) != QV_OK) return rc;
    if ((rc = qv_hnsw_reserve(h, m.n)) != QV_OK) return rc;
    if (h->vecs && m.n &&
        (rc = qv_r_bytes(r, h->vecs, (size_t)m.n * h->vec_bytes, "hnsw vectors")) != QV_OK)
        return rc;
    if (tail == TAIL_VECX && (rc = read_ex_rows(h, r, m.n, &stored)) != QV_OK) return rc;
    if (m.n) {
        memcpy(h->blocks, src[A_BLOCKS], (size_t)m.n * h->block_bytes);
        memcpy(h->ids, src[A_IDS], (size_t)m.n * sizeof *h->ids);
        memcpy(h->levels, src[A_LEVELS], m.n);
        memcpy(h->state, src[A_STATE], m.n);
    }
    /* Upper lists: each node's own allocation, cut from the pool in slot order. */
    const uint32_t *pool = src[A_UPPER];
    uint64_t at = 0;
    for (uint32_t s = 0; s < m.n; s++) {
        unsigned lv = h->levels[s];
        if (h->state[s] != QV_HNSW_LIVE || !lv || lv > QV_HNSW_MAX_LEVEL) continue;
        size_t words = (size_t)lv * (h->m + 1);
        if (at + words > m.upper_words) break;     /* check_now reports the mismatch */
        if (!(h->upper[s] = qv_malloc(words * sizeof(uint32_t)))) return QV_ENOMEM;
        memcpy(h->upper[s], pool + at, words * sizeof(uint32_t));
        h->upper_bytes += words * sizeof(uint32_t);
        at += words;
    }
    if ((rc = check_now(h, &m, r->name)) != QV_OK) return rc;
    /* The codec's trained parameters first: check_blocks checks stored rows against it. */
    if (h->codec && (rc = qv_codec_load(h->codec, r)) != QV_OK) return rc;
    if ((rc = check_blocks(h, r->name, stored)) != QV_OK) return rc;
    if (h->vecs && !stored) {
        /* Rows are re-encoded from the vectors. */
        float *tmp;
        if (!(tmp = qv_malloc(qv_hnsw_encode_tmp_floats(h) * sizeof *tmp))) return QV_ENOMEM;
        qv_hnsw_encode_slots(h, 0, m.n, tmp);
        qv_free(tmp);
    }
    if (h->codec) {
        /* Where bit1 searches start (hnsw_starts.c): not in the file, found again. Without
         * a scratch searches descend. */
        qv_hnsw_starts_table(h);
        qv_hnsw_scratch *s = qv_hnsw_scratch_get(h);
        qv_hnsw_starts_find(h, s);
        qv_hnsw_scratch_put(h, s);
    }
    qv_hnsw_update_memory(h);
    return QV_OK;
}

/* ---- open: in place ----------------------------------------------------------------- */

static int pread_all(int fd, void *buf, size_t n, uint64_t off, const char *name)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return qv_fail(QV_EIO, "%s: read at offset %llu: %s", name, (unsigned long long)off, strerror(errno));
        if (got == 0) return qv_fail(QV_ECORRUPT, "%s: truncated at offset %llu", name, (unsigned long long)off);
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return QV_OK;
}

/* Map array i of the file into region g, reserving room for `reserve` slots of elem bytes. */
static int map_array(int fd, const hnsw_meta *m, unsigned i, size_t elem, size_t reserve, qv_region *g)
{
    size_t bytes = (size_t)m->bytes[i];
    return qv_region_map_file(g, fd, m->off[i], bytes, reserve * elem > bytes ? reserve * elem : bytes);
}

/* A quantized file's tail: QV_INDEX_OPEN_READ when it holds the vectors (read, not
 * mapped), else the codec loaded and h->vecs_absent set. */
static int open_tail(qv_hnsw *h, int fd, const hnsw_meta *m, uint64_t file_len, const char *name)
{
    uint8_t t[8];
    int rc = pread_all(fd, t, sizeof t, m->tail, name);
    if (rc != QV_OK) return rc;
    uint32_t tag = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    uint32_t zero = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
    if ((tag == TAIL_VECS || tag == TAIL_VECX) && zero == 0) return QV_INDEX_OPEN_READ;
    if (tag != TAIL_NOVC || zero != 0)
        return qv_fail(QV_ECORRUPT, "%s: offset %llu: hnsw vectors tag %08x (expected VECS, VECX or NOVC)", name,
                       (unsigned long long)m->tail, (unsigned)tag);
    size_t len = (size_t)(file_len - 4 - m->tail - 8);
    uint8_t *buf = qv_malloc(len ? len : 1);
    if (!buf) return QV_ENOMEM;
    qv_reader r;
    if ((rc = pread_all(fd, buf, len, m->tail + 8, name)) == QV_OK) {
        qv_reader_init(&r, buf, len, name);
        if ((rc = qv_codec_load(h->codec, &r)) == QV_OK && r.off != len)
            rc = qv_fail(QV_ECORRUPT, "%s: %zu bytes after the codec", name, len - (size_t)r.off);
    }
    qv_free(buf);
    if (rc == QV_OK) h->vecs_absent = 1;
    return rc;
}

int qv_hnsw_open(qv_index *ix, int fd, uint64_t file_len, const char *name)
{
    qv_hnsw *h = ix->impl;
    hnsw_meta m;
    qv_reader r;
    uint8_t fixed[FIXED_META + N_ARRAYS * 24];
    int rc;
    if ((rc = little_endian_only()) != QV_OK) return rc;
    if (file_len < HEADER_BYTES + sizeof fixed)
        return qv_fail(QV_ECORRUPT, "%s: truncated at offset %llu reading hnsw header", name, (unsigned long long)file_len);
    if ((rc = pread_all(fd, fixed, sizeof fixed, HEADER_BYTES, name)) != QV_OK) return rc;
    qv_reader_init(&r, fixed, sizeof fixed, name);
    r.off = 0;
    /* read_meta checks offsets against the file: make the reader's offsets the file's */
    if ((rc = read_meta(h, &r, file_len, &m)) != QV_OK) return rc;
    if (h->codec && (rc = open_tail(h, fd, &m, file_len, name)) != QV_OK) return rc;
    if (!(h->free_slots = qv_calloc(m.n_free ? m.n_free : 1, sizeof *h->free_slots))) return QV_ENOMEM;
    h->free_cap = m.n_free ? m.n_free : 1;
    if ((rc = pread_all(fd, h->free_slots, (size_t)m.n_free * 4, HEADER_BYTES + sizeof fixed, name)) != QV_OK) return rc;
    h->n_free = m.n_free;

    /* Room to grow in place: as many slots again, at least 64k. */
    size_t reserve = (size_t)m.cap * 2 > (size_t)m.cap + 65536 ? (size_t)m.cap * 2 : (size_t)m.cap + 65536;
    size_t elem[4] = {h->block_bytes, sizeof *h->ids, 1, 1};
    qv_region *g[4] = {&h->r_blocks, &h->r_ids, &h->r_levels, &h->r_state};
    for (unsigned i = 0; i < 4; i++)
        if ((rc = map_array(fd, &m, i, elem[i], reserve, g[i])) != QV_OK) return rc;
    if (m.upper_words &&
        (rc = qv_region_map_file(&h->r_pool, fd, m.off[A_UPPER], (size_t)m.bytes[A_UPPER], 0)) != QV_OK)
        return rc;
    if ((rc = qv_region_reserve(&h->r_upper, reserve * sizeof *h->upper)) != QV_OK) return rc;
    if ((rc = qv_region_commit(&h->r_upper, (size_t)m.cap * sizeof *h->upper)) != QV_OK) return rc;
#ifdef MADV_RANDOM
    /* Searches touch blocks at random: fault in single pages, not 128 KiB around each
     * (a cold first search reads ~4x less); the verification pass reads sequentially
     * through the file descriptor, which warms the page cache for them. */
    if (h->r_blocks.file_bytes) (void)madvise(h->r_blocks.base, h->r_blocks.file_bytes, MADV_RANDOM);
#endif
    qv_region_hugepages(&h->r_blocks);         /* for the part that grows */
    h->blocks = h->r_blocks.base;
    h->vec_base = h->codec ? NULL : h->blocks;     /* quantized: vectors from a source */
    h->ids = (uint64_t *)h->r_ids.base;
    h->levels = h->r_levels.base;
    h->state = h->r_state.base;
    h->upper = (uint32_t **)h->r_upper.base;
    h->cap = m.cap;
    h->reserve_cap = reserve;
    /* Upper lists point into the mapped pool, in slot order (check_now checks the sum). */
    uint32_t *pool = (uint32_t *)h->r_pool.base;
    uint64_t at = 0;
    for (uint32_t s = 0; s < m.n; s++) {
        unsigned lv = h->levels[s];
        if (h->state[s] != QV_HNSW_LIVE || !lv || lv > QV_HNSW_MAX_LEVEL) continue;
        size_t words = (size_t)lv * (h->m + 1);
        if (at + words > m.upper_words) break;
        h->upper[s] = pool + at;
        at += words;
    }
    h->upper_bytes = (size_t)m.bytes[A_UPPER];
    if ((rc = check_now(h, &m, name)) != QV_OK) return rc;
    /* A bit1 row names a centroid, an array index: checked before any search reads one. */
    for (uint32_t s = 0; h->codec && h->codec->kind == QV_QUANT_BIT1 && s < m.n; s++)
        if (h->state[s] == QV_HNSW_LIVE && !qv_codec_row_ok(h->codec, qv_hnsw_code(h, s)))
            return qv_fail(QV_ECORRUPT, "%s: hnsw slot %u: damaged code row", name, s);
    /* Where bit1 searches start (hnsw_starts.c): found as after a load, by searches, which
     * run on the graph before it is verified (bounded as any search). */
    qv_hnsw_starts_table(h);
    if (h->codec) {
        qv_hnsw_scratch *s = qv_hnsw_scratch_get(h);
        qv_hnsw_starts_find(h, s);
        qv_hnsw_scratch_put(h, s);
    }
    if ((h->fd = dup(fd)) < 0) return qv_fail(QV_EIO, "%s: dup: %s", name, strerror(errno));
    if (!(h->file_name = qv_strdup(name))) return QV_ENOMEM;
    h->file_len = file_len;
    __atomic_store_n(&h->unverified, 1, __ATOMIC_RELEASE);
    qv_hnsw_update_memory(h);
    return QV_OK;
}

/* ---- deferred verification --------------------------------------------------------- */

/* CRC32C of the file's first len - 4 bytes against its last 4, read through the file
 * (the page cache; not the mapping, so it adds nothing to the resident set). */
static int check_file_crc(qv_hnsw *h)
{
    const size_t chunk = 1u << 20;
    uint8_t *buf = qv_malloc(chunk);
    uint8_t tail[4];
    uint32_t crc = 0;
    int rc = QV_OK;
    if (!buf) return QV_ENOMEM;
    for (uint64_t off = 0; off < h->file_len - 4 && rc == QV_OK;) {
        size_t n = h->file_len - 4 - off < chunk ? (size_t)(h->file_len - 4 - off) : chunk;
        if ((rc = pread_all(h->fd, buf, n, off, h->file_name)) == QV_OK) crc = qv_crc32c(crc, buf, n);
        off += n;
    }
    if (rc == QV_OK && (rc = pread_all(h->fd, tail, 4, h->file_len - 4, h->file_name)) == QV_OK) {
        uint32_t got = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
        if (got != crc)
            rc = qv_fail(QV_ECORRUPT, "%s: checksum mismatch at offset %llu (stored %08x, computed %08x)", h->file_name,
                         (unsigned long long)(h->file_len - 4), (unsigned)got, (unsigned)crc);
    }
    qv_free(buf);
    return rc;
}

int qv_hnsw_verify_locked(qv_hnsw *h)
{
    if (!__atomic_load_n(&h->unverified, __ATOMIC_ACQUIRE)) {
        if (h->verify_rc != QV_OK) return qv_fail(h->verify_rc, "%s", h->verify_msg);
        return QV_OK;
    }
    int rc = check_file_crc(h);
    if (rc == QV_OK) rc = check_blocks(h, h->file_name, 0);
    if (rc == QV_ENOMEM) return rc;            /* not the file's fault: may be retried */
    if (rc != QV_OK) {
        if (rc == QV_EIO) rc = qv_fail(QV_ECORRUPT, "%s", qv_last_error());
        h->verify_rc = rc;
        snprintf(h->verify_msg, sizeof h->verify_msg, "%s", qv_last_error());
    }
    close(h->fd);
    h->fd = -1;
    __atomic_store_n(&h->unverified, 0, __ATOMIC_RELEASE);
    qv_hnsw_update_memory(h);
    return rc;
}

int qv_hnsw_verify(qv_index *ix)
{
    qv_hnsw *h = ix->impl;
    pthread_mutex_lock(&h->write_lock);
    int rc = qv_hnsw_verify_locked(h);
    pthread_mutex_unlock(&h->write_lock);
    return rc;
}
