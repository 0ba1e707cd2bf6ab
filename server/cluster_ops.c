/*
 * server/cluster_ops.c -- moving shard replicas between nodes: move one, drain a node.
 *
 * A move of shard S from node A to node B reuses catch-up (cluster_state.c) and adds
 * nothing else that copies data:
 *   1. a txn adds B to S's replicas (not to in_sync);
 *   2. B's poll thread sees it holds S but is not in sync and catches up as any replica
 *      does: a snapshot of the leader plus the leader's log after it; the leader adds B
 *      to in_sync under its write lock (so B misses no write);
 *   3. when A leads S, A hands leadership to another in-sync replica (B when it can):
 *      under A's write lock, so no write of A's is half done when the txn moves the
 *      leader; A's next write answers 421 and the router retries at the new leader;
 *   4. a txn takes A out of replicas and in_sync; A's poll thread drops its local copy.
 * Writes go on throughout: every acknowledged write is on every in-sync replica, and A
 * leaves in_sync only after B joined it. The node that took the request drives the
 * move and waits for it (up to MOVE_WAIT_MS for the catch-up); a catch-up that does not
 * finish in time takes B out of replicas again.
 * A drain moves every replica of a node, one at a time, each to the live node that does
 * not hold that shard and holds the fewest replicas. A rebalance moves replicas from the
 * most to the least loaded live node until they differ by at most one. Nothing of this runs
 * by itself: a new node gets shards only through moves, drains and rebalances.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cluster.h"
#include "server/server.h"

#define MOVE_WAIT_MS 60000

/* Change shard local by edit(s, a, b) and write it in a txn, re-read and retried when the
 * key moved meanwhile: 1 written, 0 edit said nothing to do, -1 with err. */
typedef int (*shard_edit)(cl_shard *s, long a, long b);

static int edit_shard(srv_cluster *cl, const char *local, shard_edit edit, long a, long b, char *err, size_t errlen)
{
    for (int tries = 0; tries < 10; tries++) {
        cl_shard s;
        if (!cl_shard_get(cl, local, &s)) {
            snprintf(err, errlen, "shard %s is gone from the map", local);
            return -1;
        }
        int e = edit(&s, a, b);
        if (e < 0) snprintf(err, errlen, "shard %s cannot take that change now (it has %d replicas, node %ld leads it)", local,
                            s.nreplicas, s.leader);
        if (e <= 0) return e;
        int rc = cl_shard_put(cl, &s, err, errlen);
        if (rc < 0) return -1;
        if (cl_refresh(cl, err, errlen) != 0) return -1;
        if (rc == 1) return 1;
    }
    snprintf(err, errlen, "the shard map kept changing");
    return -1;
}

static int remove_id(long *v, int *n, long id)
{
    int m = 0;
    for (int k = 0; k < *n; k++)
        if (v[k] != id) v[m++] = v[k];
    int changed = m != *n;
    *n = m;
    return changed;
}

static int add_replica(cl_shard *s, long to, long unused)
{
    (void)unused;
    if (cl_has_id(s->replicas, s->nreplicas, to)) return 0;
    if (s->nreplicas == CL_MAX_REPLICAS) return -1;
    s->replicas[s->nreplicas++] = to;
    return 1;
}

static int remove_replica(cl_shard *s, long id, long unused)
{
    (void)unused;
    if (s->leader == id) return -1;                 /* leadership must have moved first */
    int a = remove_id(s->replicas, &s->nreplicas, id);
    int b = remove_id(s->in_sync, &s->nin_sync, id);
    return a || b;
}

/* ---- handover: the leader passes leadership on, under its write lock ---------------- */

