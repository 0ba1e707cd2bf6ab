/*
 * server/cluster_write.c -- writes to cluster collections: routing, the leader's commit
 * and replication, its log, and the two halves of a replica's catch-up it serves.
 *
 * Any node takes an upsert or a delete of a cluster collection. It splits the points by
 * shard (cl_shard_of_id) and hands each part to that shard's leader: in-process when the
 * leader is this node, else POST /cluster/shards/{shard}/upsert|delete there. The leader,
 * under the shard's write lock (so its log, its local data and its followers all see
 * writes in one order):
 *   1. refuses when it is not the leader in the map, or its own lease was not refreshed
 *      within the TTL (another node may have taken over meanwhile);
 *   2. commits to its local shard collection (durable, as on a single node);
 *   3. logs the body (the last CL_LOG_CAP writes, for catch-up);
 *   4. sends the same body to every in-sync follower (plain PUT .../points or POST
 *      .../points/delete of the shard collection); a follower that fails is removed from
 *      in_sync in an etcd txn BEFORE the write is acknowledged -- if that txn cannot be
 *      made, the write is not acknowledged (503), because a later failover to that
 *      follower would lose it;
 *   5. acknowledges when the copies that have it (itself and the followers that
 *      answered) are at least --write-quorum; else 503.
 * So an acknowledged write is on every replica in in_sync at that moment, and only an
 * in-sync replica can become leader: failover loses no acknowledged write.
 * A write over several shards is acknowledged per shard: when one shard fails the reply
 * is 503 and the parts on the other shards stay applied (no cross-shard atomicity).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "server/cluster.h"
#include "server/server.h"

enum { OP_UPSERT = 0, OP_DELETE = 1 };

/* ---- applying a body locally ------------------------------------------------------- */

static const api_jfield points_fields[] = {{"points", API_J_CALL, .read = api_jread_points, .required = 1}, {0}};

static const api_jfield ids_fields[] = {{"ids", API_J_CALL, .read = api_jread_ids, .required = 1}, {0}};

/* Apply a native upsert or delete body to local collection name: 0, or an HTTP status
 * with msg. */
static int apply_local(srv_cluster *cl, const char *name, int kind, const char *body, size_t len, size_t *n, char *msg,
                       size_t msglen)
{
    srv_coll e;
    api_jerr je;
    int rc = srv_open(cl->ctx, name, &e), status = 0;
    if (rc != QV_OK) {
        snprintf(msg, msglen, "shard collection '%s' is not here: %s", name, qv_last_error());
        return 503;
    }
    api_jread rd = {.strict = 1, .dim = e.dim, .name = "the body"};
    if (kind == OP_UPSERT) {
        api_points p = {.dim = e.dim};
        if (api_jparse(&rd, body, len, points_fields, &p, &je) != 0) status = 400, snprintf(msg, msglen, "%s", je.msg);
        else if (p.n && (rc = qv_upsert(e.coll, p.n, p.ids, p.vecs, (const char *const *)p.payloads)) != QV_OK)
            status = 500, snprintf(msg, msglen, "%s", qv_last_error());
        *n = p.n;
        api_points_release(&p);
    } else {
        api_ids ids = {0};
        if (api_jparse(&rd, body, len, ids_fields, &ids, &je) != 0) status = 400, snprintf(msg, msglen, "%s", je.msg);
        else if (ids.n && (rc = qv_delete(e.coll, ids.n, ids.v, n)) != QV_OK)
            status = 500, snprintf(msg, msglen, "%s", qv_last_error());
        free(ids.v);
    }
    qv_collection_close(e.coll);
    return status;
}

/* Send a logged body to the follower at url. */
static int send_op(const char *url, const char *local, int kind, const char *body, size_t len, char *err, size_t errlen)
{
    char u[CL_URL_MAX + 128];
    cl_http_reply rep;
    snprintf(u, sizeof u, "%s/collections/%s/points%s", url, local, kind == OP_DELETE ? "/delete" : "");
    if (cl_http(kind == OP_DELETE ? "POST" : "PUT", u, body, len, CL_WRITE_TIMEOUT_MS, &rep, err, errlen) != 0) return -1;
    int ok = rep.status == 200;
    if (!ok) snprintf(err, errlen, "HTTP %d: %.200s", rep.status, rep.body ? rep.body : "");
    cl_http_reply_free(&rep);
    return ok ? 0 : -1;
}

