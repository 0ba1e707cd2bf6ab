/*
 * server/cluster_state.c -- this node's view of the cluster, kept in step with etcd.
 *
 * Startup registers /quiver/nodes/<id> under a lease (a create-only transaction: an id
 * that a live node holds is refused; a key left by this node's previous life is waited
 * out, up to two lease times). A lease thread refreshes the lease every third of its
 * TTL (a lease that expired meanwhile is granted again and the node key written again),
 * apart from the poll, so that a long poll round cannot let it expire. One poll thread,
 * every POLL_MS:
 *   - reads everything under /quiver/ (one range) and replaces the map whole;
 *   - creates the local collections of cluster collections and of the shards this node
 *     holds, and drops those of collections that are gone;
 *   - failover: a shard whose leader's node key is gone (its lease expired) is taken
 *     over by the lowest-numbered live in-sync replica, in a txn that compares the shard
 *     key's mod_revision as read (so exactly one node wins); the dead leader and other
 *     dead replicas leave in_sync (they miss what comes next);
 *   - catch-up: a shard this node holds but is not in sync for (restarted after missing
 *     writes, or newly placed) is copied from the leader: a snapshot (the backup
 *     format) taken under the leader's write lock with the log position at that moment,
 *     restored here under the shard's name, then the leader replays its log after that
 *     position and adds this node to in_sync in one txn, still under its lock.
 * Polling, not etcd's watch: the gateway's watch is a long-lived chunked stream, and a
 * poll of a few keys every 250 ms costs etcd little and keeps this file simple; a map
 * change is seen within POLL_MS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "server/cluster.h"
#include "server/server.h"

#define POLL_MS 250
#define SLOW_POLL_MS 2000         /* a poll round longer than this is logged */

int cl_has_id(const long *v, int n, long id)
{
    for (int i = 0; i < n; i++)
        if (v[i] == id) return 1;
    return 0;
}

uint32_t cl_shard_of_id(uint64_t id, uint32_t shard_number)
{
    uint64_t z = id + 0x9e3779b97f4a7c15ull;          /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint32_t)(z % shard_number);
}

/* ---- the map --------------------------------------------------------------------- */

static void free_map(cl_node *nodes, cl_coll *colls, size_t ncolls, cl_shard *shards)
{
    for (size_t i = 0; i < ncolls; i++) free(colls[i].config);
    free(nodes);
    free(colls);
    free(shards);
}

static int read_ids(json_t *a, long *out, int *n)
{
    *n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_integer(v) || *n == CL_MAX_REPLICAS) return -1;
        out[(*n)++] = (long)json_integer_value(v);
    }
    return 0;
}

/* Parse the range under /quiver/ into a new map; entries that do not parse are skipped
 * with a warning (a hand-edited key must not take the node down). */
static int parse_map(cl_kv *kv, size_t n, cl_node **nodes, size_t *nn, cl_coll **colls, size_t *nc, cl_shard **shards,
                     size_t *ns)
{
    *nodes = calloc(n + 1, sizeof **nodes);
    *colls = calloc(n + 1, sizeof **colls);
    *shards = calloc(n + 1, sizeof **shards);
    *nn = *nc = *ns = 0;
    if (!*nodes || !*colls || !*shards) return -1;
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i].key + strlen(CL_PREFIX);
        json_t *j = json_loads(kv[i].value, 0, NULL);
        char name[CL_NAME_MAX];
        unsigned shard;
        if (!j) {
            srv_log(SRV_LOG_WARN, "cluster: etcd key %s is not JSON; ignored", kv[i].key);
            continue;
        }
        if (!strncmp(k, "nodes/", 6)) {
            cl_node *o = &(*nodes)[*nn];
            static const char *const keys[3] = {"url", "leader_url", "replica_url"};
            int ok = 1;
            o->id = strtol(k + 6, NULL, 10);
            for (int t = 0; t < 3; t++) {
                const char *url = json_string_value(json_object_get(j, keys[t]));
                if (!url) url = json_string_value(json_object_get(j, "url"));     /* no tiers: one URL */
                if (url && strlen(url) < sizeof o->url[t]) strcpy(o->url[t], url);
                else ok = 0;
            }
            if (ok && o->id > 0) (*nn)++;
        } else if (!strncmp(k, "collections/", 12)) {
            cl_coll *o = &(*colls)[*nc];
            json_t *cfg = json_object_get(j, "config");
            if (strlen(k + 12) < sizeof o->name && json_is_object(cfg) && (o->config = json_dumps(cfg, JSON_COMPACT))) {
                strcpy(o->name, k + 12);
                o->shard_number = (uint32_t)json_integer_value(json_object_get(j, "shard_number"));
                o->replication_factor = (uint32_t)json_integer_value(json_object_get(j, "replication_factor"));
                (*nc)++;
            }
        } else if (!strncmp(k, "shards/", 7) && sscanf(k + 7, "%71[^/]/%u", name, &shard) == 2) {
            cl_shard *o = &(*shards)[*ns];
            memset(o, 0, sizeof *o);
            strcpy(o->coll, name);
            o->shard = shard;
            snprintf(o->local, sizeof o->local, "%s.s%u", name, shard);
            o->mod_revision = kv[i].mod_revision;
            o->leader = (long)json_integer_value(json_object_get(j, "leader"));
            o->term = (int64_t)json_integer_value(json_object_get(j, "term"));
            if (read_ids(json_object_get(j, "replicas"), o->replicas, &o->nreplicas) == 0 &&
                read_ids(json_object_get(j, "in_sync"), o->in_sync, &o->nin_sync) == 0)
                (*ns)++;
        }
        json_decref(j);
    }
    return 0;
}

