/*
 * server/pipeline.c -- one request, from dispatch to its single reply, for both APIs.
 *
 * srv_dispatch() is the evhttp callback of every listener; the listener says which API
 * (srv_api: a route table and an error shape) it serves. In order, for either API:
 *   1. a method quiverd does not implement at all (CONNECT, or one libevent cannot name)
 *      is 501 and the connection closes;
 *   2. the path is split and percent-decoded, and matched against the route table;
 *   3. the API key or token (auth.c): every route but the open ones needs one when a key
 *      file is set. One precedence on both listeners, Qdrant's: the api-key header if
 *      present, else "Authorization: Bearer KEY" (a request with both is judged by
 *      api-key alone); 401 when it is missing, wrong, forged or expired;
 *   4. 400 for a path with control or non-ASCII bytes, 404 for no route, 501 for what the
 *      API names but quiverd does not support, 405 (with Allow) for a wrong method, 400
 *      for a bad collection name, 403 when the credential does not open the collection
 *      the route touches at the level it needs (read, or read-write for a write);
 *   5. the collection: opened (a counted handle, so a drop meanwhile is safe) for as long
 *      as the handler runs, 404 when absent;
 *   6. the handler, which replies exactly once through srv_reply_* or srv_fail*.
 * A write ends with an audit line (who, what, collection, points) at level info.
 * Every reply goes through finish(): metrics, "Connection: close" while draining, the
 * idle timer re-armed, and the reply counted as outstanding until evhttp has written it
 * (so shutdown can wait for it). srv_fail_qv() is the one map from QV_E* to HTTP status.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "server/cluster.h"
#include "server/server.h"

#define MAX_SEGS 8

/* ---- replies ------------------------------------------------------------------- */

static void on_complete(struct evhttp_request *req, void *arg)
{
    srv_ctx *ctx = arg;
    atomic_fetch_sub(&ctx->outstanding, 1);
    /* evhttp keeps a CONNECT's connection open whatever the reply says (a tunnel would
     * follow): close it here, now that the 501 is written */
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT && conn)
        shutdown(bufferevent_getfd(evhttp_connection_get_bufferevent(conn)), SHUT_RDWR);
}

/* The methods libevent names, and the route bit of each: HEAD is GET without the body;
 * no route allows OPTIONS or TRACE; CONNECT is never served. The first five, in this
 * order, are the bits SRV_M_*. */
static const struct { enum evhttp_cmd_type cmd; const char *name; unsigned bit; } methods[] = {
    {EVHTTP_REQ_GET, "GET", SRV_M_GET},          {EVHTTP_REQ_POST, "POST", SRV_M_POST},
    {EVHTTP_REQ_PUT, "PUT", SRV_M_PUT},          {EVHTTP_REQ_DELETE, "DELETE", SRV_M_DELETE},
    {EVHTTP_REQ_PATCH, "PATCH", SRV_M_PATCH},    {EVHTTP_REQ_HEAD, "HEAD", SRV_M_GET},
    {EVHTTP_REQ_OPTIONS, "OPTIONS", 0},          {EVHTTP_REQ_TRACE, "TRACE", 0},
    {EVHTTP_REQ_CONNECT, "CONNECT", 0},
};
#define NMETHODS (sizeof methods / sizeof methods[0])

static size_t method_of(enum evhttp_cmd_type c)
{
    size_t i = 0;
    while (i < NMETHODS && methods[i].cmd != c) i++;
    return i;
}

static const char *method_name(enum evhttp_cmd_type c)
{
    size_t i = method_of(c);
    return i < NMETHODS ? methods[i].name : "this method";
}