/* Take follower id out of shard local's in_sync (a txn; re-read and retried when the
 * key moved meanwhile). 0 done (or it was not in), -1 not done. */
static int drop_follower(srv_cluster *cl, const char *local, long id, char *err, size_t errlen)
{
    for (int tries = 0; tries < 5; tries++) {
        cl_shard s;
        if (!cl_shard_get(cl, local, &s)) {
            snprintf(err, errlen, "shard %s is gone from the map", local);
            return -1;
        }
        if (!cl_has_id(s.in_sync, s.nin_sync, id)) return 0;
        int n = 0;
        for (int k = 0; k < s.nin_sync; k++)
            if (s.in_sync[k] != id) s.in_sync[n++] = s.in_sync[k];
        s.nin_sync = n;
        int rc = cl_shard_put(cl, &s, err, errlen);
        if (rc == 1) {
            cl_refresh(cl, err, errlen);
            return 0;
        }
        if (rc < 0) return -1;
        if (cl_refresh(cl, err, errlen) != 0) return -1;
    }
    snprintf(err, errlen, "the shard map kept changing");
    return -1;
}

/* Append a write to the leader's log, dropping the oldest ones past CL_LOG_CAP writes or
 * CL_LOG_MAX_BYTES. Out of memory only shortens the log (a catch-up from before the
 * gap takes a new snapshot). */
static void log_write(cl_lead *l, int kind, const char *body, size_t len)
{
    if (!l->log && !(l->log = calloc(CL_LOG_CAP, sizeof *l->log))) {
        l->first = ++l->seq + 1;
        return;
    }
    l->seq++;
    while (l->first <= l->seq - 1 && (l->seq - l->first >= CL_LOG_CAP || l->log_bytes + len > CL_LOG_MAX_BYTES)) {
        cl_op *old = &l->log[l->first % CL_LOG_CAP];
        l->log_bytes -= old->body ? old->len : 0;
        free(old->body);
        *old = (cl_op){0};
        l->first++;
    }
    cl_op *op = &l->log[l->seq % CL_LOG_CAP];
    char *copy = len <= CL_LOG_MAX_BYTES ? malloc(len + 1) : NULL;
    if (!copy) {                                    /* the log restarts after this write */
        l->first = l->seq + 1;
        return;
    }
    memcpy(copy, body, len);
    copy[len] = 0;
    *op = (cl_op){.seq = l->seq, .kind = kind, .body = copy, .len = len};
    l->log_bytes += len;
}

/* The leader's write (steps 1..5 of the file comment): 0, or an HTTP status with msg. */
static int leader_write(srv_cluster *cl, const char *local, int kind, const char *body, size_t len, size_t *n,
                        char *msg, size_t msglen)
{
    cl_lead *l = cl_lead_of(cl, local);
    cl_shard s;
    int status = 0;
    *n = 0;
    if (!l) {
        snprintf(msg, msglen, "out of memory");
        return 503;
    }
    pthread_mutex_lock(&l->mu);
    if (!cl_shard_get(cl, local, &s) || s.leader != cl->self) {
        char err[256];                              /* the map may be newer than our last poll */
        if (cl_refresh(cl, err, sizeof err) != 0 || !cl_shard_get(cl, local, &s)) s.leader = 0;
    }
    if (s.leader != cl->self) {
        snprintf(msg, msglen, "node %ld does not lead shard %s", cl->self, local);
        status = 421;
        goto done;
    }
    if (cl_now_ms() > atomic_load(&cl->lease_ok_until_ms)) {
        snprintf(msg, msglen, "node %ld could not refresh its lease in etcd: it may no longer lead shard %s", cl->self, local);
        status = 503;
        goto done;
    }
    if ((status = apply_local(cl, local, kind, body, len, n, msg, msglen)) != 0) goto done;
    atomic_fetch_add(&l->writes, 1);
    log_write(l, kind, body, len);
    int copies = 1;
    for (int k = 0; k < s.nin_sync; k++) {
        long f = s.in_sync[k];
        char url[CL_URL_MAX], err[256] = "not registered (its lease expired)";
        if (f == cl->self) continue;
        if (cl_node_url(cl, f, CL_REPLICA, url, sizeof url) && send_op(url, local, kind, body, len, err, sizeof err) == 0) {
            copies++;
            atomic_fetch_add(&l->replicated, 1);
            continue;
        }
        atomic_fetch_add(&l->follower_failures, 1);
        srv_log(SRV_LOG_WARN, "cluster: shard %s: follower %ld failed (%s); marking it out of sync", local, f, err);
        char e2[256];
        if (drop_follower(cl, local, f, e2, sizeof e2) != 0) {
            snprintf(msg, msglen, "follower %ld of shard %s failed and could not be marked out of sync (%s): not acknowledged",
                     f, local, e2);
            status = 503;
            goto done;
        }
    }
    if (copies < cl->write_quorum) {
        snprintf(msg, msglen, "shard %s: %d in-sync cop%s, --write-quorum is %d: committed on the leader but not acknowledged",
                 local, copies, copies == 1 ? "y" : "ies", cl->write_quorum);
        status = 503;
    }
done:
    pthread_mutex_unlock(&l->mu);
    return status;
}

