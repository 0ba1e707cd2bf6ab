/*
 * core/idmap.c -- uint64 id -> uint32 slot, open addressing with linear probing.
 *
 * Capacity is a power of two and the load factor stays <= 0.7 (grown before an insert
 * would pass it). Empty buckets hold val == QV_IDMAP_NONE, so every key value (0 and
 * UINT64_MAX included) is storable. Deletion uses backward shift: following entries
 * of the cluster move back into the hole when their home bucket allows it, so there are
 * no tombstones and probe lengths do not decay under churn. The hash is the murmur3/
 * splitmix finalizer: sequential ids land in well-spread buckets.
 */
#include "core/idmap.h"

#include "core/alloc.h"
#include "core/error.h"

#define MIN_CAP 16

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

/* Smallest power-of-two capacity holding `count` entries at load <= 0.7; 0 on overflow. */
static size_t cap_for(size_t count)
{
    size_t cap = MIN_CAP;
    while (count > cap / 10 * 7 + (cap % 10) * 7 / 10) {
        if (cap > SIZE_MAX / 2) return 0;
        cap *= 2;
    }
    return cap;
}

static int alloc_table(size_t cap, uint64_t **keys, uint32_t **vals)
{
    *keys = qv_malloc(cap * sizeof **keys);
    *vals = NULL;
    if (!*keys) return QV_ENOMEM;
    if (cap > SIZE_MAX / sizeof **vals || !(*vals = qv_malloc(cap * sizeof **vals))) {
        qv_free(*keys);
        *keys = NULL;
        return qv_fail(QV_ENOMEM, "out of memory for an id map of %zu buckets", cap);
    }
    for (size_t i = 0; i < cap; i++) (*vals)[i] = QV_IDMAP_NONE;
    return QV_OK;
}

int qv_idmap_init(qv_idmap *m, size_t expected)
{
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
    size_t cap = cap_for(expected);
    if (!cap || cap > SIZE_MAX / sizeof(uint64_t))
        return qv_fail(QV_ENOMEM, "id map for %zu ids is too large", expected);
    int rc = alloc_table(cap, &m->keys, &m->vals);
    if (rc != QV_OK) return rc;
    m->cap = cap;
    return QV_OK;
}

void qv_idmap_release(qv_idmap *m)
{
    if (!m) return;
    qv_free(m->keys);
    qv_free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
}

uint32_t qv_idmap_get(const qv_idmap *m, uint64_t id)
{
    if (!m->cap) return QV_IDMAP_NONE;
    size_t mask = m->cap - 1;
    for (size_t i = mix(id) & mask;; i = (i + 1) & mask) {
        if (m->vals[i] == QV_IDMAP_NONE) return QV_IDMAP_NONE;
        if (m->keys[i] == id) return m->vals[i];
    }
}

/* Insert into a table known to have room and not to hold id. */
static void insert_new(uint64_t *keys, uint32_t *vals, size_t cap, uint64_t id, uint32_t v)
{
    size_t mask = cap - 1, i = mix(id) & mask;
    while (vals[i] != QV_IDMAP_NONE) i = (i + 1) & mask;
    keys[i] = id;
    vals[i] = v;
}

static int rehash(qv_idmap *m, size_t cap)
{
    uint64_t *keys;
    uint32_t *vals;
    int rc = alloc_table(cap, &keys, &vals);
    if (rc != QV_OK) return rc;
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i] != QV_IDMAP_NONE) insert_new(keys, vals, cap, m->keys[i], m->vals[i]);
    qv_free(m->keys);
    qv_free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return QV_OK;
}

int qv_idmap_reserve(qv_idmap *m, size_t more)
{
    if (more > SIZE_MAX - m->len) return qv_fail(QV_ENOMEM, "id map reserve overflows");
    size_t cap = cap_for(m->len + more);
    if (!cap || cap > SIZE_MAX / sizeof(uint64_t))
        return qv_fail(QV_ENOMEM, "id map for %zu ids is too large", m->len + more);
    if (cap <= m->cap) return QV_OK;
    return rehash(m, cap);
}

int qv_idmap_put(qv_idmap *m, uint64_t id, uint32_t slot)
{
    if (slot == QV_IDMAP_NONE)
        return qv_fail(QV_EINVAL, "id map slot %u is reserved", (unsigned)slot);
    if (m->cap) {
        size_t mask = m->cap - 1;
        for (size_t i = mix(id) & mask; m->vals[i] != QV_IDMAP_NONE; i = (i + 1) & mask)
            if (m->keys[i] == id) {
                m->vals[i] = slot;
                return QV_OK;
            }
    }
    int rc = qv_idmap_reserve(m, 1);
    if (rc != QV_OK) return rc;
    insert_new(m->keys, m->vals, m->cap, id, slot);
    m->len++;
    return QV_OK;
}

int qv_idmap_del(qv_idmap *m, uint64_t id)
{
    if (!m->cap) return 0;
    size_t mask = m->cap - 1, i = mix(id) & mask;
    for (;; i = (i + 1) & mask) {
        if (m->vals[i] == QV_IDMAP_NONE) return 0;
        if (m->keys[i] == id) break;
    }
    /* Backward shift: walk the rest of the cluster; an entry at j whose home h is not
     * cyclically in (hole, j] can fill the hole, which then moves to j. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->vals[j] != QV_IDMAP_NONE; j = (j + 1) & mask) {
        size_t h = mix(m->keys[j]) & mask;
        if (((j - h) & mask) >= ((j - hole) & mask)) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->vals[hole] = QV_IDMAP_NONE;
    m->len--;
    return 1;
}

size_t qv_idmap_memory(const qv_idmap *m)
{
    return m->cap * (sizeof(uint64_t) + sizeof(uint32_t));
}
