/*
 * core/pool.c -- fixed thread pool with a blocking parallel-for.
 *
 * A pool of T threads has T-1 worker threads; the caller of qv_pool_run is worker 0 and
 * the workers are 1..T-1. Indices are handed out in chunks through one atomic counter
 * (dynamic scheduling: uneven task costs balance themselves).
 *
 * Locking: run_mu serializes whole runs (one parallel-for at a time per pool). mu guards
 * the job description, the generation number, `pending` and shutdown; workers sleep on
 * work_cv until the generation changes, the caller sleeps on done_cv until every worker
 * has checked in for this generation (pending == 0). Every worker checks in even when it
 * found no work left, so no worker can still hold a stale job when the next one starts.
 * No spinning anywhere.
 *
 * Nesting: each thread keeps a thread-local chain of the pools whose tasks it is running.
 * qv_pool_run on a pool already in that chain runs the loop inline in the calling thread
 * (with the caller's worker index), since the pool is busy with the outer run and waiting
 * for it would deadlock. Caveat: the nested loop shares that worker index with the outer
 * task, so per-worker scratch must not be live across a nested run.
 *
 * Shared pools: qv_pool_shared(n) keeps one pool per distinct n in a list under a mutex;
 * an atexit handler joins and frees them (pools busy at exit, or inherited through fork,
 * are left alone: still reachable, so LeakSanitizer stays quiet).
 */
#include "core/pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define MAX_THREADS 1024

struct qv_pool {
    unsigned threads;
    pthread_t *tids;               /* threads-1 workers */
    unsigned started;              /* how many were created */
    pthread_mutex_t run_mu;        /* held for a whole run */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t generation;
    unsigned pending;              /* workers yet to check in for this generation */
    int shutdown;
    /* the current job (written under mu before the generation changes) */
    qv_task_fn fn;
    void *arg;
    size_t n, chunk;
    atomic_size_t next;
    /* shared-pool bookkeeping */
    struct qv_pool *shared_next;
    pid_t owner_pid;
};

typedef struct frame {
    const qv_pool *pool;
    unsigned worker;
    struct frame *up;
} frame;

static _Thread_local frame *running;   /* innermost first */

static void run_chunks(qv_pool *p, unsigned worker)
{
    qv_task_fn fn = p->fn;
    void *arg = p->arg;
    size_t n = p->n, chunk = p->chunk;
    for (;;) {
        size_t lo = atomic_fetch_add_explicit(&p->next, chunk, memory_order_relaxed);
        if (lo >= n) break;
        size_t hi = n - lo < chunk ? n : lo + chunk;
        for (size_t i = lo; i < hi; i++) fn(arg, i, worker);
    }
}

static void *worker_main(void *vp)
{
    qv_pool *p = NULL;
    unsigned id;
    {
        /* the argument packs pool and index; see qv_pool_new */
        void **pack = vp;
        p = pack[0];
        id = (unsigned)(uintptr_t)pack[1];
        qv_free(pack);
    }
    uint64_t seen = 0;
    frame f = {p, id, NULL};
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->shutdown && p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->shutdown) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        running = &f;
        run_chunks(p, id);
        running = NULL;
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

unsigned qv_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static void stop_workers(qv_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++) pthread_join(p->tids[i], NULL);
    p->started = 0;
}

int qv_pool_new(unsigned threads, qv_pool **out)
{
    *out = NULL;
    if (threads == 0) threads = qv_cpu_count();
    if (threads > MAX_THREADS)
        return qv_fail(QV_EINVAL, "threads must be 0..%u, got %u", MAX_THREADS, threads);
    qv_pool *p = qv_calloc(1, sizeof *p);
    if (!p) return QV_ENOMEM;
    p->threads = threads;
    p->owner_pid = getpid();
    atomic_init(&p->next, 0);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    int rc = QV_OK;
    if (threads > 1) {
        if (!(p->tids = qv_calloc(threads - 1, sizeof *p->tids))) {
            rc = QV_ENOMEM;
            goto cleanup;
        }
        /* Workers block all signals: they belong to the threads the program made. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (unsigned i = 0; i < threads - 1; i++) {
            void **pack = qv_malloc(2 * sizeof *pack);
            if (!pack) {
                rc = QV_ENOMEM;
                break;
            }
            pack[0] = p;
            pack[1] = (void *)(uintptr_t)(i + 1);
            int e = pthread_create(&p->tids[i], NULL, worker_main, pack);
            if (e != 0) {
                qv_free(pack);
                rc = qv_fail(QV_ENOMEM, "cannot start pool thread %u of %u (error %d)", i + 1,
                             threads, e);
                break;
            }
            p->started++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
cleanup:
    if (rc != QV_OK) {
        qv_pool_free(p);
        return rc;
    }
    *out = p;
    return QV_OK;
}

void qv_pool_free(qv_pool *p)
{
    if (!p) return;
    stop_workers(p);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    qv_free(p->tids);
    qv_free(p);
}

unsigned qv_pool_threads(const qv_pool *p) { return p ? p->threads : 1; }

static void run_inline(size_t n, qv_task_fn fn, void *arg, unsigned worker)
{
    for (size_t i = 0; i < n; i++) fn(arg, i, worker);
}

void qv_pool_run(qv_pool *p, size_t n, size_t chunk, qv_task_fn fn, void *arg)
{
    if (n == 0) return;
    for (frame *f = running; f; f = f->up)
        if (f->pool == p) {
            run_inline(n, fn, arg, f->worker);
            return;
        }
    frame self = {p, 0, running};
    if (!p || p->started == 0) {
        running = &self;
        run_inline(n, fn, arg, 0);
        running = self.up;
        return;
    }
    if (chunk == 0) {
        chunk = n / ((size_t)p->threads * 16);   /* ~16 chunks per thread balances well */
        if (chunk == 0) chunk = 1;
    }
    if (chunk >= n) {   /* one chunk: waking workers would only cost */
        running = &self;
        run_inline(n, fn, arg, 0);
        running = self.up;
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->pending = p->started;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);

    running = &self;
    run_chunks(p, 0);
    running = self.up;

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->run_mu);
}

/* ---- process-wide pools ---- */

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static qv_pool *shared_list;
static int shared_atexit;

static void free_shared(void)
{
    pthread_mutex_lock(&shared_mu);
    qv_pool **link = &shared_list;
    while (*link) {
        qv_pool *p = *link;
        /* A pool from before a fork has no threads here; a busy one is still in use by
         * some thread that outlives exit() a little: leave both (they stay reachable). */
        if (p->owner_pid != getpid() || pthread_mutex_trylock(&p->run_mu) != 0) {
            link = &p->shared_next;
            continue;
        }
        pthread_mutex_unlock(&p->run_mu);
        *link = p->shared_next;
        qv_pool_free(p);
    }
    pthread_mutex_unlock(&shared_mu);
}

qv_pool *qv_pool_shared(unsigned threads)
{
    if (threads == 0) threads = qv_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    qv_pool *found = NULL;
    pthread_mutex_lock(&shared_mu);
    for (qv_pool *p = shared_list; p; p = p->shared_next)
        if (p->threads == threads && p->owner_pid == getpid()) {
            found = p;
            break;
        }
    if (!found && qv_pool_new(threads, &found) == QV_OK) {
        found->shared_next = shared_list;
        shared_list = found;
        if (!shared_atexit) shared_atexit = atexit(free_shared) == 0;
    }
    pthread_mutex_unlock(&shared_mu);
    return found;
}
