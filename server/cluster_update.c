/*
 * server/cluster_update.c -- changing a cluster collection's parameters, and keeping every
 * node's local parts of it at the config etcd holds.
 *
 * PATCH /collections/{name} (native or Qdrant) on a cluster collection:
 *   1. the change is applied to this node's own copy of the collection first: that copy
 *      is empty (it carries the schema), so this is qv_collection_update's full validation
 *      at no cost, and a refused change writes nothing anywhere;
 *   2. the change is merged into the collection's config in etcd (a txn that compares the
 *      key's mod_revision, re-read and retried when another update came first): from now
 *      on it is what every node holds, and what a replica created later (a move) is made
 *      with;
 *   3. every live node is asked to reconcile (POST /cluster/collections/{name}/reconcile,
 *      on its replica tier, all nodes at once), and this node reconciles its own shards;
 *      the reply waits for all of them, so a 200 means every live replica rebuilt.
 * Reconciling sends no values: a node reads the config from etcd again and makes each of
 * its local parts (the empty copy and the shards it holds) match it. So two updates that
 * cross converge on whichever etcd took last, whatever order their requests arrive in.
 * A node that was down, or failed, reconciles by itself: a reconciler thread (not the poll
 * thread, whose lease keepalive must not wait on a rebuild) checks every second for a
 * collection whose config differs from the one it last applied, retries a failure every
 * RETRY_MS, and compares every part with the config again every RECHECK_MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/cluster.h"
#include "server/server.h"

#define RETRY_MS 5000
#define RECHECK_MS 30000
#define UPDATE_TIMEOUT_MS 600000  /* a peer's reconcile: a rebuild of a large shard takes minutes */
#define MERGE_TRIES 5

/* What this node last made its local parts of a collection match. */
struct cl_applied {
    struct cl_applied *next;
    char name[CL_NAME_MAX];
    char *config;                  /* the config text applied; NULL: not yet, or a failure */
    uint64_t retry_ms;             /* a failure: not before then */
    uint64_t checked_ms;           /* when the parts were last compared with the config */
};

static struct cl_applied *applied_of(srv_cluster *cl, const char *name)
{
    for (struct cl_applied *a = cl->applied; a; a = a->next)
        if (!strcmp(a->name, name)) return a;
    struct cl_applied *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->next = cl->applied;
    cl->applied = a;
    return a;
}

/* The config text of cluster collection name as last read from etcd (malloc'd); NULL
 * when it is not in the map. */
static char *config_of(srv_cluster *cl, const char *name)
{
    char *out = NULL;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->ncolls && !out; i++)
        if (!strcmp(cl->colls[i].name, name) && cl->colls[i].config) out = strdup(cl->colls[i].config);
    pthread_mutex_unlock(&cl->mu);
    return out;
}

static uint32_t field_u32(json_t *index, const char *key)
{
    json_t *v = json_object_get(index, key);
    return json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= UINT32_MAX
               ? (uint32_t)json_integer_value(v) : 0;
}

/* Make local collection local match index (the config's "index" object): what it names
 * and the collection has otherwise. A part that does not exist here (not created yet, or
 * dropped meanwhile) is not an error: sync_local creates parts from the same config. */
static int reconcile_part(srv_cluster *cl, const char *local, json_t *index, char *err, size_t errlen)
{
    qv_coll *c = NULL;
    qv_collection_info info;
    int rc = qv_collection_open(cl->ctx->db, local, &c);
    if (rc == QV_ENOTFOUND) return 0;
    if (rc == QV_OK) rc = qv_collection_get_info(c, &info);
    if (rc != QV_OK) {
        snprintf(err, errlen, "%s: %s: %s", local, qv_strerror(rc), qv_last_error());
        qv_collection_close(c);
        return -1;
    }
    const qv_index_params *p = &info.config.index;
    qv_collection_changes ch = {0};
    if (p->kind == QV_INDEX_HNSW) {
        /* 0 on either side is the library's default (as GET /collections shows it): a copy
         * made with 0 and one given the default by hand need no rebuild */
        uint32_t m = field_u32(index, "m"), efc = field_u32(index, "ef_construction"), efs = field_u32(index, "ef_search");
        if (m && m != (p->m ? p->m : 16)) ch.m = m;
        if (efc && efc != (p->ef_construction ? p->ef_construction : 200)) ch.ef_construction = efc;
        if (efs && efs != (p->ef_search ? p->ef_search : 64)) ch.ef_search = efs;
    }
    const char *qname = json_string_value(json_object_get(index, "quant"));
    qv_quant q;
    if (qname && qv_quant_parse(qname, &q) == QV_OK && q != p->quant) {
        ch.set_quant = 1;
        ch.quant = q;
    }
    if (!ch.m && !ch.ef_construction && !ch.ef_search && !ch.set_quant) {
        qv_collection_close(c);
        return 0;
    }
    rc = qv_collection_update(c, &ch);
    qv_collection_close(c);
    if (rc == QV_ENOTFOUND) return 0;             /* dropped meanwhile (a catch-up restores it) */
    if (rc != QV_OK) {
        snprintf(err, errlen, "%s: %s: %s", local, qv_strerror(rc), qv_last_error());
        return -1;
    }
    srv_log(SRV_LOG_INFO, "cluster: local collection '%s' now has its cluster collection's parameters", local);
    return 0;
}

