/*
 * server/cluster.h -- cluster mode: sharded, replicated collections coordinated by etcd.
 *
 * quiverd --cluster http://etcd:2379,... --node-id N --advertise http://me:port joins a
 * cluster. etcd (through its v3 JSON gateway) holds who is alive and where each shard of
 * each collection lives; quiverd holds the data. Keys, under /quiver/:
 *   nodes/<id>                {"url":...}                   under this node's lease
 *   collections/<name>        {"config":{native create body},"shard_number","replication_factor"}
 *   shards/<name>/<s>         {"replicas":[ids],"in_sync":[ids],"leader":id,"term":n}
 * Every change to a shard key is an etcd transaction that compares the key's
 * mod_revision as last read, so two nodes never both win (a leader change, a follower
 * marked out of sync, a replica joining after catch-up).
 *
 * A shard s of collection C is an ordinary local collection "C.s<s>" on each of its
 * replicas; C itself also exists on every node, empty, to carry the schema (the pipeline
 * opens it, bodies are checked against its dim). Writes and searches on C are routed:
 *   writes    by shard = splitmix64(id) % shard_number to the shard's leader, which
 *             commits locally, then sends the same body to every in-sync follower before
 *             it answers (a follower that fails is dropped from in_sync first);
 *   searches  to one live replica of each shard for k hits each, merged into the top k;
 *             a shard with no live replica makes the reply "partial".
 * Files:
 *   cluster_http.c    a small blocking HTTP/1.1 client (etcd and the other nodes)
 *   cluster_etcd.c    etcd's v3 JSON gateway: range, put, txn, lease grant/keepalive
 *   cluster_state.c   the node's view: membership, the shard map, the poll thread,
 *                     failover, local shard collections, catch-up
 *   cluster_write.c   routing and replication of writes; the leader's log
 *   cluster_read.c    scatter-gather search; GET /cluster
 *   cluster_ops.c     moving a shard replica to another node, draining a node, rebalancing
 *   cluster_update.c  changing a collection's parameters on every node (PATCH); the
 *                     reconciler that keeps each node's local parts at etcd's config
 */
#ifndef QV_SERVER_CLUSTER_H
#define QV_SERVER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "quiver.h"

/* ---- HTTP client (cluster_http.c) ------------------------------------------------ */
typedef struct {
    int status;                    /* HTTP status, 0 when no reply came */
    char *body;                    /* NUL-terminated (malloc'd; free with free) */
    size_t len;
} cl_http_reply;
/** One request to url ("http://host:port/path"); body may be NULL. Waits at most
 *  timeout_ms for connect and for each read. Returns 0 with *rep filled (any status), or
 *  -1 with err set (connection refused, timeout, bad URL, reply over 1 GiB). */
int  cl_http(const char *method, const char *url, const char *body, size_t len, int timeout_ms,
             cl_http_reply *rep, char *err, size_t errlen);
void cl_http_reply_free(cl_http_reply *rep);
/** base64 of len bytes (malloc'd) / back (malloc'd, *out_len). NULL when out of memory
 *  or (decode) not base64. */
char *cl_b64_encode(const void *p, size_t len);
char *cl_b64_decode(const char *s, size_t *out_len);

/* ---- etcd (cluster_etcd.c) ------------------------------------------------------- */
typedef struct cl_etcd cl_etcd;
typedef struct { char *key, *value; int64_t mod_revision, create_revision; } cl_kv;
/** endpoints: "http://h:p,http://h:p"; NULL with err when none is well formed. */
cl_etcd *cl_etcd_new(const char *endpoints, char *err, size_t errlen);
void     cl_etcd_free(cl_etcd *e);
/** Every key with prefix into *kvs (*n); *revision = the store's revision. */
int  cl_etcd_range(cl_etcd *e, const char *prefix, cl_kv **kvs, size_t *n, int64_t *revision, char *err, size_t errlen);
void cl_kvs_free(cl_kv *kvs, size_t n);
int  cl_etcd_put(cl_etcd *e, const char *key, const char *value, int64_t lease, char *err, size_t errlen);
int  cl_etcd_delete(cl_etcd *e, const char *key, char *err, size_t errlen);
/** A transaction: when every compare holds, every put runs. One compare each:
 *  mod_revision == rev (rev 0: the key does not exist). 1 when it ran, 0 when a compare
 *  failed, -1 on error. */
typedef struct { const char *key; int64_t mod_revision; } cl_cmp;
typedef struct { const char *key, *value; int64_t lease; } cl_put;
int  cl_etcd_txn(cl_etcd *e, const cl_cmp *cmp, size_t ncmp, const cl_put *put, size_t nput, char *err, size_t errlen);
int  cl_etcd_lease_grant(cl_etcd *e, int ttl_s, int64_t *id, char *err, size_t errlen);
/** Refresh the lease; 0 ok, 1 the lease is gone (expired), -1 error. */
int  cl_etcd_lease_keepalive(cl_etcd *e, int64_t id, char *err, size_t errlen);

