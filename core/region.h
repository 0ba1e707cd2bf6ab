/*
 * core/region.h -- a growable array at a fixed address: a reserved range of virtual memory
 * whose leading bytes may come from a file (mapped privately: copy-on-write, the file is
 * never written) and whose rest is anonymous, zero-filled memory made usable as it grows.
 *
 * Growing never moves or copies what is there, so readers may keep using pointers into
 * the region while a writer grows it (the HNSW slot arrays rely on this), and an index
 * opened from a file keeps its graph and vectors in the page cache instead of copying
 * them into the heap: untouched pages stay shared with the file, pages a writer changes
 * become private copies.
 *
 * Address space is reserved PROT_NONE and made read-write in place (mprotect), so only
 * what is used counts against the commit limit. The start is aligned to 2 MiB so that
 * anonymous parts can use transparent huge pages (qv_region_hugepages).
 */
#ifndef QV_CORE_REGION_H
#define QV_CORE_REGION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *base;                 /* NULL when nothing is reserved */
    size_t reserved;               /* bytes of address space, a multiple of the page size */
    size_t committed;              /* [base, base + committed) is readable and writable */
    size_t file_bytes;             /* leading bytes backed by a file (page multiple), 0 = none */
} qv_region;

void qv_region_init(qv_region *r);
/** Reserve `bytes` of address space for an empty region (nothing usable yet).
 *  @return QV_OK or QV_ENOMEM (r unchanged). */
int  qv_region_reserve(qv_region *r, size_t bytes);
/** Reserve `reserve` bytes (>= len) and map len bytes of fd from offset off (a page
 *  multiple) at the start, privately. len is rounded up to a page; that many bytes must
 *  exist in the file. @return QV_OK, QV_ENOMEM or QV_EIO (r unchanged). */
int  qv_region_map_file(qv_region *r, int fd, uint64_t off, size_t len, size_t reserve);
/** Make [0, bytes) usable (rounded up to a page); new bytes read as zero.
 *  @return QV_OK, or QV_ENOMEM past the reservation or when the system refuses. */
int  qv_region_commit(qv_region *r, size_t bytes);
/** Unmap everything (NULL or empty ok); r is empty afterwards. */
void qv_region_release(qv_region *r);
/** Ask for transparent huge pages on the anonymous part (a hint; never fails). */
void qv_region_hugepages(qv_region *r);
/** Whether p points into the file-backed part. */
int  qv_region_in_file(const qv_region *r, const void *p);

#endif