int cl_refresh(srv_cluster *cl, char *err, size_t errlen)
{
    cl_kv *kv = NULL;
    size_t n = 0, nn, nc, ns;
    int64_t rev;
    cl_node *nodes;
    cl_coll *colls;
    cl_shard *shards;
    if (cl_etcd_range(cl->etcd, CL_PREFIX, &kv, &n, &rev, err, errlen) != 0) return -1;
    int rc = parse_map(kv, n, &nodes, &nn, &colls, &nc, &shards, &ns);
    cl_kvs_free(kv, n);
    if (rc != 0) {
        free_map(nodes, colls, 0, shards);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&cl->mu);
    free_map(cl->nodes, cl->colls, cl->ncolls, cl->shards);
    cl->nodes = nodes, cl->nnodes = nn;
    cl->colls = colls, cl->ncolls = nc;
    cl->shards = shards, cl->nshards = ns;
    cl->revision = rev;
    cl->polls++;
    pthread_mutex_unlock(&cl->mu);
    return 0;
}

int cl_node_url(srv_cluster *cl, long id, int tier, char *buf, size_t len)
{
    int found = 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->nnodes && !found; i++)
        if (cl->nodes[i].id == id) {
            snprintf(buf, len, "%s", cl->nodes[i].url[tier]);
            found = 1;
        }
    pthread_mutex_unlock(&cl->mu);
    return found;
}

cl_shard *cl_shards_of(srv_cluster *cl, const char *coll, size_t *n)
{
    cl_shard *out = NULL;
    *n = 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->ncolls; i++)
        if (!strcmp(cl->colls[i].name, coll) && (out = calloc(cl->colls[i].shard_number + 1, sizeof *out))) {
            for (size_t j = 0; j < cl->nshards; j++)
                if (!strcmp(cl->shards[j].coll, coll) && cl->shards[j].shard < cl->colls[i].shard_number)
                    out[cl->shards[j].shard] = cl->shards[j];
            *n = cl->colls[i].shard_number;
            break;
        }
    pthread_mutex_unlock(&cl->mu);
    return out;
}

int cl_shard_get(srv_cluster *cl, const char *local, cl_shard *out)
{
    int found = 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t j = 0; j < cl->nshards && !found; j++)
        if (!strcmp(cl->shards[j].local, local)) {
            *out = cl->shards[j];
            found = 1;
        }
    pthread_mutex_unlock(&cl->mu);
    return found;
}

int srv_cluster_has(srv_cluster *cl, const char *name)
{
    int found = 0;
    if (!cl || !name) return 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->ncolls && !found; i++) found = !strcmp(cl->colls[i].name, name);
    pthread_mutex_unlock(&cl->mu);
    return found;
}

cl_lead *cl_lead_of(srv_cluster *cl, const char *local)
{
    pthread_mutex_lock(&cl->mu);
    cl_lead *l = cl->leads;
    while (l && strcmp(l->local, local)) l = l->next;
    if (!l && (l = calloc(1, sizeof *l))) {
        snprintf(l->local, sizeof l->local, "%s", local);
        pthread_mutex_init(&l->mu, NULL);
        l->log_id = (api_now_us() ^ (uint64_t)getpid() << 40) & INT64_MAX;
        l->first = 1;
        l->next = cl->leads;
        cl->leads = l;
    }
    pthread_mutex_unlock(&cl->mu);
    return l;
}