/* Make node to (a live in-sync replica) the leader of local: 0, or an HTTP status with msg. */
static int handover_here(srv_cluster *cl, const char *local, long to, char *msg, size_t msglen)
{
    cl_lead *l = cl_lead_of(cl, local);
    cl_shard s;
    int status = 0;
    if (!l) {
        snprintf(msg, msglen, "out of memory");
        return 503;
    }
    pthread_mutex_lock(&l->mu);
    char err[256];
    if (cl_refresh(cl, err, sizeof err) != 0) {
        snprintf(msg, msglen, "etcd: %s", err);
        status = 503;
    } else if (!cl_shard_get(cl, local, &s) || s.leader != cl->self) {
        snprintf(msg, msglen, "node %ld does not lead shard %s", cl->self, local);
        status = 421;
    } else if (!cl_has_id(s.in_sync, s.nin_sync, to) || !cl_alive(cl, to)) {
        snprintf(msg, msglen, "node %ld is not a live in-sync replica of shard %s", to, local);
        status = 409;
    } else {
        s.leader = to;
        s.term++;
        int rc = cl_shard_put(cl, &s, err, sizeof err);
        if (rc != 1) {
            snprintf(msg, msglen, "%s", rc < 0 ? err : "the shard map changed meanwhile; try again");
            status = 503;
        } else {
            cl_refresh(cl, err, sizeof err);        /* our next write sees it and answers 421 */
            srv_log(SRV_LOG_INFO, "cluster: shard %s: leadership handed to node %ld, term %lld", local, to, (long long)s.term);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return status;
}

typedef struct { uint64_t to; } handover_body;
static const api_jfield handover_fields[] = {
    {"to", API_J_U64, offsetof(handover_body, to), .lo = 1, .hi = INT64_MAX, .required = 1},
    {0},
};

/* POST /cluster/shards/{name}/handover {"to":id} (on the leader) */
void srv_h_cluster_shard_handover(srv_req *r)
{
    handover_body b = {0};
    char msg[384];
    if (!r->ctx->cluster) { srv_fail(r, 404, "not_found", "not in cluster mode"); return; }
    if (srv_read_body(r, "the handover", handover_fields, &b) != 0) return;
    int status = handover_here(r->ctx->cluster, r->name, (long)b.to, msg, sizeof msg);
    if (status) srv_fail(r, status, status == 421 ? "not_leader" : status == 409 ? "conflict" : "cluster_unavailable", "%s", msg);
    else srv_reply_json(r, 200, json_pack("{s:I}", "leader", (json_int_t)b.to));
}

static int handover(srv_cluster *cl, const cl_shard *s, long to, char *msg, size_t msglen)
{
    char url[CL_URL_MAX], u[CL_URL_MAX + 128], body[64], err[256];
    cl_http_reply rep;
    if (s->leader == cl->self) return handover_here(cl, s->local, to, msg, msglen);
    if (!cl_node_url(cl, s->leader, CL_LEADER, url, sizeof url)) {
        snprintf(msg, msglen, "the leader of shard %s (node %ld) is not live", s->local, s->leader);
        return 503;
    }
    snprintf(u, sizeof u, "%s/cluster/shards/%s/handover", url, s->local);
    int bl = snprintf(body, sizeof body, "{\"to\":%ld}", to);
    if (cl_http("POST", u, body, (size_t)bl, CL_WRITE_TIMEOUT_MS + 5000, &rep, err, sizeof err) != 0) {
        snprintf(msg, msglen, "leader %ld: %s", s->leader, err);
        return 503;
    }
    int status = rep.status == 200 ? 0 : rep.status ? rep.status : 503;
    if (status) snprintf(msg, msglen, "leader %ld: %.300s", s->leader, rep.body ? rep.body : "");
    cl_http_reply_free(&rep);
    cl_refresh(cl, err, sizeof err);
    return status;
}

/* ---- move ------------------------------------------------------------------------------ */

/* Move the replica of shard local from node a to node b (checked by the caller): 0, or an
 * HTTP status with msg. */
static int move_replica(srv_cluster *cl, const char *local, long a, long b, char *msg, size_t msglen)
{
    char err[256];
    cl_shard s;
    uint64_t t0 = cl_now_ms();
    if (edit_shard(cl, local, add_replica, b, 0, err, sizeof err) < 0) {
        snprintf(msg, msglen, "adding node %ld to shard %s: %s", b, local, err);
        return 503;
    }
    int in_sync = 0;
    while (cl_now_ms() - t0 < MOVE_WAIT_MS) {
        if (cl_refresh(cl, err, sizeof err) == 0 && cl_shard_get(cl, local, &s) && cl_has_id(s.in_sync, s.nin_sync, b)) {
            in_sync = 1;
            break;
        }
        usleep(100000);
    }
    if (!in_sync) {
        if (edit_shard(cl, local, remove_replica, b, 0, err, sizeof err) < 0)
            srv_log(SRV_LOG_WARN, "cluster: shard %s: could not take node %ld out again: %s", local, b, err);
        snprintf(msg, msglen, "node %ld did not catch up on shard %s within %d s; the move is undone", b, local, MOVE_WAIT_MS / 1000);
        return 504;
    }
    if (s.leader == a) {                            /* b is in sync and live: it takes over */
        int status = handover(cl, &s, b, msg, msglen);
        if (status) return status;
    }
    if (edit_shard(cl, local, remove_replica, a, 0, err, sizeof err) < 0) {
        snprintf(msg, msglen, "taking node %ld out of shard %s: %s", a, local, err);
        return 503;
    }
    srv_log(SRV_LOG_INFO, "cluster: shard %s moved from node %ld to node %ld in %.2f s", local, a, b,
            (double)(cl_now_ms() - t0) / 1e3);
    return 0;
}

typedef struct { uint64_t from, to; } move_body;
static const api_jfield move_fields[] = {
    {"from", API_J_U64, offsetof(move_body, from), .lo = 1, .hi = INT64_MAX, .required = 1},
    {"to", API_J_U64, offsetof(move_body, to), .lo = 1, .hi = INT64_MAX, .required = 1},
    {0},
};

/* POST /cluster/collections/{name}/shards/{arg}/move {"from":node,"to":node} */
void srv_h_cluster_move(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    move_body b = {0};
    cl_shard s;
    char local[CL_NAME_MAX + 16], msg[512], *end;
    if (!cl) { srv_fail(r, 404, "not_found", "not in cluster mode"); return; }
    if (srv_read_body(r, "the move", move_fields, &b) != 0) return;
    unsigned long shard = strtoul(r->arg, &end, 10);
    if (!srv_cluster_has(cl, r->name)) { srv_fail(r, 404, "not_found", "no cluster collection `%s`", r->name); return; }
    snprintf(local, sizeof local, "%s.s%lu", r->name, shard);
    if (*end || !*r->arg || !cl_shard_get(cl, local, &s)) {
        srv_fail(r, 404, "not_found", "collection `%s` has no shard %s", r->name, r->arg);
        return;
    }
    if (!cl_has_id(s.replicas, s.nreplicas, (long)b.from)) {
        srv_fail(r, 400, "invalid_argument", "node %llu holds no replica of shard %s", (unsigned long long)b.from, local);
        return;
    }
    if (!cl_alive(cl, (long)b.to)) {
        srv_fail(r, 400, "unknown_node", "node %llu is not a live member of the cluster", (unsigned long long)b.to);
        return;
    }
    if (cl_has_id(s.replicas, s.nreplicas, (long)b.to)) {
        srv_fail(r, 409, "conflict", "node %llu already holds shard %s", (unsigned long long)b.to, local);
        return;
    }
    uint64_t t0 = cl_now_ms();
    int status = move_replica(cl, local, (long)b.from, (long)b.to, msg, sizeof msg);
    if (status) srv_fail(r, status, status == 504 ? "timeout" : status == 409 ? "conflict" : "cluster_unavailable", "%s", msg);
    else srv_reply_json(r, 200, json_pack("{s:s,s:I,s:I,s:f}", "shard", local, "from", (json_int_t)b.from, "to",
                                          (json_int_t)b.to, "took_s", (double)(cl_now_ms() - t0) / 1e3));
}

/* ---- drain ------------------------------------------------------------------------------ */

/* A copy of the shard map and the live nodes with how many replicas each holds (free all
 * three with free); 0 when out of memory. */
static int load_map(srv_cluster *cl, cl_shard **shards, size_t *ns, long **live, int **load, size_t *nn)
{
    char err[256];
    cl_refresh(cl, err, sizeof err);                /* plan on the newest map we can get */
    pthread_mutex_lock(&cl->mu);
    *ns = cl->nshards, *nn = cl->nnodes;
    *shards = calloc(*ns + 1, sizeof **shards);
    *live = calloc(*nn + 1, sizeof **live);
    *load = calloc(*nn + 1, sizeof **load);
    if (*shards) memcpy(*shards, cl->shards, *ns * sizeof **shards);
    for (size_t i = 0; *live && i < *nn; i++) (*live)[i] = cl->nodes[i].id;
    pthread_mutex_unlock(&cl->mu);
    if (!*shards || !*live || !*load) return 0;
    for (size_t i = 0; i < *ns; i++)
        for (size_t k = 0; k < *nn; k++) (*load)[k] += cl_has_id((*shards)[i].replicas, (*shards)[i].nreplicas, (*live)[k]);
    return 1;
}

/* POST /cluster/nodes/{arg}/drain: move every replica on node arg elsewhere. Planned whole
 * before the first move, so an impossible drain (a shard every other live node already
 * holds) is refused with 409 and changes nothing. */
void srv_h_cluster_drain(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    char *end;
    if (!cl) { srv_fail(r, 404, "not_found", "not in cluster mode"); return; }
    long id = strtol(r->arg, &end, 10);
    if (*end || !*r->arg || id < 1) { srv_bad(r, "node id must be a positive integer, not `%s`", r->arg); return; }
    size_t ns, nn;
    cl_shard *shards;
    long *live;
    int *load;
    int ok = load_map(cl, &shards, &ns, &live, &load, &nn);
    long *target = calloc(ns + 1, sizeof *target);
    json_t *moves = json_array();
    int known = 0;
    uint64_t t0 = cl_now_ms();
    if (!ok || !target || !moves) { srv_oom(r); goto done; }
    for (size_t i = 0; i < ns; i++) known |= cl_has_id(shards[i].replicas, shards[i].nreplicas, id);
    for (size_t k = 0; k < nn; k++) known |= live[k] == id;
    if (!known) { srv_fail(r, 404, "not_found", "node %ld is neither live nor holds a replica", id); goto done; }
    for (size_t i = 0; i < ns; i++) {
        if (!cl_has_id(shards[i].replicas, shards[i].nreplicas, id)) continue;
        int best = -1;
        for (size_t k = 0; k < nn; k++)
            if (live[k] != id && !cl_has_id(shards[i].replicas, shards[i].nreplicas, live[k]) && (best < 0 || load[k] < load[best]))
                best = (int)k;
        if (best < 0) {
            srv_fail(r, 409, "not_enough_nodes", "no live node other than %ld can take shard %s (every one holds it already); "
                     "add a node first", id, shards[i].local);
            goto done;
        }
        target[i] = live[best];
        load[best]++;
    }
    for (size_t i = 0; i < ns; i++) {
        if (!target[i]) continue;
        char msg[512];
        int status = move_replica(cl, shards[i].local, id, target[i], msg, sizeof msg);
        if (status) {
            srv_fail(r, status, status == 504 ? "timeout" : "cluster_unavailable", "%s (after %zu move(s) done)", msg,
                     json_array_size(moves));
            goto done;
        }
        json_array_append_new(moves, json_pack("{s:s,s:I}", "shard", shards[i].local, "to", (json_int_t)target[i]));
    }
    srv_reply_json(r, 200, json_pack("{s:I,s:O,s:f}", "node", (json_int_t)id, "moves", moves, "took_s",
                                     (double)(cl_now_ms() - t0) / 1e3));
done:
    json_decref(moves);
    free(shards);
    free(live);
    free(load);
    free(target);
}

/* ---- rebalance ----------------------------------------------------------------------------- */

#define REBALANCE_MAX_MOVES 256

/* POST /cluster/rebalance: while the live node holding the most replicas holds two or more
 * than the one holding the fewest, move a replica between them (one the fewest-holding node
 * does not have). Run by hand after adding a node; nothing rebalances by itself. */
void srv_h_cluster_rebalance(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    if (!cl) { srv_fail(r, 404, "not_found", "not in cluster mode"); return; }
    json_t *moves = json_array();
    uint64_t t0 = cl_now_ms();
    if (!moves) { srv_oom(r); return; }
    while (json_array_size(moves) < REBALANCE_MAX_MOVES) {
        size_t ns, nn;
        cl_shard *shards;
        long *live;
        int *load;
        int ok = load_map(cl, &shards, &ns, &live, &load, &nn), hi = 0, lo = 0;
        for (size_t k = 1; ok && k < nn; k++) {
            if (load[k] > load[hi]) hi = (int)k;
            if (load[k] < load[lo]) lo = (int)k;
        }
        long from = ok && nn ? live[hi] : 0, to = ok && nn ? live[lo] : 0;
        size_t pick = ns;
        for (size_t i = 0; ok && nn && load[hi] - load[lo] > 1 && i < ns && pick == ns; i++)
            if (cl_has_id(shards[i].replicas, shards[i].nreplicas, from) && !cl_has_id(shards[i].replicas, shards[i].nreplicas, to))
                pick = i;
        char local[CL_NAME_MAX + 8], msg[512];
        if (pick < ns) snprintf(local, sizeof local, "%s", shards[pick].local);
        free(shards);
        free(live);
        free(load);
        if (!ok) { json_decref(moves); srv_oom(r); return; }
        if (pick == ns) break;
        int status = move_replica(cl, local, from, to, msg, sizeof msg);
        if (status) {
            srv_fail(r, status, status == 504 ? "timeout" : "cluster_unavailable", "%s (after %zu move(s) done)", msg,
                     json_array_size(moves));
            json_decref(moves);
            return;
        }
        json_array_append_new(moves, json_pack("{s:s,s:I,s:I}", "shard", local, "from", (json_int_t)from, "to", (json_int_t)to));
    }
    srv_reply_json(r, 200, json_pack("{s:o,s:f}", "moves", moves, "took_s", (double)(cl_now_ms() - t0) / 1e3));
}