/* ---- the cluster (cluster_state.c and friends) -------------------------------------- */
struct srv_ctx;
struct srv_req;
typedef struct srv_cluster srv_cluster;
typedef struct {
    const char *endpoints;         /* --cluster */
    long node_id;                  /* --node-id, >= 1 */
    const char *advertise;         /* --advertise: how the other nodes reach this one */
    const char *leader_url, *replica_url;   /* this node's tier listeners (main.c): where
                                    * peers send a leader's work and a replica's work */
    int lease_ttl_s;               /* --lease-ttl (default 3) */
    int write_quorum;              /* --write-quorum: in-sync copies a write needs (0: 1) */
} srv_cluster_options;
/** Join: register under a lease, load the shard map, start the poll thread. -1 with a
 *  logged reason (etcd unreachable, node id taken, bad options). */
int  srv_cluster_start(struct srv_ctx *ctx, const srv_cluster_options *o, srv_cluster **out);
void srv_cluster_stop(srv_cluster *cl);
/** 1 when name is a cluster collection (its writes and searches are routed). */
int  srv_cluster_has(srv_cluster *cl, const char *name);
/** Create collection r->name across the cluster: config as a native create body. -1
 *  after replying with the error; 0 after the 201/200 reply is the caller's. */
int  srv_cluster_create(struct srv_req *r, json_t *config, uint32_t shard_number, uint32_t replication_factor);
/** Drop it across the cluster (the map keys go; every node drops its local shards). */
int  srv_cluster_drop(struct srv_req *r);
/** Route an upsert of points (native body {"points":[...]} built by the caller) or a
 *  delete of ids. 0 when every shard acknowledged; -1 after replying. */
struct api_points_s;
int  srv_cluster_upsert(struct srv_req *r, const uint64_t *ids, const float *vecs, char *const *payloads, size_t n,
                        uint32_t dim);
int  srv_cluster_delete(struct srv_req *r, const uint64_t *ids, size_t n, size_t *deleted);
/** The cluster part of a cluster collection's info {"shard_number","replication_factor",
 *  "partial","missing_shards"}, and *count: its points, summed over one live replica of
 *  each shard (partial when a shard has none). */
json_t *srv_cluster_info(srv_cluster *cl, const char *name, uint64_t *count);
/** PATCH of cluster collection r->name (both APIs): ch is checked on this node's empty
 *  copy, merged into the config in etcd, and applied by every live node to its parts
 *  before the reply (cluster_update.c). 0 when all did (the caller replies); -1 after
 *  replying (4xx: nothing changed; 503 cluster_partial: stored, some node not done yet). */
int  srv_cluster_update(struct srv_req *r, const qv_collection_changes *ch);
/** POST /collections/{name}/search on a cluster collection: scatter, gather, reply. */
void srv_cluster_search(struct srv_req *r);
/* route handlers (native.c's table) */
void srv_h_cluster_status(struct srv_req *r);       /* GET /cluster */
void srv_h_cluster_shard_write(struct srv_req *r);  /* POST /cluster/shards/{name}/upsert|delete (variant 0|1) */
void srv_h_cluster_shard_snapshot(struct srv_req *r);   /* POST /cluster/shards/{name}/snapshot */
void srv_h_cluster_shard_join(struct srv_req *r);   /* POST /cluster/shards/{name}/join {"node","seq"} */
void srv_h_cluster_shard_handover(struct srv_req *r);   /* POST /cluster/shards/{name}/handover {"to"} */
void srv_h_cluster_move(struct srv_req *r);         /* POST /cluster/collections/{name}/shards/{arg}/move */
void srv_h_cluster_drain(struct srv_req *r);        /* POST /cluster/nodes/{arg}/drain */
void srv_h_cluster_rebalance(struct srv_req *r);    /* POST /cluster/rebalance */
void srv_h_cluster_reconcile(struct srv_req *r);    /* POST /cluster/collections/{name}/reconcile */
/** Append per-shard Prometheus lines. */
struct evbuffer;
void srv_cluster_metrics(srv_cluster *cl, struct evbuffer *buf);


/* ---- internals shared by the cluster_*.c files ----------------------------------- */
#include <pthread.h>
#include <stdatomic.h>

#define CL_MAX_REPLICAS 8
#define CL_MAX_SHARDS 64
#define CL_NAME_MAX 72
#define CL_URL_MAX 256
#define CL_LOG_CAP 65536           /* writes a leader keeps for catch-up (ring), */
#define CL_LOG_MAX_BYTES (256u << 20)   /* and at most this many bytes of them: a replica
                                         * further behind takes a new snapshot */

/* A node: its client URL, and the tier listeners peers use (main.c says why). */
enum { CL_CLIENT = 0, CL_LEADER = 1, CL_REPLICA = 2 };
typedef struct { long id; char url[3][CL_URL_MAX]; } cl_node;
typedef struct {
    char name[CL_NAME_MAX];
    char *config;                  /* native create body (JSON text) */
    uint32_t shard_number, replication_factor;
} cl_coll;
/** One shard as etcd has it (a copy: the map is replaced whole on every poll). */
typedef struct {
    char coll[CL_NAME_MAX];        /* the cluster collection */
    uint32_t shard;
    char local[CL_NAME_MAX + 8];   /* its local collection "coll.sN" */
    int64_t mod_revision;          /* of its key, as read */
    long replicas[CL_MAX_REPLICAS], in_sync[CL_MAX_REPLICAS], leader;
    int nreplicas, nin_sync;
    int64_t term;
} cl_shard;
/** What a leader keeps per shard: the lock that orders its writes, the log of the last
 *  CL_LOG_CAP writes (for catch-up), counters. Allocated once per shard name, freed at
 *  stop, so a pointer stays valid across map refreshes. */