/* ---- routing (the node that took the request) --------------------------------------- */

static void add_part(struct evbuffer *b, int kind, size_t i, const uint64_t *ids, const float *vecs,
                     char *const *payloads, uint32_t dim)
{
    if (evbuffer_get_length(b)) evbuffer_add(b, ",", 1);
    else evbuffer_add_printf(b, "{\"%s\":[", kind == OP_UPSERT ? "points" : "ids");
    if (kind == OP_DELETE) {
        evbuffer_add_printf(b, "%llu", (unsigned long long)ids[i]);
        return;
    }
    evbuffer_add_printf(b, "{\"id\":%llu,\"vector\":[", (unsigned long long)ids[i]);
    for (uint32_t d = 0; d < dim; d++) {
        char f[40];
        api_fmt_real9(f, sizeof f, vecs[i * dim + d]);
        evbuffer_add_printf(b, "%s%s", d ? "," : "", f);
    }
    evbuffer_add_printf(b, "]");
    if (payloads && payloads[i]) evbuffer_add_printf(b, ",\"payload\":%s", payloads[i]);
    evbuffer_add(b, "}", 1);
}

/* One shard's part of a write to its leader (in-process when it is this node): 0, or an
 * HTTP status with msg (421: that node does not lead the shard). */
static int send_part(srv_cluster *cl, const cl_shard *sh, int kind, const char *body, size_t len, size_t *applied,
                     char *msg, size_t msglen)
{
    char url[CL_URL_MAX], u[CL_URL_MAX + 128], err[256];
    cl_http_reply rep;
    *applied = 0;
    if (sh->leader == cl->self) return leader_write(cl, sh->local, kind, body, len, applied, msg, msglen);
    if (!cl_node_url(cl, sh->leader, CL_LEADER, url, sizeof url)) {
        snprintf(msg, msglen, "shard %u has no live leader (node %ld is gone; failover takes up to the lease time)", sh->shard,
                 sh->leader);
        return 503;
    }
    snprintf(u, sizeof u, "%s/cluster/shards/%s/%s", url, sh->local, kind == OP_UPSERT ? "upsert" : "delete");
    if (cl_http("POST", u, body, len, CL_WRITE_TIMEOUT_MS + 5000, &rep, err, sizeof err) != 0) {
        snprintf(msg, msglen, "leader %ld of shard %u: %s", sh->leader, sh->shard, err);
        return 503;
    }
    json_t *j = json_loads(rep.body, 0, NULL);
    int status = rep.status == 200 ? 0 : rep.status;
    *applied = (size_t)json_integer_value(json_object_get(j, "applied"));
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (status) snprintf(msg, msglen, "leader %ld of shard %u: %s", sh->leader, sh->shard, m ? m : "error");
    json_decref(j);
    cl_http_reply_free(&rep);
    return status;
}

