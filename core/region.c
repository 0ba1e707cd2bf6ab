/*
 * core/region.c -- fixed-address growable arrays over reserved virtual memory (see
 * core/region.h).
 *
 * The reservation is an anonymous PROT_NONE mapping (MAP_NORESERVE): it costs address
 * space only. Committing turns its next pages read-write with mprotect, which is where the
 * kernel charges them (so a strict overcommit policy refuses there, as QV_ENOMEM). A file
 * part replaces the first pages of the reservation with MAP_FIXED | MAP_PRIVATE: reads come
 * from the page cache, a write copies the page (the file itself is never written).
 */
#include "core/region.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define HUGE_ALIGN ((size_t)2 << 20)

static size_t page_size(void)
{
    static size_t ps;
    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (size_t)v : 4096;
    }
    return ps;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

void qv_region_init(qv_region *r) { memset(r, 0, sizeof *r); }

/* Reserve bytes (rounded to a page) at a 2 MiB-aligned address. */
static int reserve_at(size_t bytes, uint8_t **out, size_t *reserved)
{
    *out = NULL;
    if (bytes > SIZE_MAX - 2 * HUGE_ALIGN) return qv_fail(QV_ENOMEM, "cannot reserve %zu bytes of address space", bytes);
    bytes = round_up(bytes ? bytes : 1, page_size());
    if (qv_alloc_injected_failure()) return qv_fail(QV_ENOMEM, "out of memory reserving %zu bytes", bytes);
    size_t span = bytes + HUGE_ALIGN;
    uint8_t *raw = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return qv_fail(QV_ENOMEM, "cannot reserve %zu bytes of address space: %s", bytes, strerror(errno));
    uint8_t *base = (uint8_t *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    if (base > raw) munmap(raw, (size_t)(base - raw));
    size_t tail = (size_t)(raw + span - (base + bytes));
    if (tail) munmap(base + bytes, tail);
    *out = base;
    *reserved = bytes;
    return QV_OK;
}

int qv_region_reserve(qv_region *r, size_t bytes)
{
    qv_region n;
    qv_region_init(&n);
    int rc = reserve_at(bytes, &n.base, &n.reserved);
    if (rc == QV_OK) *r = n;
    return rc;
}

int qv_region_map_file(qv_region *r, int fd, uint64_t off, size_t len, size_t reserve)
{
    qv_region n;
    int rc;
    qv_region_init(&n);
    if (off % page_size()) return qv_fail(QV_EINVAL, "file offset %llu is not page aligned", (unsigned long long)off);
    len = round_up(len, page_size());
    if (reserve < len) reserve = len;
    if ((rc = reserve_at(reserve, &n.base, &n.reserved)) != QV_OK) return rc;
    if (len) {
        void *p = mmap(n.base, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, (off_t)off);
        if (p == MAP_FAILED) {
            rc = qv_fail(errno == ENOMEM ? QV_ENOMEM : QV_EIO, "cannot map %zu bytes of the file at offset %llu: %s",
                         len, (unsigned long long)off, strerror(errno));
            munmap(n.base, n.reserved);
            return rc;
        }
    }
    n.committed = n.file_bytes = len;
    *r = n;
    return QV_OK;
}

int qv_region_commit(qv_region *r, size_t bytes)
{
    if (bytes <= r->committed) return QV_OK;
    bytes = round_up(bytes, page_size());
    if (bytes > r->reserved)
        return qv_fail(QV_ENOMEM, "region of %zu bytes cannot grow to %zu", r->reserved, bytes);
    if (qv_alloc_injected_failure()) return qv_fail(QV_ENOMEM, "out of memory committing %zu bytes", bytes);
    if (mprotect(r->base + r->committed, bytes - r->committed, PROT_READ | PROT_WRITE) != 0)
        return qv_fail(QV_ENOMEM, "cannot commit %zu bytes: %s", bytes - r->committed, strerror(errno));
    r->committed = bytes;
    return QV_OK;
}

void qv_region_release(qv_region *r)
{
    if (!r) return;
    if (r->base) munmap(r->base, r->reserved);
    qv_region_init(r);
}

void qv_region_hugepages(qv_region *r)
{
#ifdef MADV_HUGEPAGE
    if (r->base && r->reserved > r->file_bytes)
        (void)madvise(r->base + r->file_bytes, r->reserved - r->file_bytes, MADV_HUGEPAGE);
#else
    (void)r;
#endif
}

int qv_region_in_file(const qv_region *r, const void *p)
{
    const uint8_t *b = p;
    return r->base && b >= r->base && b < r->base + r->file_bytes;
}
