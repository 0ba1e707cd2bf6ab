/*
 * core/idmap.h -- open-addressing hash map from external uint64 id to dense uint32 slot.
 * Linear probing with backward-shift deletion (no tombstones). Not thread-safe: the owner
 * guards it (indexes hold it under their write lock).
 */
#ifndef QV_CORE_IDMAP_H
#define QV_CORE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define QV_IDMAP_NONE UINT32_MAX

typedef struct {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, len;               /* cap is a power of two */
} qv_idmap;

int      qv_idmap_init(qv_idmap *m, size_t expected);
void     qv_idmap_release(qv_idmap *m);          /* NULL ok */
/** Slot of id, or QV_IDMAP_NONE. */
uint32_t qv_idmap_get(const qv_idmap *m, uint64_t id);
/** Insert or overwrite. @return QV_OK or QV_ENOMEM (map unchanged). */
int      qv_idmap_put(qv_idmap *m, uint64_t id, uint32_t slot);
/** Make room for `more` insertions without rehashing later. */
int      qv_idmap_reserve(qv_idmap *m, size_t more);
/** Remove id; returns 1 when it was present. */
int      qv_idmap_del(qv_idmap *m, uint64_t id);
size_t   qv_idmap_memory(const qv_idmap *m);

#endif