static void finish(srv_req *r, int status, struct evbuffer *body)
{
    struct evhttp_request *req = r->req;
    srv_ctx *ctx = r->ctx;
    if (r->replied) {                     /* a bug: handlers reply once */
        srv_log(SRV_LOG_ERROR, "second reply for one request ignored");
        return;
    }
    r->replied = 1;
    r->status = status;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (atomic_load(&ctx->draining))
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    uint64_t us = api_now_us() - r->t0_us;
    srv_metrics_record(r->ep, status, us);
    srv_log(SRV_LOG_DEBUG, "%s %s -> %d (%llu us)", method_name(cmd), evhttp_request_get_uri(req), status,
            (unsigned long long)us);
    /* evhttp writes whatever body it is given, even to HEAD; the answer to HEAD has none */
    if (body && cmd == EVHTTP_REQ_HEAD) evbuffer_drain(body, evbuffer_get_length(body));
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn) {
        /* The handler ran on the loop thread, so the connection's idle timer may already
         * have run out while it worked; re-arm it, or evhttp closes the connection before
         * the reply to a committed write is out. The loop's cached clock is from before
         * the handler: without the update the new deadline is already in the past. */
        if (ctx->timeout_s > 0) {
            event_base_update_cache_time(evhttp_connection_get_base(conn));
            evhttp_connection_set_timeout(conn, ctx->timeout_s);
        }
        atomic_fetch_add(&ctx->outstanding, 1);
        evhttp_request_set_on_complete_cb(req, on_complete, ctx);
    }
    evhttp_send_reply(req, status, NULL, body);
}

void srv_reply_buf(srv_req *r, int status, const char *ctype, struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type", ctype);
    finish(r, status, body);
}

static int add_to_evbuffer(const char *buf, size_t size, void *out)
{
    return evbuffer_add(out, buf, size);
}

void srv_reply_json(srv_req *r, int status, json_t *body)
{
    struct evbuffer *buf = evbuffer_new();
    /* No tree: json_pack refused, out of memory or given a string that is not UTF-8 (a
     * bug: messages are made ASCII by srv_fail), so not called out of memory. */
    if (!body) {
        srv_log(SRV_LOG_ERROR, "%s: the reply could not be encoded", evhttp_request_get_uri(r->req));
        status = 500;
        if (buf) evbuffer_add_printf(buf, "{\"error\":{\"code\":\"internal\",\"message\":\"the reply could not be encoded\"}}");
    /* trees hold no payloads (those are written by api_wpoints), so 9 digits, which
     * round-trip every float, suit all their reals; a tree's dump fails only for memory */
    } else if (!buf || json_dump_callback(body, add_to_evbuffer, buf, JSON_COMPACT | JSON_REAL_PRECISION(9))) {
        /* out of memory while encoding: a small fixed answer needs no allocation */
        if (buf) evbuffer_drain(buf, evbuffer_get_length(buf));
        status = 503;
        if (buf) evbuffer_add_printf(buf, "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory encoding the reply\"}}");
    }
    json_decref(body);
    srv_reply_buf(r, status, "application/json", buf);
    if (buf) evbuffer_free(buf);
}

int srv_fail(srv_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* library messages can quote client bytes; keep the JSON valid UTF-8 */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) *p = '?';
    if (status >= 500 && status != 501) srv_log(SRV_LOG_WARN, "%d %s: %s", status, code, msg);
    r->api->error(r, status, code, msg);
    return -1;
}

int srv_fail_qv(srv_req *r, int rc)
{
    static const struct { int rc, status; const char *code; } map[] = {
        {QV_EINVAL, 400, "invalid_argument"}, {QV_EDIM, 400, "dimension_mismatch"},
        {QV_ENOTFOUND, 404, "not_found"},     {QV_EEXIST, 409, "already_exists"},
        {QV_ESTATE, 409, "invalid_state"},    {QV_ENOMEM, 503, "out_of_memory"},
        {QV_ENODEV, 501, "no_device"},        {QV_EFULL, 507, "storage_full"},
        {QV_ECORRUPT, 500, "corrupt"},        {QV_EIO, 500, "io_error"},
    };
    int status = 500;
    const char *code = "internal";
    if (r->coll && srv_alias_retry(r, rc)) {   /* run() runs the request again, unanswered */
        r->rerun = 1;
        return -1;
    }
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].rc == rc) {
            status = map[i].status;
            code = map[i].code;
        }
    const char *detail = qv_last_error();
    return srv_fail(r, status, code, "%s", detail && *detail ? detail : qv_strerror(rc));
}