static json_t *ids_json(const long *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n && a; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

int cl_shard_put(srv_cluster *cl, const cl_shard *s, char *err, size_t errlen)
{
    char key[256];
    json_t *j = json_pack("{s:o,s:o,s:I,s:I}", "replicas", ids_json(s->replicas, s->nreplicas), "in_sync",
                          ids_json(s->in_sync, s->nin_sync), "leader", (json_int_t)s->leader, "term", (json_int_t)s->term);
    char *v = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(key, sizeof key, CL_PREFIX "shards/%s/%u", s->coll, s->shard);
    cl_cmp c = {key, s->mod_revision};
    cl_put p = {key, v, 0};
    int rc = cl_etcd_txn(cl->etcd, &c, 1, &p, 1, err, errlen);
    free(v);
    return rc;
}

/* ---- local collections ------------------------------------------------------------ */

static int create_local(srv_cluster *cl, const char *name, const char *config)
{
    api_create_body b = {0};
    qv_collection_config cfg = {0};
    api_jread rd = {.strict = 0, .name = "the cluster config"};
    api_jerr e;
    char *pi = NULL;
    qv_index_params_init(&b.p, QV_INDEX_HNSW, 0, QV_METRIC_L2);
    if (api_jparse(&rd, config, strlen(config), api_create_fields, &b, &e) != 0) {
        srv_log(SRV_LOG_ERROR, "cluster: collection '%s': bad config in etcd: %s", name, e.msg);
        return -1;
    }
    cfg.index = b.p;
    cfg.on_disk = b.on_disk;
    if (b.payload_index.p && !(cfg.payload_index = pi = strndup(b.payload_index.p, b.payload_index.len))) return -1;
    int rc = qv_collection_create(cl->ctx->db, name, &cfg, NULL);
    free(pi);
    if (rc == QV_EEXIST) return 0;
    if (rc != QV_OK) {
        srv_log(SRV_LOG_ERROR, "cluster: cannot create local collection '%s': %s", name, qv_last_error());
        return -1;
    }
    srv_log(SRV_LOG_INFO, "cluster: created local collection '%s'", name);
    return 0;
}

static int known(srv_cluster *cl, const char *name)
{
    for (size_t i = 0; i < cl->nknown; i++)
        if (!strcmp(cl->known[i], name)) return 1;
    return 0;
}

/* Whether name is "coll.s<digits>", a shard of coll (len = strlen(coll)). */
static int is_shard_of(const char *name, const char *coll, size_t len)
{
    if (strncmp(name, coll, len) != 0 || name[len] != '.' || name[len + 1] != 's' || !name[len + 2]) return 0;
    for (const char *p = name + len + 2; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

/* Drop the local copies of shards the map no longer places here (moved away by
 * cluster_ops.c): a shard in the map whose replicas leave this node out. */
static void drop_moved_away(srv_cluster *cl, const cl_shard *shards, size_t ns)
{
    char **names = NULL;
    size_t n = 0;
    int any = 0;
    for (size_t j = 0; j < ns && !any; j++) any = !cl_has_id(shards[j].replicas, shards[j].nreplicas, cl->self);
    if (!any || qv_collection_list(cl->ctx->db, &names, &n) != QV_OK) return;
    for (size_t j = 0; j < ns; j++) {
        if (cl_has_id(shards[j].replicas, shards[j].nreplicas, cl->self)) continue;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(names[i], shards[j].local) && qv_collection_drop(cl->ctx->db, names[i]) == QV_OK)
                srv_log(SRV_LOG_INFO, "cluster: dropped local shard '%s' (moved to other nodes)", names[i]);
    }
    qv_free_strings(names, n);
}

/* Make what the map says this node holds; drop what it no longer does. Runs on the poll
 * thread only (known is its own). */
static void sync_local(srv_cluster *cl)
{
    pthread_mutex_lock(&cl->sync_mu);
    pthread_mutex_lock(&cl->mu);
    size_t nc = cl->ncolls, ns = cl->nshards;
    cl_coll *colls = calloc(nc + 1, sizeof *colls);
    cl_shard *shards = calloc(ns + 1, sizeof *shards);
    for (size_t i = 0; colls && i < nc; i++) {
        colls[i] = cl->colls[i];
        colls[i].config = strdup(cl->colls[i].config);
    }
    if (shards) memcpy(shards, cl->shards, ns * sizeof *shards);
    pthread_mutex_unlock(&cl->mu);
    if (!colls || !shards) goto done;
    for (size_t i = 0; i < nc; i++) {
        if (!colls[i].config || create_local(cl, colls[i].name, colls[i].config) != 0) continue;
        if (!known(cl, colls[i].name)) {
            char **k = realloc(cl->known, (cl->nknown + 1) * sizeof *k);
            if (k && (k[cl->nknown] = strdup(colls[i].name))) cl->known = k, cl->nknown++;
            else if (k) cl->known = k;
        }
        for (size_t j = 0; j < ns; j++)
            if (!strcmp(shards[j].coll, colls[i].name) && cl_has_id(shards[j].replicas, shards[j].nreplicas, cl->self))
                create_local(cl, shards[j].local, colls[i].config);
    }
    drop_moved_away(cl, shards, ns);
    /* collections dropped from the cluster: their local parts go. One that cannot be
     * listed or dropped now stays known and is tried again at the next poll. */
    for (size_t i = 0; i < cl->nknown;) {
        int still = 0;
        for (size_t j = 0; j < nc && !still; j++) still = !strcmp(colls[j].name, cl->known[i]);
        if (still) { i++; continue; }
        char **names = NULL;
        size_t n = 0;
        size_t len = strlen(cl->known[i]);
        int failed = qv_collection_list(cl->ctx->db, &names, &n) != QV_OK;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(names[j], cl->known[i]) && !is_shard_of(names[j], cl->known[i], len)) continue;
            int rc = qv_collection_drop(cl->ctx->db, names[j]);
            if (rc == QV_OK) srv_log(SRV_LOG_INFO, "cluster: dropped local collection '%s'", names[j]);
            else if (rc != QV_ENOTFOUND) {
                srv_log(SRV_LOG_WARN, "cluster: cannot drop local collection '%s' (will retry): %s", names[j], qv_last_error());
                failed = 1;
            }
        }
        qv_free_strings(names, n);
        if (failed) { i++; continue; }
        free(cl->known[i]);
        cl->known[i] = cl->known[--cl->nknown];
    }
done:
    for (size_t i = 0; colls && i < nc; i++) free(colls[i].config);
    free(colls);
    free(shards);
    pthread_mutex_unlock(&cl->sync_mu);
}

/* ---- failover ---------------------------------------------------------------------- */

