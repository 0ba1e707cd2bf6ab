/*
 * python/gate.c -- calls in flight on a closable object.
 *
 * A search runs with the GIL released, so without this another Python thread could close
 * the index (qv_index_free) or the database (qv_db_close), or drop the collection, while
 * the search still reads it. Calls enter the gate before releasing the GIL and leave it
 * after taking it back; close and drop first drain it: no new call may enter, and the
 * ones in flight are waited for. Waits happen with the GIL released (the calls being
 * waited for need it to leave), on a condition variable; the mutex is never held while
 * taking the GIL, so the lock order is always GIL -> mu.
 */
#include "pyquiver.h"

void pyq_gate_init(pyq_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->active = 0;
    g->exclusive = 0;
    g->closed = 0;
}

void pyq_gate_release(pyq_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

int pyq_gate_enter(pyq_gate *g, const char *what)
{
    for (;;) {
        pthread_mutex_lock(&g->mu);
        if (g->closed) {
            pthread_mutex_unlock(&g->mu);
            pyq_raise_fmt(QV_ESTATE, "%s is closed", what);
            return -1;
        }
        if (!g->exclusive) {
            g->active++;
            pthread_mutex_unlock(&g->mu);
            return 0;
        }
        pthread_mutex_unlock(&g->mu);
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&g->mu);
        while (g->exclusive && !g->closed) pthread_cond_wait(&g->cv, &g->mu);
        pthread_mutex_unlock(&g->mu);
        Py_END_ALLOW_THREADS
    }
}

void pyq_gate_leave(pyq_gate *g)
{
    pthread_mutex_lock(&g->mu);
    if (--g->active == 0) pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void pyq_gate_drain(pyq_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int busy = g->exclusive || g->active;
    if (!busy) g->exclusive = 1;
    pthread_mutex_unlock(&g->mu);
    if (!busy) return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&g->mu);
    while (g->exclusive) pthread_cond_wait(&g->cv, &g->mu);     /* another drain first */
    g->exclusive = 1;
    while (g->active) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    Py_END_ALLOW_THREADS
}

void pyq_gate_open(pyq_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->exclusive = 0;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void pyq_gate_close(pyq_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int closed = g->closed;
    pthread_mutex_unlock(&g->mu);
    if (closed) return;
    pyq_gate_drain(g);
    pthread_mutex_lock(&g->mu);
    g->closed = 1;
    g->exclusive = 0;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}