int srv_read_body(srv_req *r, const char *name, const api_jfield *fields, void *dst)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    /* pullup makes the body contiguous; evhttp already capped its size */
    const char *text = len ? (const char *)evbuffer_pullup(in, -1) : "";
    api_jread rd = {.strict = !r->api->lenient, .dim = r->coll ? r->coll->dim : 0, .name = name};
    api_jerr e;
    if (len == 0 && r->api->lenient) text = "{}", len = 2;      /* Qdrant: no body reads as {} */
    if (!text) api_jfail(&e, "out_of_memory", "out of memory reading the body");
    else if (api_jparse(&rd, text, len, fields, dst, &e) == 0) return 0;
    return srv_fail_jerr(r, &e);
}

int srv_fail_jerr(srv_req *r, const api_jerr *e)
{
    return srv_fail(r, strcmp(e->code, "out_of_memory") == 0 ? 503 : 400, e->code, "%s", e->msg);
}

static int to_evbuffer(void *out, const char *p, size_t len)
{
    return evbuffer_add(out, p, len);
}

api_wbuf *srv_writer(srv_req *r)
{
    if (!r->out && (r->out = evbuffer_new())) r->w = (api_wbuf){.sink = to_evbuffer, .sink_arg = r->out};
    if (!r->out) r->w.err = 1;
    return &r->w;
}

void srv_reply_written(srv_req *r)
{
    api_wflush(srv_writer(r));
    if (r->w.err) srv_oom(r);
    else srv_reply_buf(r, 200, "application/json", r->out);
}

/* ---- collections ----------------------------------------------------------------- */

int srv_open(srv_ctx *ctx, const char *name, srv_coll *e)
{
    qv_collection_info info;
    memset(e, 0, sizeof *e);
    int rc = qv_collection_open(ctx->db, name, &e->coll);
    if (rc == QV_OK && (rc = qv_collection_get_info(e->coll, &info)) != QV_OK) {
        qv_collection_close(e->coll);                 /* dropped in between */
        e->coll = NULL;
    }
    if (rc != QV_OK) return rc;
    e->name = name;
    e->dim = info.config.index.dim;
    e->metric = info.config.index.metric;
    return QV_OK;
}

/* ---- routing --------------------------------------------------------------------- */

/* '%' and two hex digits become that byte, anything else stays (evhttp_uridecode's rule
 * without '+' decoding); returns the decoded length. */
static size_t percent_decode(const char *in, size_t len, char *out)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%' && i + 2 < len && isxdigit((unsigned char)in[i + 1]) && isxdigit((unsigned char)in[i + 2])) {
            char hex[3] = {in[i + 1], in[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        out[j++] = c;
    }
    out[j] = 0;
    return j;
}

/* Split "/a/b%2Fc/" into decoded segments (in buf, strlen(path)+1 bytes). Returns the
 * count, -1 for too many or empty inner segments (no route), -2 when a segment decodes to
 * bytes outside printable ASCII. "" and "/" have none. */
static int split_path(const char *path, char *buf, char **seg, int max)
{
    int n = 0;
    if (!path || (path[0] != '/' && path[0])) return -1;
    const char *p = path + (path[0] == '/');
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) return -1;                /* "//" */
        if (n == max) return -1;
        size_t dlen = percent_decode(p, len, buf);
        seg[n++] = buf;
        for (size_t i = 0; i < dlen; i++)
            if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f) return -2;
        buf += dlen + 1;
        if (!e) break;
        p = e + 1;                              /* a trailing '/' ends the loop */
    }
    return n;
}

/* Whether pattern matches seg[0..n); fills the path arguments. */
static int path_matches(const char *pat, char **seg, int n, srv_req *r)
{
    int i = 0;
    r->name = r->arg = NULL;
    for (const char *p = pat; *p; i++) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && memcmp(p, "**", 2) == 0) return 1;
        if (i == n) return 0;
        if (len == 6 && memcmp(p, "{name}", 6) == 0) r->name = seg[i];
        else if (len == 5 && memcmp(p, "{arg}", 5) == 0) r->arg = seg[i];
        else if (strlen(seg[i]) != len || memcmp(seg[i], p, len) != 0) return 0;
        p = e ? e + 1 : p + len;
    }
    return i == n;
}