int cl_alive(srv_cluster *cl, long id)
{
    char url[CL_URL_MAX];
    return cl_node_url(cl, id, CL_CLIENT, url, sizeof url);
}

/* A copy of the whole shard map (*n shards; free with free), NULL when out of memory. */
static cl_shard *copy_shards(srv_cluster *cl, size_t *n)
{
    pthread_mutex_lock(&cl->mu);
    *n = cl->nshards;
    cl_shard *shards = calloc(*n + 1, sizeof *shards);
    if (shards) memcpy(shards, cl->shards, *n * sizeof *shards);
    pthread_mutex_unlock(&cl->mu);
    return shards;
}

static void failover(srv_cluster *cl)
{
    size_t ns;
    cl_shard *shards = copy_shards(cl, &ns);
    for (size_t i = 0; shards && i < ns; i++) {
        cl_shard s = shards[i];
        if (cl_alive(cl, s.leader) || !cl_has_id(s.in_sync, s.nin_sync, cl->self)) continue;
        long lowest = 0;
        int n = 0;
        for (int k = 0; k < s.nin_sync; k++)
            if (cl_alive(cl, s.in_sync[k])) {
                s.in_sync[n++] = s.in_sync[k];
                if (!lowest || s.in_sync[k] < lowest) lowest = s.in_sync[k];
            }
        if (lowest != cl->self) continue;               /* another live in-sync replica goes first */
        long old = s.leader;
        s.nin_sync = n;
        s.leader = cl->self;
        s.term++;
        char err[256];
        int rc = cl_shard_put(cl, &s, err, sizeof err);
        if (rc == 1) {
            srv_log(SRV_LOG_WARN, "cluster: shard %s: node %ld took over from node %ld (lease expired), term %lld", s.local,
                    cl->self, old, (long long)s.term);
            pthread_mutex_lock(&cl->mu);
            cl->failovers++;
            pthread_mutex_unlock(&cl->mu);
        } else if (rc < 0) {
            srv_log(SRV_LOG_WARN, "cluster: shard %s: failover txn: %s", s.local, err);
        }
    }
    free(shards);
}

/* ---- catch-up ---------------------------------------------------------------------- */

static int catch_up(srv_cluster *cl, const cl_shard *s)
{
    char leader[CL_URL_MAX], files[CL_URL_MAX], url[CL_URL_MAX + 256], err[256], path[4096] = "", file[256];
    cl_http_reply rep = {0};
    json_t *j = NULL;
    int rc = -1, fd = -1;
    uint64_t t0 = api_now_us();
    if (!cl_node_url(cl, s->leader, CL_LEADER, leader, sizeof leader) ||
        !cl_node_url(cl, s->leader, CL_REPLICA, files, sizeof files))
        return -1;
    /* 1. a snapshot and the log position it stands for */
    snprintf(url, sizeof url, "%s/cluster/shards/%s/snapshot", leader, s->local);
    if (cl_http("POST", url, "{}", 2, 30000, &rep, err, sizeof err) != 0 || rep.status != 200 ||
        !(j = json_loads(rep.body, 0, NULL))) {
        srv_log(SRV_LOG_WARN, "cluster: shard %s: catch-up snapshot from node %ld: %s", s->local, s->leader,
                rep.status ? (rep.body ? rep.body : "") : err);
        goto done;
    }
    const char *fname = json_string_value(json_object_get(j, "file"));
    json_int_t seq = json_integer_value(json_object_get(j, "seq")), log_id = json_integer_value(json_object_get(j, "log"));
    if (!fname || strlen(fname) >= sizeof file) goto done;
    strcpy(file, fname);
    cl_http_reply_free(&rep);
    /* 2. its bytes, into a temporary file beside our own snapshots */
    snprintf(url, sizeof url, "%s/collections/%s/snapshots/%s", files, s->local, file);
    if (cl_http("GET", url, NULL, 0, 60000, &rep, err, sizeof err) != 0 || rep.status != 200) {
        srv_log(SRV_LOG_WARN, "cluster: shard %s: snapshot download: %s", s->local, rep.status ? "HTTP error" : err);
        goto done;
    }
    snprintf(path, sizeof path, "%s/.catchup-%s-XXXXXX", cl->ctx->snapshots_dir, s->local);
    if ((fd = mkstemp(path)) < 0 || write(fd, rep.body, rep.len) != (ssize_t)rep.len || fsync(fd) != 0) {
        srv_log(SRV_LOG_WARN, "cluster: shard %s: cannot write %s: %s", s->local, path, strerror(errno));
        goto done;
    }
    cl_http_reply_free(&rep);
    snprintf(url, sizeof url, "%s/collections/%s/snapshots/%s", files, s->local, file);
    if (cl_http("DELETE", url, NULL, 0, CL_PEER_TIMEOUT_MS, &rep, err, sizeof err) == 0) cl_http_reply_free(&rep);
    /* 3. restore it under the shard's name */
    qv_restore_options o;
    qv_backup_info info;
    qv_restore_options_init(&o);
    o.rename = s->local;
    o.flags = QV_RESTORE_REPLACE;
    if ((rc = qv_backup_restore(cl->ctx->db, path, &o, &info)) != QV_OK) {
        srv_log(SRV_LOG_WARN, "cluster: shard %s: restore: %s", s->local, qv_last_error());
        rc = -1;
        goto done;
    }
    /* 4. the leader replays what came after the snapshot and adds us to in_sync */
    char body[128];
    int bl = snprintf(body, sizeof body, "{\"node\":%ld,\"seq\":%lld,\"log\":%lld}", cl->self, (long long)seq, (long long)log_id);
    snprintf(url, sizeof url, "%s/cluster/shards/%s/join", leader, s->local);
    if (cl_http("POST", url, body, (size_t)bl, 60000, &rep, err, sizeof err) != 0 || rep.status != 200) {
        srv_log(SRV_LOG_WARN, "cluster: shard %s: join: %s", s->local, rep.status ? (rep.body ? rep.body : "") : err);
        rc = -1;
        goto done;
    }
    srv_log(SRV_LOG_INFO, "cluster: shard %s: caught up from node %ld (snapshot of %llu points at log position %lld, "
            "then the log after it) in %.2f s; in sync", s->local, s->leader, (unsigned long long)info.points,
            (long long)seq, (double)(api_now_us() - t0) / 1e6);
    pthread_mutex_lock(&cl->mu);
    cl->catchups++;
    pthread_mutex_unlock(&cl->mu);
    rc = 0;
done:
    if (fd >= 0) close(fd);
    if (path[0]) unlink(path);
    cl_http_reply_free(&rep);
    json_decref(j);
    return rc;
}