static int route(srv_req *r, int kind, const uint64_t *ids, const float *vecs, char *const *payloads, size_t n, uint32_t dim,
                 size_t *done)
{
    srv_cluster *cl = r->ctx->cluster;
    size_t ns = 0;
    cl_shard *shards = cl_shards_of(cl, r->name, &ns);
    struct evbuffer **parts = shards ? calloc(ns, sizeof *parts) : NULL;
    int rc = -1, failed = 0;
    char why[512] = "";
    *done = 0;
    if (!parts) {
        srv_fail(r, 503, "cluster_unavailable", "collection '%s' has no shard map (yet)", r->name);
        goto out;
    }
    for (size_t s = 0; s < ns; s++)
        if (!(parts[s] = evbuffer_new())) goto oom;
    for (size_t i = 0; i < n; i++) add_part(parts[cl_shard_of_id(ids[i], (uint32_t)ns)], kind, i, ids, vecs, payloads, dim);
    for (size_t s = 0; s < ns; s++) {
        if (!evbuffer_get_length(parts[s])) continue;
        if (evbuffer_add(parts[s], "]}", 2) != 0) goto oom;
        size_t len = evbuffer_get_length(parts[s]), applied = 0;
        const char *body = (const char *)evbuffer_pullup(parts[s], -1);
        char msg[384] = "";
        int status;
        if (!body) goto oom;
        status = send_part(cl, &shards[s], kind, body, len, &applied, msg, sizeof msg);
        cl_shard fresh;
        char err[256];
        if (status == 421 && cl_refresh(cl, err, sizeof err) == 0 && cl_shard_get(cl, shards[s].local, &fresh)) {
            shards[s] = fresh;                 /* the leader moved since our last poll: once more */
            status = send_part(cl, &shards[s], kind, body, len, &applied, msg, sizeof msg);
        }
        *done += applied;
        if (status) {
            failed = status;
            snprintf(why + strlen(why), sizeof why - strlen(why), "%s%s", why[0] ? "; " : "", msg);
        }
    }
    if (failed == 400) srv_fail(r, 400, "invalid_argument", "%s", why);
    else if (failed) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
        srv_fail(r, 503, "cluster_unavailable", "%s", why);
    } else rc = 0;
    goto out;
oom:
    srv_oom(r);
out:
    for (size_t s = 0; parts && s < ns; s++)
        if (parts[s]) evbuffer_free(parts[s]);
    free(parts);
    free(shards);
    return rc;
}

int srv_cluster_upsert(srv_req *r, const uint64_t *ids, const float *vecs, char *const *payloads, size_t n, uint32_t dim)
{
    size_t done;
    int rc = route(r, OP_UPSERT, ids, vecs, payloads, n, dim, &done);
    r->points = (long)done;
    return rc;
}

int srv_cluster_delete(srv_req *r, const uint64_t *ids, size_t n, size_t *deleted)
{
    return route(r, OP_DELETE, ids, NULL, NULL, n, 0, deleted);
}

/* ---- the leader's routes ------------------------------------------------------------- */

static const char *body_of(srv_req *r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    *len = evbuffer_get_length(in);
    return *len ? (const char *)evbuffer_pullup(in, -1) : "";
}

/* POST /cluster/shards/{name}/upsert|delete (variant 0|1): name is the shard's local collection. */
void srv_h_cluster_shard_write(srv_req *r)
{
    size_t len, n = 0;
    char msg[384];
    const char *body = body_of(r, &len);
    if (!r->ctx->cluster) { srv_fail(r, 404, "not_found", "not in cluster mode"); return; }
    if (!body) { srv_oom(r); return; }
    int status = leader_write(r->ctx->cluster, r->name, r->route->variant, body, len, &n, msg, sizeof msg);
    r->points = (long)n;
    if (status) srv_fail(r, status, status == 421 ? "not_leader" : status == 400 ? "invalid_argument" : "cluster_unavailable", "%s", msg);
    else srv_reply_json(r, 200, json_pack("{s:I}", "applied", (json_int_t)n));
}

/* POST /cluster/shards/{name}/snapshot -> {"file","seq","log"}: a snapshot of the shard
 * and the log position it holds everything up to (taken under the write lock). */
void srv_h_cluster_shard_snapshot(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    cl_shard s;
    qv_backup_file f;
    qv_backup_info info;
    cl_lead *l = cl ? cl_lead_of(cl, r->name) : NULL;
    if (!l) { srv_fail(r, 404, "not_found", "not in cluster mode"); return; }
    pthread_mutex_lock(&l->mu);
    if (!cl_shard_get(cl, r->name, &s) || s.leader != cl->self) {
        pthread_mutex_unlock(&l->mu);
        srv_fail(r, 421, "not_leader", "node %ld does not lead shard %s", cl->self, r->name);
        return;
    }
    int rc = qv_backup_dir_create(r->ctx->db, r->ctx->snapshots_dir, r->name, &f, &info);
    uint64_t seq = l->seq, log_id = l->log_id;
    pthread_mutex_unlock(&l->mu);
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else srv_reply_json(r, 200, json_pack("{s:s,s:I,s:I,s:I}", "file", f.name, "seq", (json_int_t)seq, "log", (json_int_t)log_id,
                                          "points", (json_int_t)info.points));
}

