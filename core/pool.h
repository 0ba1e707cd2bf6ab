/*
 * core/pool.h -- a small fixed thread pool with a blocking parallel-for.
 *
 * qv_pool_run(pool, n, fn, arg) calls fn(arg, i, worker) for every i in [0, n), spread
 * over the pool's workers plus the calling thread (dynamic chunks through an atomic
 * counter), and returns when all are done. worker is in [0, qv_pool_threads(pool)) so a
 * task can index per-worker scratch. Waits use condition variables, never spinning.
 * A pool runs one parallel-for at a time; concurrent callers are serialized.
 * qv_pool_shared(n) returns a process-wide pool of n threads (created once per n, freed
 * at exit); pass threads = 0 for all cores.
 */
#ifndef QV_CORE_POOL_H
#define QV_CORE_POOL_H

#include <stddef.h>

typedef struct qv_pool qv_pool;
typedef void (*qv_task_fn)(void *arg, size_t i, unsigned worker);

/** threads = total parallelism including the caller; 0 = number of cores. */
int      qv_pool_new(unsigned threads, qv_pool **out);
void     qv_pool_free(qv_pool *p);                /* NULL ok; joins workers */
unsigned qv_pool_threads(const qv_pool *p);
/** Run fn over [0, n) in chunks of `chunk` indices (0 = automatic). */
void     qv_pool_run(qv_pool *p, size_t n, size_t chunk, qv_task_fn fn, void *arg);
/** Process-wide pool with the given parallelism (0 = cores); NULL on failure. */
qv_pool *qv_pool_shared(unsigned threads);
/** Number of online cores (at least 1). */
unsigned qv_cpu_count(void);

#endif