static int catch_up_all(srv_cluster *cl)
{
    int rc = 0;
    size_t ns;
    cl_shard *shards = copy_shards(cl, &ns);
    for (size_t i = 0; shards && i < ns; i++) {
        const cl_shard *s = &shards[i];
        if (cl_has_id(s->replicas, s->nreplicas, cl->self) && !cl_has_id(s->in_sync, s->nin_sync, cl->self) &&
            s->leader != cl->self && cl_alive(cl, s->leader) && catch_up(cl, s) != 0)
            rc = -1;
    }
    free(shards);
    return rc;
}

/* ---- membership -------------------------------------------------------------------- */

/* This node's key in etcd (the value names its urls; it lives under its lease). */
static void self_key(const srv_cluster *cl, char *key, size_t len)
{
    snprintf(key, len, CL_PREFIX "nodes/%ld", cl->self);
}

static int register_node(srv_cluster *cl, int wait_s, char *err, size_t errlen)
{
    char key[64], val[3 * CL_URL_MAX + 64];
    self_key(cl, key, sizeof key);
    snprintf(val, sizeof val, "{\"url\":\"%s\",\"leader_url\":\"%s\",\"replica_url\":\"%s\"}", cl->advertise,
             cl->leader_url, cl->replica_url);
    /* The new lease becomes this node's only once the key is written under it: a failed
     * attempt must not leave cl->lease naming a lease the key is not under (the lease
     * thread would keep that one alive, and the key would lapse a TTL later). */
    int64_t lease;
    if (cl_etcd_lease_grant(cl->etcd, cl->ttl_s, &lease, err, errlen) != 0) return -1;
    for (int waited = 0;; waited++) {
        cl_cmp c = {key, 0};
        cl_put p = {key, val, lease};
        int rc = cl_etcd_txn(cl->etcd, &c, 1, &p, 1, err, errlen);
        if (rc == 1) {
            cl->lease = lease;
            atomic_store(&cl->lease_ok_until_ms, cl_now_ms() + (uint64_t)cl->ttl_s * 1000);
            cl->registered = 1;
        }
        if (rc != 0) return rc == 1 ? 0 : -1;
        if (waited == 0) srv_log(SRV_LOG_INFO, "cluster: node id %ld is still registered (a previous run of this node?); waiting up to %d s for its lease to expire", cl->self, wait_s);
        if (waited >= wait_s * 4) break;
        usleep(250000);
        cl_etcd_lease_keepalive(cl->etcd, lease, err, errlen);
    }
    cl_kv *kv = NULL;
    size_t n = 0;
    int64_t rev;
    if (cl_etcd_range(cl->etcd, key, &kv, &n, &rev, err, errlen) == 0)
        snprintf(err, errlen, "node id %ld is already registered by a live node (%s)", cl->self, n ? kv[0].value : "?");
    cl_kvs_free(kv, n);
    return -1;
}

uint64_t cl_now_ms(void)
{
    return api_now_us() / 1000;
}