/* Make this node's parts of cluster collection name match its config as last read; with
 * force 0, only when that config is not the one applied last (the reconciler's check).
 * 0 done (or nothing to do), -1 with err. */
static int reconcile(srv_cluster *cl, const char *name, int force, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&cl->reconcile_mu);
    char *config = config_of(cl, name);
    struct cl_applied *a = config ? applied_of(cl, name) : NULL;
    json_t *j = NULL;
    if (!config) goto done;                       /* dropped meanwhile: nothing to keep */
    if (!a) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        goto done;
    }
    uint64_t now = cl_now_ms();
    /* the same config is compared again now and then: a shard restored from a leader's
     * snapshot (catch-up) carries the parameters the leader had at that moment */
    if (!force && ((a->config && !strcmp(a->config, config) && now < a->checked_ms + RECHECK_MS) || now < a->retry_ms))
        goto done;
    a->checked_ms = now;
    json_t *index = (j = json_loads(config, 0, NULL)) ? json_object_get(j, "index") : NULL;
    if (!json_is_object(index)) goto done;        /* nothing this can change */
    size_t ns = 0;
    cl_shard *s = cl_shards_of(cl, name, &ns);
    rc = reconcile_part(cl, name, index, err, errlen);
    for (size_t i = 0; rc == 0 && s && i < ns; i++)
        if (cl_has_id(s[i].replicas, s[i].nreplicas, cl->self)) rc = reconcile_part(cl, s[i].local, index, err, errlen);
    free(s);
    free(a->config);
    a->config = NULL;
    if (rc == 0) {
        a->config = config;
        config = NULL;
        a->retry_ms = 0;
    } else {
        a->retry_ms = cl_now_ms() + RETRY_MS;
    }
done:
    json_decref(j);
    free(config);
    pthread_mutex_unlock(&cl->reconcile_mu);
    return rc;
}

static void *reconciler_main(void *arg)
{
    srv_cluster *cl = arg;
    while (!cl_nap(cl, 1000)) {
        pthread_mutex_lock(&cl->mu);
        size_t n = cl->ncolls;
        char (*names)[CL_NAME_MAX] = calloc(n + 1, sizeof *names);
        for (size_t i = 0; names && i < n; i++) memcpy(names[i], cl->colls[i].name, CL_NAME_MAX);
        pthread_mutex_unlock(&cl->mu);
        for (size_t i = 0; names && i < n; i++) {
            char err[512];
            if (reconcile(cl, names[i], 0, err, sizeof err) != 0)
                srv_log(SRV_LOG_WARN, "cluster: collection '%s': cannot apply its parameters here (retry in %d s): %s",
                        names[i], RETRY_MS / 1000, err);
        }
        /* forget what was applied for collections that are gone */
        pthread_mutex_lock(&cl->reconcile_mu);
        for (struct cl_applied **pa = &cl->applied; names && *pa;) {
            int still = 0;
            for (size_t i = 0; i < n && !still; i++) still = !strcmp(names[i], (*pa)->name);
            if (still) {
                pa = &(*pa)->next;
                continue;
            }
            struct cl_applied *gone = *pa;
            *pa = gone->next;
            free(gone->config);
            free(gone);
        }
        pthread_mutex_unlock(&cl->reconcile_mu);
        free(names);
    }
    return NULL;
}

int cl_reconciler_start(srv_cluster *cl)
{
    if (pthread_create(&cl->reconciler, NULL, reconciler_main, cl) != 0) return -1;
    cl->reconciler_started = 1;
    return 0;
}

void cl_reconciler_free(srv_cluster *cl)
{
    for (struct cl_applied *a = cl->applied, *next; a; a = next) {
        next = a->next;
        free(a->config);
        free(a);
    }
    cl->applied = NULL;
}

/* POST /cluster/collections/{name}/reconcile (a peer, after it changed the config): read
 * the map again and make this node's parts match it before answering. */
