/*
 * core/alloc.h -- every allocation of core/, index/ and storage/ goes through here.
 *
 * Sizes are overflow-checked. Failure returns NULL and sets the thread's last error, so a
 * caller writes: if (!(p = qv_malloc(n))) { rc = QV_ENOMEM; goto cleanup; }
 * The test hook qv_alloc_fail_after(n) makes the allocation after the next n succeed
 * fail (once), so tests can walk every allocation failure path of a call.
 */
#ifndef QV_CORE_ALLOC_H
#define QV_CORE_ALLOC_H

#include <stddef.h>

void *qv_malloc(size_t size);
void *qv_calloc(size_t n, size_t size);
void *qv_reallocarray(void *p, size_t n, size_t size);
/** 64-byte aligned (cache line / AVX-512), zeroed; free with qv_free. */
void *qv_aligned_calloc(size_t n, size_t size);
char *qv_strdup(const char *s);
/* qv_free(void *p) is public, in quiver.h. */

/** Test hook: the allocation after the next n succeed fails once; n < 0 disables. */
void qv_alloc_fail_after(long n);
/** For allocators outside this file (core/region.c): 1 when the hook says this
 *  allocation fails. */
int  qv_alloc_injected_failure(void);

#endif