static int same_path(const srv_route *a, const srv_route *b)
{
    return a->path == b->path || strcmp(a->path, b->path) == 0;
}

/* Routes both APIs serve alike (their handlers answer in the listener's shape), after
 * each API's own table: a path one API answers otherwise is listed in its table (Qdrant's
 * 501 for snapshots/recover), and all the methods of a path are in one table (for 405). */
static const srv_route common_routes[] = {
    {SRV_M_GET, "metrics", SRV_EP_METRICS, 0, srv_h_metrics, 0, NULL},
    {SRV_M_GET, "collections", SRV_EP_LIST, 0, srv_h_list, 0, NULL},
    {SRV_M_POST, "snapshots", SRV_EP_SNAPSHOT, SRV_R_WRITE, srv_h_snapshot_create, 0, NULL},
    {SRV_M_GET, "snapshots", SRV_EP_SNAPSHOT, 0, srv_h_snapshot_list, 0, NULL},
    {SRV_M_GET, "snapshots/{arg}", SRV_EP_SNAPSHOT, 0, srv_h_snapshot_download, 0, NULL},
    {SRV_M_DELETE, "snapshots/{arg}", SRV_EP_SNAPSHOT, SRV_R_WRITE, srv_h_snapshot_delete, 0, NULL},
    {SRV_M_GET, "collections/{name}/aliases", SRV_EP_OTHER, SRV_R_COLL, srv_h_alias_list, 0, NULL},
    {SRV_M_POST, "collections/{name}/snapshots", SRV_EP_SNAPSHOT, SRV_R_WRITE | SRV_R_COLL, srv_h_snapshot_create, 0, NULL},
    {SRV_M_GET, "collections/{name}/snapshots", SRV_EP_SNAPSHOT, 0, srv_h_snapshot_list, 0, NULL},
    {SRV_M_PUT, "collections/{name}/snapshots/recover", SRV_EP_RESTORE, SRV_R_WRITE, srv_h_snapshot_recover, 0, NULL},
    {SRV_M_POST, "collections/{name}/snapshots/upload", SRV_EP_RESTORE, SRV_R_WRITE, srv_h_snapshot_upload, 0, NULL},
    {SRV_M_GET, "collections/{name}/snapshots/{arg}", SRV_EP_SNAPSHOT, 0, srv_h_snapshot_download, 0, NULL},
    {SRV_M_DELETE, "collections/{name}/snapshots/{arg}", SRV_EP_SNAPSHOT, SRV_R_WRITE, srv_h_snapshot_delete, 0, NULL},
};

/* The route for the path and method: *known when the path has any route (then NULL
 * means 405, and *allowed has its methods). */
static const srv_route *route_of(const srv_api *api, char **seg, int n, unsigned mbit, srv_req *r,
                                 int *known, unsigned *allowed)
{
    const srv_route *tables[2] = {api->routes, common_routes};
    size_t sizes[2] = {api->nroutes, sizeof common_routes / sizeof common_routes[0]};
    *known = 0;
    *allowed = 0;
    for (int t = 0; t < 2; t++)
        for (const srv_route *rt = tables[t], *end = rt + sizes[t]; rt < end; rt++) {
            if (rt > tables[t] && same_path(rt, rt - 1)) continue;     /* the previous one's answer */
            if (!path_matches(rt->path, seg, n, r)) continue;
            *known = 1;
            const srv_route *hit = NULL;
            for (const srv_route *m = rt; m < end && same_path(m, rt); m++) {
                *allowed |= m->methods;
                if (!hit && (m->methods & mbit)) hit = m;
            }
            return hit;
        }
    return NULL;
}