void srv_h_cluster_reconcile(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    char err[512];
    if (!cl) {
        srv_fail(r, 400, "not_cluster", "this node is not in cluster mode");
        return;
    }
    if (cl_refresh(cl, err, sizeof err) != 0) {
        srv_fail(r, 503, "cluster_unavailable", "etcd: %s", err);
        return;
    }
    if (reconcile(cl, r->name, 1, err, sizeof err) != 0) {
        srv_fail(r, 500, "internal", "%s", err);
        return;
    }
    srv_reply_json(r, 200, json_pack("{s:s,s:I}", "collection", r->name, "node", (json_int_t)cl->self));
}

/* Merge ch into the "index" of name's config in etcd. 0 written, -1 with err (*gone set
 * when the collection is no longer in etcd). */
static int merge_config(srv_cluster *cl, const char *name, const qv_collection_changes *ch, int *gone, char *err,
                        size_t errlen)
{
    char key[CL_NAME_MAX + 64];
    snprintf(key, sizeof key, CL_PREFIX "collections/%s", name);
    *gone = 0;
    for (int tries = 0; tries < MERGE_TRIES; tries++) {
        cl_kv *kv = NULL;
        size_t n = 0;
        int64_t rev;
        if (cl_etcd_range(cl->etcd, key, &kv, &n, &rev, err, errlen) != 0) return -1;
        size_t i = 0;
        while (i < n && strcmp(kv[i].key, key)) i++;   /* the range is a prefix: "docs" also finds "docs2" */
        json_t *j = i < n ? json_loads(kv[i].value, 0, NULL) : NULL;
        json_t *cfg = json_object_get(j, "config");
        if (!json_is_object(cfg)) {
            if (i == n) *gone = 1;
            snprintf(err, errlen, i == n ? "collection `%s` is no longer in the cluster" : "collection `%s`: its config in etcd is not JSON", name);
            json_decref(j);
            cl_kvs_free(kv, n);
            return -1;
        }
        json_t *index = json_object_get(cfg, "index");
        if (!json_is_object(index)) json_object_set_new(cfg, "index", index = json_object());
        if (ch->m) json_object_set_new(index, "m", json_integer(ch->m));
        if (ch->ef_construction) json_object_set_new(index, "ef_construction", json_integer(ch->ef_construction));
        if (ch->ef_search) json_object_set_new(index, "ef_search", json_integer(ch->ef_search));
        if (ch->set_quant) json_object_set_new(index, "quant", json_string(qv_quant_name(ch->quant)));
        char *value = json_dumps(j, JSON_COMPACT);
        cl_cmp cmp = {key, kv[i].mod_revision};
        cl_put put = {key, value, 0};
        int t = value ? cl_etcd_txn(cl->etcd, &cmp, 1, &put, 1, err, errlen) : -1;
        if (!value) snprintf(err, errlen, "out of memory");
        free(value);
        json_decref(j);
        cl_kvs_free(kv, n);
        if (t != 0) return t == 1 ? 0 : -1;
    }
    snprintf(err, errlen, "collection `%s`: its config kept changing under this update (%d tries)", name, MERGE_TRIES);
    return -1;
}

/* The reconcile requests to the other nodes, one thread each, and the reply waiting for
 * them. A node can hang with its connection open (stopped, swapping): its request would
 * then wait out UPDATE_TIMEOUT_MS. So the waiter also watches the node's lease, and stops
 * waiting for a node whose lease lapsed: it is out of the cluster, and it applies the
 * stored config by itself when it is back (its reconciler). Its thread runs on, detached;
 * the last one out (waiter or thread) frees the fan-out. */
typedef struct {
    long node;
    char url[CL_URL_MAX];
    int started;
    int done;                          /* under the fan-out's mu: ok and err are final */
    int gone;                          /* the waiter's: its node left, not waited for */
    int ok;
    char err[512];                     /* written by the thread only, read once done */
    struct fanout *f;
} peer_job;

typedef struct fanout {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                          /* the waiter and each started thread */
    char name[CL_NAME_MAX];
    size_t n;
    peer_job jobs[];
} fanout;