typedef struct { uint64_t seq; int kind; char *body; size_t len; } cl_op;   /* kind 0 upsert, 1 delete */
typedef struct cl_lead {
    struct cl_lead *next;
    char local[CL_NAME_MAX + 8];
    pthread_mutex_t mu;
    uint64_t seq;                  /* of the last write logged */
    uint64_t first;                /* of the oldest write still in the log (seq + 1: none) */
    size_t log_bytes;
    uint64_t log_id;               /* this log's identity: a catch-up's seq is in one log */
    cl_op *log;                    /* ring of CL_LOG_CAP, made by the first write led */
    atomic_ulong writes, replicated, follower_failures, searches, search_failures;
} cl_lead;

struct srv_cluster {
    struct srv_ctx *ctx;
    cl_etcd *etcd;
    long self;
    char advertise[CL_URL_MAX], leader_url[CL_URL_MAX], replica_url[CL_URL_MAX];
    int ttl_s, write_quorum;
    int64_t lease;
    int registered;                /* our node key is ours (only then does stop delete it) */
    uint64_t next_catchup_ms;      /* a failed catch-up waits a second before the next try */
    pthread_mutex_t mu;            /* guards the map below and leads */
    cl_node *nodes;
    size_t nnodes;
    cl_coll *colls;
    size_t ncolls;
    cl_shard *shards;
    size_t nshards;
    int64_t revision;              /* etcd's, at the last poll */
    uint64_t polls, failovers, catchups;
    cl_lead *leads;
    char **known;                  /* cluster collections created locally */
    size_t nknown;
    pthread_mutex_t sync_mu;       /* one sync_local at a time (poll thread, create) */
    atomic_ullong lease_ok_until_ms;   /* leaders refuse writes after it (lease not refreshed) */
    pthread_t thread;
    int started;
    pthread_mutex_t lease_mu;      /* guards lease: the lease thread's refresh, a register again */
    pthread_t lease_thread;
    int lease_started;
    pthread_mutex_t reconcile_mu;  /* one reconcile at a time; guards applied (cluster_update.c) */
    struct cl_applied *applied;
    pthread_t reconciler;
    int reconciler_started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop;
};

#define CL_PREFIX "/quiver/"
/** The url of node id for tier CL_* (into buf) and whether it is alive; 0 when unknown. */
int  cl_node_url(srv_cluster *cl, long id, int tier, char *buf, size_t len);
/** 1 when node id's key is in the map (its lease is alive). */
int  cl_alive(srv_cluster *cl, long id);
/** A copy of the shards of collection coll (*n of them; free with free); NULL when none. */
cl_shard *cl_shards_of(srv_cluster *cl, const char *coll, size_t *n);
/** The shard of local name (copied into *out); 0 when unknown. */
int  cl_shard_get(srv_cluster *cl, const char *local, cl_shard *out);
/** The leader state of local shard name, made on first use; NULL when out of memory. */
cl_lead *cl_lead_of(srv_cluster *cl, const char *local);
/** Write shard s with its replicas, in_sync, leader and term in a txn comparing its
 *  mod_revision: 1 done, 0 someone else changed it first, -1 error. */
int  cl_shard_put(srv_cluster *cl, const cl_shard *s, char *err, size_t errlen);
int  cl_has_id(const long *v, int n, long id);
/** Read the map from etcd again now; -1 with err. */
int  cl_refresh(srv_cluster *cl, char *err, size_t errlen);
/** This node's own answer for a native search body on local collection name (as
 *  POST /collections/{name}/search would give): status and JSON text (malloc'd). */
int  cl_local_search(srv_cluster *cl, const char *local, const char *body, size_t len, char **out, size_t *out_len);
uint64_t cl_now_ms(void);
/** Sleep ms, or until the node stops: 1 when it stops (the cluster's threads loop on it). */
int  cl_nap(srv_cluster *cl, long ms);
/** The reconciler thread (cluster_update.c), and freeing what it kept. */
int  cl_reconciler_start(srv_cluster *cl);
void cl_reconciler_free(srv_cluster *cl);
/** Which shard an id goes to. */
uint32_t cl_shard_of_id(uint64_t id, uint32_t shard_number);
#define CL_PEER_TIMEOUT_MS 2000       /* searches, status: a dead peer costs at most this */
#define CL_WRITE_TIMEOUT_MS 30000     /* a write to a leader or follower: a large batch into an
                                       * HNSW graph on a busy machine takes seconds, and a
                                       * follower that times out is dropped from in_sync */

#endif