int cl_nap(srv_cluster *cl, long ms)
{
    pthread_mutex_lock(&cl->stop_mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    if (!cl->stop) pthread_cond_timedwait(&cl->stop_cv, &cl->stop_mu, &ts);
    int stop = cl->stop;
    pthread_mutex_unlock(&cl->stop_mu);
    return stop;
}

/* The lease has a thread of its own: a poll round can wait a long time on a catch-up (the
 * snapshot of a large shard) or on creating and dropping local collections, and a lease
 * that expired meanwhile would fail over every shard this node leads. Refreshed every
 * third of its TTL; a failed refresh is tried again after POLL_MS. */
static void *lease_main(void *arg)
{
    srv_cluster *cl = arg;
    long wait_ms = (long)cl->ttl_s * 1000 / 3;
    while (!cl_nap(cl, wait_ms)) {
        char err[256];
        pthread_mutex_lock(&cl->lease_mu);
        int rc = cl_etcd_lease_keepalive(cl->etcd, cl->lease, err, sizeof err);
        if (rc == 1) {
            srv_log(SRV_LOG_WARN, "cluster: our lease expired (etcd unreachable for longer than %d s?); registering again", cl->ttl_s);
            if (register_node(cl, 0, err, sizeof err) != 0) srv_log(SRV_LOG_ERROR, "cluster: %s", err);
        } else if (rc < 0) {
            srv_log(SRV_LOG_WARN, "cluster: lease keepalive: %s", err);
        } else {
            atomic_store(&cl->lease_ok_until_ms, cl_now_ms() + (uint64_t)cl->ttl_s * 1000);
        }
        pthread_mutex_unlock(&cl->lease_mu);
        wait_ms = rc < 0 ? POLL_MS : (long)cl->ttl_s * 1000 / 3;
    }
    return NULL;
}

static void *poll_main(void *arg)
{
    srv_cluster *cl = arg;
    int etcd_down = 0;
    while (!cl_nap(cl, POLL_MS)) {
        char err[256];
        if (cl_refresh(cl, err, sizeof err) != 0) {
            if (!etcd_down++) srv_log(SRV_LOG_WARN, "cluster: cannot read the map from etcd: %s", err);
            continue;
        }
        if (etcd_down) srv_log(SRV_LOG_INFO, "cluster: etcd reachable again");
        etcd_down = 0;
        if (!cl_alive(cl, cl->self)) {                /* our key went (deleted by hand?): again */
            /* Unless the lease thread has just done so (both notice a lapsed lease after a
             * stall): the map read above may predate it, so etcd is asked again. */
            pthread_mutex_lock(&cl->lease_mu);
            char key[64];
            cl_kv *kv = NULL;
            size_t n = 0;
            int64_t rev;
            self_key(cl, key, sizeof key);
            int have = cl_etcd_range(cl->etcd, key, &kv, &n, &rev, err, sizeof err) == 0 && n > 0;
            cl_kvs_free(kv, n);
            if (!have) {
                srv_log(SRV_LOG_WARN, "cluster: this node's key is gone from etcd; registering again");
                if (register_node(cl, 0, err, sizeof err) != 0) srv_log(SRV_LOG_ERROR, "cluster: %s", err);
            }
            pthread_mutex_unlock(&cl->lease_mu);
            continue;
        }
        uint64_t t0 = cl_now_ms();
        sync_local(cl);
        failover(cl);
        uint64_t t1 = cl_now_ms();
        if (t1 >= cl->next_catchup_ms && catch_up_all(cl) != 0) cl->next_catchup_ms = cl_now_ms() + 1000;
        /* a map change waits for the round in progress: say when one is long */
        uint64_t t2 = cl_now_ms();
        if (t2 - t0 > SLOW_POLL_MS)
            srv_log(SRV_LOG_WARN, "cluster: a poll round took %.1f s (sync and failover %.1f s, catch-up %.1f s)",
                    (double)(t2 - t0) / 1e3, (double)(t1 - t0) / 1e3, (double)(t2 - t1) / 1e3);
    }
    return NULL;
}

int srv_cluster_start(srv_ctx *ctx, const srv_cluster_options *o, srv_cluster **out)
{
    char err[512];
    srv_cluster *cl = calloc(1, sizeof *cl);
    *out = NULL;
    if (!cl) return -1;
    cl->ctx = ctx;
    cl->self = o->node_id;
    cl->ttl_s = o->lease_ttl_s > 0 ? o->lease_ttl_s : 3;
    cl->write_quorum = o->write_quorum > 0 ? o->write_quorum : 1;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_mutex_init(&cl->stop_mu, NULL);
    pthread_mutex_init(&cl->sync_mu, NULL);
    pthread_mutex_init(&cl->reconcile_mu, NULL);
    pthread_mutex_init(&cl->lease_mu, NULL);
    pthread_cond_init(&cl->stop_cv, NULL);
    if (o->node_id < 1) {
        srv_log(SRV_LOG_ERROR, "--cluster needs --node-id N (N >= 1)");
        goto fail;
    }
    if (!o->advertise || strncmp(o->advertise, "http://", 7) != 0 || strlen(o->advertise) >= sizeof cl->advertise ||
        strchr(o->advertise, '"') || strchr(o->advertise, '\\')) {
        srv_log(SRV_LOG_ERROR, "--cluster needs --advertise http://HOST:PORT (how the other nodes reach this one)");
        goto fail;
    }
    snprintf(cl->advertise, sizeof cl->advertise, "%s", o->advertise);
    snprintf(cl->leader_url, sizeof cl->leader_url, "%s", o->leader_url ? o->leader_url : o->advertise);
    snprintf(cl->replica_url, sizeof cl->replica_url, "%s", o->replica_url ? o->replica_url : o->advertise);
    size_t al = strlen(cl->advertise);
    while (al && cl->advertise[al - 1] == '/') cl->advertise[--al] = 0;
    if (!(cl->etcd = cl_etcd_new(o->endpoints, err, sizeof err))) {
        srv_log(SRV_LOG_ERROR, "--cluster: %s", err);
        goto fail;
    }
    if (register_node(cl, 2 * cl->ttl_s, err, sizeof err) != 0) {
        srv_log(SRV_LOG_ERROR, "cluster: cannot join through etcd at %s: %s", o->endpoints, err);
        goto fail;
    }
    if (cl_refresh(cl, err, sizeof err) != 0) {
        srv_log(SRV_LOG_ERROR, "cluster: cannot read the map from etcd: %s", err);
        goto fail;
    }
    sync_local(cl);
    if (pthread_create(&cl->thread, NULL, poll_main, cl) != 0) {
        srv_log(SRV_LOG_ERROR, "cluster: cannot start the poll thread");
        goto fail;
    }
    cl->started = 1;
    if (pthread_create(&cl->lease_thread, NULL, lease_main, cl) != 0) {
        srv_log(SRV_LOG_ERROR, "cluster: cannot start the lease thread");
        goto fail;
    }
    cl->lease_started = 1;
    if (cl_reconciler_start(cl) != 0) {
        srv_log(SRV_LOG_ERROR, "cluster: cannot start the reconciler thread");
        goto fail;
    }
    pthread_mutex_lock(&cl->mu);                  /* the poll thread replaces the map from now on */
    size_t nnodes = cl->nnodes, ncolls = cl->ncolls;
    pthread_mutex_unlock(&cl->mu);
    srv_log(SRV_LOG_INFO, "cluster: node %ld (%s) joined through etcd at %s: %zu node(s), %zu collection(s), lease %d s",
            cl->self, cl->advertise, o->endpoints, nnodes, ncolls, cl->ttl_s);
    *out = cl;
    return 0;
fail:
    srv_cluster_stop(cl);
    return -1;
}

void srv_cluster_stop(srv_cluster *cl)
{
    if (!cl) return;
    if (cl->started) {
        pthread_mutex_lock(&cl->stop_mu);
        cl->stop = 1;
        pthread_cond_broadcast(&cl->stop_cv);       /* the poll, lease and reconciler threads */
        pthread_mutex_unlock(&cl->stop_mu);
        pthread_join(cl->thread, NULL);
        if (cl->lease_started) pthread_join(cl->lease_thread, NULL);
        if (cl->reconciler_started) pthread_join(cl->reconciler, NULL);
    }
    if (cl->registered && cl->etcd) {              /* leave at once: failover need not wait */
        char key[64], err[128];
        self_key(cl, key, sizeof key);
        cl_etcd_delete(cl->etcd, key, err, sizeof err);
    }
    free_map(cl->nodes, cl->colls, cl->ncolls, cl->shards);
    for (cl_lead *l = cl->leads, *next; l; l = next) {
        next = l->next;
        for (size_t i = 0; l->log && i < CL_LOG_CAP; i++) free(l->log[i].body);
        free(l->log);
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
    for (size_t i = 0; i < cl->nknown; i++) free(cl->known[i]);
    free(cl->known);
    cl_reconciler_free(cl);
    cl_etcd_free(cl->etcd);
    pthread_mutex_destroy(&cl->reconcile_mu);
    pthread_mutex_destroy(&cl->lease_mu);
    pthread_mutex_destroy(&cl->mu);
    pthread_mutex_destroy(&cl->stop_mu);
    pthread_mutex_destroy(&cl->sync_mu);
    pthread_cond_destroy(&cl->stop_cv);
    free(cl);
}

/* ---- create and drop --------------------------------------------------------------- */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Wait (up to 5 s) until every live node has the collection and every replica its shard
 * collection, so that the 201 means any node takes writes and searches for it at once. */
static void wait_ready(srv_cluster *cl, const char *name)
{
    size_t ns = 0, nn;
    cl_shard *s = cl_shards_of(cl, name, &ns);
    pthread_mutex_lock(&cl->mu);
    nn = cl->nnodes;
    cl_node *nodes = calloc(nn + 1, sizeof *nodes);
    if (nodes) memcpy(nodes, cl->nodes, nn * sizeof *nodes);
    pthread_mutex_unlock(&cl->mu);
    uint64_t deadline = cl_now_ms() + 5000;
    for (size_t i = 0; nodes && s && i < nn; i++) {
        if (nodes[i].id == cl->self) continue;
        for (size_t j = 0; j <= ns; j++) {
            const char *local = j == ns ? name : s[j].local;
            if (j < ns && !cl_has_id(s[j].replicas, s[j].nreplicas, nodes[i].id)) continue;
            char u[CL_URL_MAX + 128], err[256];
            snprintf(u, sizeof u, "%s/collections/%s", nodes[i].url[CL_REPLICA], local);
            for (;;) {
                cl_http_reply rep;
                int ok = cl_http("GET", u, NULL, 0, CL_PEER_TIMEOUT_MS, &rep, err, sizeof err) == 0 && rep.status == 200;
                if (rep.body) cl_http_reply_free(&rep);
                if (ok) break;
                if (cl_now_ms() > deadline) {
                    srv_log(SRV_LOG_WARN, "cluster: node %ld has not created '%s' within 5 s", nodes[i].id, local);
                    break;
                }
                usleep(50000);
            }
        }
    }
    free(nodes);
    free(s);
}

int srv_cluster_create(srv_req *r, json_t *config, uint32_t shard_number, uint32_t replication_factor)
{
    srv_cluster *cl = r->ctx->cluster;
    char err[256], key[CL_NAME_MAX + 64];
    long live[256];
    int nlive = 0, rc = -1;
    cl_put *puts = NULL;
    char *cval = NULL;
    if (shard_number < 1 || shard_number > CL_MAX_SHARDS) {
        srv_bad(r, "shard_number must be 1..%d", CL_MAX_SHARDS);
        goto done;
    }
    if (replication_factor < 1 || replication_factor > CL_MAX_REPLICAS) {
        srv_bad(r, "replication_factor must be 1..%d", CL_MAX_REPLICAS);
        goto done;
    }
    if (strlen(r->name) > 60) {
        srv_bad(r, "cluster collection names are at most 60 characters (its shards are NAME.sN)");
        goto done;
    }
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->nnodes && nlive < 256; i++) live[nlive++] = cl->nodes[i].id;
    pthread_mutex_unlock(&cl->mu);
    qsort(live, (size_t)nlive, sizeof *live, cmp_long);
    if ((int)replication_factor > nlive) {
        srv_fail(r, 400, "not_enough_nodes", "replication_factor %u needs %u live nodes; the cluster has %d", replication_factor,
                 replication_factor, nlive);
        goto done;
    }
    json_t *cj = json_pack("{s:O,s:I,s:I}", "config", config, "shard_number", (json_int_t)shard_number,
                           "replication_factor", (json_int_t)replication_factor);
    cval = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
    json_decref(cj);
    if (!cval || !(puts = calloc(shard_number + 1, sizeof *puts))) {
        srv_oom(r);
        goto done;
    }
    snprintf(key, sizeof key, CL_PREFIX "collections/%s", r->name);
    puts[0] = (cl_put){strdup(key), cval, 0};
    /* shard s on live nodes s, s+1, ... (round robin from the lowest id); its first
     * replica leads */
    for (uint32_t s = 0; s < shard_number; s++) {
        json_t *reps = json_array();
        for (uint32_t k = 0; k < replication_factor; k++) json_array_append_new(reps, json_integer(live[(s + k) % (uint32_t)nlive]));
        json_t *sj = json_pack("{s:O,s:o,s:I,s:i}", "replicas", reps, "in_sync", reps, "leader",
                               (json_int_t)live[s % (uint32_t)nlive], "term", 1);
        char sk[CL_NAME_MAX + 64];
        snprintf(sk, sizeof sk, CL_PREFIX "shards/%s/%u", r->name, s);
        puts[s + 1] = (cl_put){strdup(sk), sj ? json_dumps(sj, JSON_COMPACT) : NULL, 0};
        json_decref(sj);
        if (!puts[s + 1].key || !puts[s + 1].value) {
            srv_oom(r);
            goto done;
        }
    }
    cl_cmp c = {puts[0].key, 0};
    int t = cl_etcd_txn(cl->etcd, &c, 1, puts, shard_number + 1, err, sizeof err);
    if (t < 0) srv_fail(r, 503, "cluster_unavailable", "etcd: %s", err);
    else if (t == 0) srv_fail(r, 409, "already_exists", "Collection `%s` already exists in the cluster (its shard config stays as it was)", r->name);
    else {
        srv_log(SRV_LOG_INFO, "cluster: created collection '%s': %u shard(s) x %u replica(s)", r->name, shard_number, replication_factor);
        char e2[256];
        cl_refresh(cl, e2, sizeof e2);                 /* this node routes it from now on */
        sync_local(cl);
        wait_ready(cl, r->name);
        if (srv_open(r->ctx, r->name, &r->opened) == QV_OK) {
            r->coll = &r->opened;
            rc = 0;
        } else {
            srv_fail(r, 500, "internal", "collection '%s' created in the cluster but not here yet", r->name);
        }
    }
done:
    if (puts) {
        for (uint32_t s = 0; s <= shard_number; s++) {
            free((char *)puts[s].key);
            if (s) free((char *)puts[s].value);
        }
    }
    free(puts);
    free(cval);
    return rc;
}

int srv_cluster_drop(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    char key[CL_NAME_MAX + 64], err[256];
    size_t n = 0;
    cl_shard *s = cl_shards_of(cl, r->name, &n);
    cl_put *p = calloc(n + 1, sizeof *p);
    int rc = -1;
    if (!p) {
        srv_oom(r);
        free(s);
        return -1;
    }
    char (*keys)[CL_NAME_MAX + 64] = calloc(n + 1, sizeof *keys);
    if (!keys) {
        free(p);
        free(s);
        srv_oom(r);
        return -1;
    }
    snprintf(key, sizeof key, CL_PREFIX "collections/%s", r->name);
    p[0] = (cl_put){key, NULL, 0};
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], CL_PREFIX "shards/%s/%zu", r->name, i);
        p[i + 1] = (cl_put){keys[i], NULL, 0};
    }
    if (cl_etcd_txn(cl->etcd, NULL, 0, p, n + 1, err, sizeof err) < 0) {
        srv_fail(r, 503, "cluster_unavailable", "etcd: %s", err);
    } else {
        srv_log(SRV_LOG_INFO, "cluster: dropped collection '%s'", r->name);
        cl_refresh(cl, err, sizeof err);
        rc = 0;
    }
    free(keys);
    free(p);
    free(s);
    return rc;
}