static void fanout_put(fanout *f)
{
    pthread_mutex_lock(&f->mu);
    int last = --f->refs == 0;
    pthread_mutex_unlock(&f->mu);
    if (!last) return;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

static void *peer_main(void *arg)
{
    peer_job *p = arg;
    fanout *f = p->f;
    char u[CL_URL_MAX + CL_NAME_MAX + 64];
    cl_http_reply rep = {0};
    snprintf(u, sizeof u, "%s/cluster/collections/%s/reconcile", p->url, f->name);
    int ok = 0;
    if (cl_http("POST", u, "{}", 2, UPDATE_TIMEOUT_MS, &rep, p->err, sizeof p->err) == 0) {
        ok = rep.status == 200;
        if (!ok) snprintf(p->err, sizeof p->err, "HTTP %d: %.400s", rep.status, rep.body ? rep.body : "");
        cl_http_reply_free(&rep);
    }
    pthread_mutex_lock(&f->mu);
    p->ok = ok;
    p->done = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    fanout_put(f);
    return NULL;
}

/* Wait for every started request, or for its node to leave the cluster; then append the
 * failures to failed (used bytes in *used). Takes f's mutex. */
static void fanout_wait(srv_cluster *cl, fanout *f, char *failed, size_t cap, size_t *used)
{
    pthread_mutex_lock(&f->mu);
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < f->n; i++) pending += f->jobs[i].started && !f->jobs[i].done && !f->jobs[i].gone;
        if (!pending) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
        for (size_t i = 0; i < f->n; i++) {
            peer_job *p = &f->jobs[i];
            if (p->started && !p->done && !p->gone && !cl_alive(cl, p->node)) p->gone = 1;
        }
    }
    for (size_t i = 0; i < f->n; i++) {
        const peer_job *p = &f->jobs[i];
        const char *why = !p->started ? "cannot start a thread for it"
                          : p->gone ? "it left the cluster (its lease lapsed) while applying them"
                          : p->ok ? NULL : p->err;
        if (why && *used < cap)
            *used += (size_t)snprintf(failed + *used, cap - *used, "%snode %ld: %s", *used ? "; " : "", p->node, why);
    }
    pthread_mutex_unlock(&f->mu);
}

int srv_cluster_update(srv_req *r, const qv_collection_changes *ch)
{
    srv_cluster *cl = r->ctx->cluster;
    char err[512];
    int gone = 0;
    int rc = qv_collection_update(r->coll->coll, ch);      /* 1: validation (the copy here is empty) */
    if (rc != QV_OK) {
        srv_fail_qv(r, rc);
        return -1;
    }
    if (merge_config(cl, r->name, ch, &gone, err, sizeof err) != 0) {   /* 2 */
        /* this node's copy went ahead of etcd: the reconciler puts it back */
        pthread_mutex_lock(&cl->reconcile_mu);
        struct cl_applied *a = applied_of(cl, r->name);
        if (a) free(a->config), a->config = NULL, a->retry_ms = 0;
        pthread_mutex_unlock(&cl->reconcile_mu);
        if (gone) srv_fail(r, 404, "not_found", "%s", err);
        else srv_fail(r, 503, "cluster_unavailable", "etcd: %s (nothing changed in the cluster)", err);
        return -1;
    }
    cl_refresh(cl, err, sizeof err);
    /* 3: every other live node, at once, and this one meanwhile */
    pthread_mutex_lock(&cl->mu);
    size_t nn = cl->nnodes;
    fanout *f = calloc(1, sizeof *f + (nn + 1) * sizeof(peer_job));
    for (size_t i = 0; f && i < nn; i++) {
        if (cl->nodes[i].id == cl->self) continue;
        peer_job *p = &f->jobs[f->n++];
        p->node = cl->nodes[i].id;
        p->f = f;
        snprintf(p->url, sizeof p->url, "%s", cl->nodes[i].url[CL_REPLICA]);
    }
    pthread_mutex_unlock(&cl->mu);
    if (!f) {
        srv_oom(r);
        return -1;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    snprintf(f->name, sizeof f->name, "%s", r->name);
    f->refs = 1;
    for (size_t i = 0; i < f->n; i++) {
        pthread_t th;
        pthread_mutex_lock(&f->mu);
        f->refs++;
        pthread_mutex_unlock(&f->mu);
        f->jobs[i].started = pthread_create(&th, NULL, peer_main, &f->jobs[i]) == 0;
        if (f->jobs[i].started) pthread_detach(th);
        else fanout_put(f);
    }
    char self_err[512] = "";
    int self_ok = reconcile(cl, r->name, 1, self_err, sizeof self_err) == 0;
    char failed[2048] = "";
    size_t used = 0;
    if (!self_ok) used += (size_t)snprintf(failed, sizeof failed, "node %ld (this one): %s", cl->self, self_err);
    fanout_wait(cl, f, failed, sizeof failed, &used);
    fanout_put(f);
    if (used) {
        srv_fail(r, 503, "cluster_partial",
                 "collection `%s`: the new parameters are stored in the cluster, but not yet applied on %s; such a node "
                 "applies them by itself within seconds of being able to (or send the same update again)",
                 r->name, failed);
        return -1;
    }
    srv_log(SRV_LOG_INFO, "cluster: collection '%s': parameters updated on every live node", r->name);
    return 0;
}
