/* core/alloc.c -- checked allocation with a fault-injection hook for tests. */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"

/* Countdown of successful allocations before one injected failure; -1 = off. Atomic so
 * tests that inject while worker threads allocate stay race-free. */
static atomic_long fail_countdown = -1;

void qv_alloc_fail_after(long n) { atomic_store(&fail_countdown, n < 0 ? -1 : n); }

int qv_alloc_injected_failure(void)
{
    long c = atomic_load(&fail_countdown);
    while (c >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1))
            return c == 0;
    }
    return 0;
}

static void *oom(size_t size)
{
    qv_fail(QV_ENOMEM, "out of memory allocating %zu bytes", size);
    return NULL;
}

void *qv_malloc(size_t size)
{
    if (qv_alloc_injected_failure()) return oom(size);
    void *p = malloc(size ? size : 1);
    return p ? p : oom(size);
}

void *qv_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return oom(SIZE_MAX);
    if (qv_alloc_injected_failure()) return oom(n * size);
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *qv_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return oom(SIZE_MAX);
    if (qv_alloc_injected_failure()) return oom(n * size);
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    return q ? q : oom(bytes);
}

/* Arrays from HUGE_MIN up are aligned to 2 MiB huge pages and advised as such: a search
 * jumps between random nodes of arrays of hundreds of MB, and with 4 KiB pages nearly
 * every hop also misses the TLB (fashion-mnist-784, HNSW on SQ4 codes: ~X% faster). The
 * advice only matters where the kernel's transparent huge pages are in "madvise" mode;
 * a failure is harmless. */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

void *qv_aligned_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return oom(SIZE_MAX);
    size_t bytes = n * size, align = 64;
    if (bytes >= HUGE_MIN && bytes <= SIZE_MAX - HUGE_PAGE) align = HUGE_PAGE;
    bytes = (bytes + align - 1) & ~(align - 1);
    if (bytes == 0) bytes = 64;
    if (qv_alloc_injected_failure()) return oom(bytes);
    void *p = aligned_alloc(align, bytes);
    if (!p) return oom(bytes);
#ifdef MADV_HUGEPAGE
    if (align == HUGE_PAGE) (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    memset(p, 0, bytes);
    return p;
}

char *qv_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *d = qv_malloc(len);
    if (d) memcpy(d, s, len);
    return d;
}

void qv_free(void *p) { free(p); }

void qv_free_strings(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}
