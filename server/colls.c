/*
 * server/colls.c -- the table of open collections.
 *
 * quiverd opens every collection once at startup and keeps the borrowed handles here,
 * with the dimension cached so that request validation needs no library call. The table
 * is small (the db caps collections at a few hundred), so lookup is a linear scan.
 * The rwlock prefers writers so that a create/drop is not starved by a stream of searches.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

int srv_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

srv_coll *srv_colls_find(srv_colls *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0) return &t->v[i];
    return NULL;
}

int srv_colls_add(srv_colls *t, const char *name, qv_coll *c)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(c, &info);
    if (rc != QV_OK) return rc;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        srv_coll *nv = realloc(t->v, cap * sizeof *nv);
        if (!nv) return QV_ENOMEM;
        t->v = nv;
        t->cap = cap;
    }
    srv_coll *e = &t->v[t->n++];
    memset(e, 0, sizeof *e);
    strncpy(e->name, name, sizeof e->name - 1);
    e->coll = c;
    e->dim = info.config.index.dim;
    e->metric = info.config.index.metric;
    return QV_OK;
}

void srv_colls_remove(srv_colls *t, const char *name)
{
    srv_coll *e = srv_colls_find(t, name);
    if (!e) return;
    qv_collection_close(e->coll);      /* the table's user: a dropped collection is freed */
    size_t i = (size_t)(e - t->v);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof *t->v);
    t->n--;
}

int srv_colls_init(srv_colls *t, qv_db *db)
{
    int rc = QV_OK;
    char **names = NULL;
    size_t n = 0;
    pthread_rwlockattr_t attr;
    memset(t, 0, sizeof *t);
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&t->lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    if ((rc = qv_collection_list(db, &names, &n)) != QV_OK) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        qv_coll *c = NULL;
        if ((rc = qv_collection_open(db, names[i], &c)) != QV_OK) goto cleanup;
        if ((rc = srv_colls_add(t, names[i], c)) != QV_OK) goto cleanup;
    }
cleanup:
    qv_free_strings(names, n);
    return rc;
}

void srv_colls_release(srv_colls *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
    pthread_rwlock_destroy(&t->lock);
}