typedef struct { uint64_t node, seq, log; } join_body;
static const api_jfield join_fields[] = {
    {"node", API_J_U64, offsetof(join_body, node), .lo = 1, .hi = INT64_MAX, .required = 1},
    {"seq", API_J_U64, offsetof(join_body, seq), .lo = 0, .hi = INT64_MAX, .required = 1},
    {"log", API_J_U64, offsetof(join_body, log), .lo = 0, .hi = INT64_MAX, .required = 1},
    {0},
};

/* POST /cluster/shards/{name}/join {"node","seq","log"}: replay the log after seq to the
 * node, then add it to in_sync, all under the write lock (so it misses nothing). */
void srv_h_cluster_shard_join(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    join_body b = {0};
    cl_shard s;
    char url[CL_URL_MAX], err[256];
    size_t replayed = 0;
    cl_lead *l = cl ? cl_lead_of(cl, r->name) : NULL;
    if (!l) { srv_fail(r, 404, "not_found", "not in cluster mode"); return; }
    if (srv_read_body(r, "the join", join_fields, &b) != 0) return;
    pthread_mutex_lock(&l->mu);
    if (!cl_shard_get(cl, r->name, &s) || s.leader != cl->self) {
        srv_fail(r, 421, "not_leader", "node %ld does not lead shard %s", cl->self, r->name);
        goto done;
    }
    if (!cl_has_id(s.replicas, s.nreplicas, (long)b.node) && cl_refresh(cl, err, sizeof err) == 0)
        cl_shard_get(cl, r->name, &s);              /* a replica just added (a move): our map may be a poll behind */
    if (!cl_has_id(s.replicas, s.nreplicas, (long)b.node) || !cl_node_url(cl, (long)b.node, CL_REPLICA, url, sizeof url)) {
        srv_fail(r, 400, "unknown_node", "node %llu is not a live replica of shard %s", (unsigned long long)b.node, r->name);
        goto done;
    }
    if (b.log != l->log_id || b.seq > l->seq || b.seq + 1 < l->first || (b.seq < l->seq && !l->log)) {
        srv_fail(r, 409, "log_moved_on", "the snapshot's log position is no longer in the leader's log; take a new snapshot");
        goto done;
    }
    for (uint64_t q = b.seq + 1; q <= l->seq; q++, replayed++) {
        cl_op *op = &l->log[q % CL_LOG_CAP];
        if (op->seq != q || !op->body) {
            srv_fail(r, 409, "log_moved_on", "write %llu is no longer in the log; take a new snapshot", (unsigned long long)q);
            goto done;
        }
        if (send_op(url, r->name, op->kind, op->body, op->len, err, sizeof err) != 0) {
            srv_fail(r, 503, "cluster_unavailable", "replaying write %llu to node %llu: %s", (unsigned long long)q,
                     (unsigned long long)b.node, err);
            goto done;
        }
    }
    for (int tries = 0;; tries++) {
        if (cl_has_id(s.in_sync, s.nin_sync, (long)b.node)) break;
        if (s.nin_sync == CL_MAX_REPLICAS) break;
        s.in_sync[s.nin_sync++] = (long)b.node;
        int rc = cl_shard_put(cl, &s, err, sizeof err);
        if (rc == 1) break;
        if (rc < 0 || tries == 4 || cl_refresh(cl, err, sizeof err) != 0 || !cl_shard_get(cl, r->name, &s) || s.leader != cl->self) {
            srv_fail(r, 503, "cluster_unavailable", "could not add node %llu to in_sync: %s", (unsigned long long)b.node,
                     rc < 0 ? err : "the shard map kept changing");
            goto done;
        }
    }
    cl_refresh(cl, err, sizeof err);
    srv_log(SRV_LOG_INFO, "cluster: shard %s: node %llu joined in sync after %zu replayed write(s)", r->name,
            (unsigned long long)b.node, replayed);
    srv_reply_json(r, 200, json_pack("{s:I}", "replayed", (json_int_t)replayed));
done:
    pthread_mutex_unlock(&l->mu);
}