static void allow_header(unsigned allowed, char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; i < 5; i++)
        if (allowed & methods[i].bit) {
            if (buf[0]) strncat(buf, ", ", len - strlen(buf) - 1);
            strncat(buf, methods[i].name, len - strlen(buf) - 1);
        }
}

/* The presented key: api-key first, then Authorization: Bearer (Qdrant's order). */
static const char *find_key(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *k = evhttp_find_header(h, "api-key");
    if (k) return k;
    const char *a = evhttp_find_header(h, "Authorization");
    if (!a) return NULL;
    while (*a == ' ') a++;
    if (strncasecmp(a, "Bearer ", 7) != 0) return NULL;
    for (a += 7; *a == ' '; a++) {}
    return a;
}

/* Whether the request's credential opens what the route touches: its collection at the
 * level the route needs (a write needs read-write); a route without a collection needs
 * the credential's own level, and one limited to collections may not use the routes
 * that span every collection: the metrics (they name them all) and the whole-store
 * snapshots (they hold them all). 0, or -1 after replying 403. */
static int allowed_here(srv_req *r, const srv_route *rt)
{
    int need = (rt->flags & SRV_R_WRITE) ? SRV_ACCESS_RW : SRV_ACCESS_RO;
    const srv_auth *a = &r->auth;
    int have = r->name ? srv_auth_coll(a, r->name) : a->access < a->token_access ? a->access : a->token_access;
    int whole_store = !r->name && (rt->ep == SRV_EP_METRICS || rt->ep == SRV_EP_SNAPSHOT || rt->ep == SRV_EP_RESTORE);
    if (have >= need && !(whole_store && srv_auth_limited(a))) return 0;
    if (whole_store && have >= need)
        return srv_fail(r, 403, "forbidden", "a key or token limited to collections cannot use /%s (it spans every collection)", rt->path);
    if (have == SRV_ACCESS_RO) return srv_fail(r, 403, "forbidden", "this API key or token is read-only%s%s%s", r->name ? " for collection `" : "", r->name ? r->name : "", r->name ? "`" : "");
    return srv_fail(r, 403, "forbidden", "this API key or token has no access to collection `%s`", r->name ? r->name : "");
}

/* Steps 2..5 of the file comment; the handler runs when it returns 0 (-1: replied). */
static int admit(srv_req *r, char **seg, int n)
{
    srv_ctx *ctx = r->ctx;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);
    size_t m = method_of(cmd);
    int known = 0;
    unsigned allowed = 0;
    const srv_route *rt = n >= 0 ? route_of(r->api, seg, n, m < NMETHODS ? methods[m].bit : 0, r, &known, &allowed) : NULL;
    r->route = rt;
    if (rt) r->ep = rt->ep;
    if (!(rt && (rt->flags & SRV_R_OPEN))) {
        if (ctx->keys) srv_auth_check(ctx->keys, find_key(r->req), &r->auth);
        else srv_auth_all(&r->auth);
        if (r->auth.access == SRV_ACCESS_NONE) {
            evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
            return srv_fail(r, 401, "unauthorized", "%s", r->auth.why);
        }
    }
    if (n == -2) return srv_fail(r, 400, "invalid_name", "the path holds control or non-ASCII characters");
    if (!known) return srv_fail(r, 404, "not_found", "no such endpoint");
    if (rt && rt->unsupported) return srv_fail(r, 501, "not_implemented", "%s not supported by quiverd", rt->unsupported);
    if (!rt) {
        char allow[64];
        allow_header(allowed, allow, sizeof allow);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
        return srv_fail(r, 405, "method_not_allowed", "%s is not allowed here; allowed: %s", method_name(cmd), allow);
    }
    if (r->name && qv_coll_name_check(r->name) != QV_OK)
        return srv_fail(r, 400, "invalid_name", "collection names are 1..64 characters of [A-Za-z0-9_.-] and do not start with '.'");
    srv_alias_path(r);                          /* access is judged on the collection */
    return (rt->flags & SRV_R_OPEN) ? 0 : allowed_here(r, rt);
}

/* Step 5 and 6: open the collection, run the handler. Through an alias whose collection
 * was dropped meanwhile, again on what the alias names now (srv_alias_retry; the failed
 * run replied nothing, and a write on a dropped collection changed nothing). */
static void run(srv_req *r)
{
    for (;;) {
        int rc = QV_ENOTFOUND;
        if (r->route->flags & (SRV_R_COLL | SRV_R_COLL_OPT) && (rc = srv_open(r->ctx, r->name, &r->opened)) == QV_OK)
            r->coll = &r->opened;
        if (rc == QV_ENOTFOUND && srv_alias_retry(r, rc)) {
            srv_alias_path(r);
            continue;
        }
        if (rc == QV_ENOTFOUND && (r->route->flags & SRV_R_COLL))
            srv_fail(r, 404, "not_found", "Collection `%s` doesn't exist!", r->alias ? r->alias : r->name);
        else if (r->coll && !(r->route->flags & SRV_R_CLUSTER) && srv_cluster_has(r->ctx->cluster, r->name))
            srv_fail(r, 501, "not_implemented", "/%s is not supported on cluster collection `%s` (cluster mode routes "
                     "create, drop, info, upsert, delete and search)", r->route->path, r->name);
        else if (rc != QV_OK && rc != QV_ENOTFOUND) srv_fail_qv(r, rc);
        else r->route->handler(r);
        if (r->coll) qv_collection_close(r->coll->coll);
        r->coll = NULL;
        if (r->replied || !r->rerun) break;
        r->rerun = 0;
        if (r->out) evbuffer_drain(r->out, evbuffer_get_length(r->out));
        r->w.n = 0;
        r->w.err = 0;
        srv_alias_path(r);
    }
    if (!r->replied) srv_fail(r, 500, "internal", "handler sent no reply");
    if (r->out) evbuffer_free(r->out);
}

/* The audit line of a write: who, what, which collection, how many points, the outcome. */
static void audit(const srv_req *r)
{
    char points[32] = "";
    if (r->points >= 0) snprintf(points, sizeof points, " points=%ld", r->points);
    srv_log(SRV_LOG_INFO, "audit: who=%s %s /%s collection=%s status=%d%s", r->auth.who[0] ? r->auth.who : "-",
            method_name(evhttp_request_get_command(r->req)), r->route->path, r->name ? r->name : "-", r->status, points);
}

int srv_may_see(const srv_req *r, const char *name)
{
    return srv_auth_coll(&r->auth, name) >= SRV_ACCESS_RO;
}

void srv_dispatch(struct evhttp_request *req, void *arg)
{
    const srv_listener *l = arg;
    srv_req r = {.ctx = l->ctx, .api = l->api, .req = req, .ep = SRV_EP_OTHER, .t0_us = api_now_us(), .points = -1};
    srv_worker_busy(1);
    srv_conn_request_read(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (r.ctx->max_queue && atomic_load(&r.ctx->outstanding) >= r.ctx->max_queue) {
        /* the bounded queue: replies not yet written (slow readers) hold memory */
        srv_metrics_conn_event(SRV_REQ_SHED);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        srv_fail(&r, 503, "overloaded", "too many requests in progress (--max-queue %ld); retry later", r.ctx->max_queue);
    } else if (cmd == EVHTTP_REQ_CONNECT || method_of(cmd) == NMETHODS) {
        /* any body it has is unread: the next bytes are not a request */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        srv_fail(&r, 501, "not_implemented", "%s is not implemented by quiverd", method_name(cmd));
    } else {
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        size_t plen = path ? strlen(path) + 1 : 1;
        char small[512], *buf = plen <= sizeof small ? small : malloc(plen), *seg[MAX_SEGS];
        int n = buf ? split_path(path, buf, seg, r.api->max_segs) : -1;
        if (admit(&r, seg, n) == 0) run(&r);
        if (r.route && (r.route->flags & SRV_R_WRITE)) audit(&r);    /* refused ones too */
        srv_auth_release(&r.auth);
        if (buf != small) free(buf);
    }
    srv_worker_busy(0);
}
