/*
 * server/http.c -- one request, from dispatch to its single reply.
 *
 * srv_http_dispatch() splits and percent-decodes the path, authenticates (every path
 * but /healthz needs a key when a key file is configured), routes to a handler and
 * answers 401/403/404/405 itself. Every reply, success or error, goes through finish(),
 * which records metrics, adds "Connection: close" while draining, and counts the reply
 * as outstanding until evhttp has written it (so shutdown can wait for it).
 *
 * srv_reply_qv() is the one place that maps a QV_E* code to an HTTP status.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "server/server.h"

#define MAX_SEGS 4

uint64_t srv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    (void)req;
    srv_ctx *ctx = arg;
    atomic_fetch_sub(&ctx->outstanding, 1);
}

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
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
    if (atomic_load(&ctx->draining))
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    uint64_t us = srv_now_us() - r->t0_us;
    srv_metrics_record(r->ep, status, us);
    srv_log(SRV_LOG_DEBUG, "%s %s -> %d (%llu us)", method_name(evhttp_request_get_command(req)),
            evhttp_request_get_uri(req), status, (unsigned long long)us);
    /* evhttp writes whatever body it is given, even to HEAD; the answer to HEAD has none */
    if (body && evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
        evbuffer_drain(body, evbuffer_get_length(body));
    if (evhttp_request_get_connection(req)) {
        /* The handler ran on the loop thread, so the connection's idle timer may already
         * have run out while it worked; re-arm it, or evhttp closes the connection before
         * the reply to a committed write is out. */
        if (ctx->timeout_s > 0) {
            struct evhttp_connection *conn = evhttp_request_get_connection(req);
            /* the loop's cached clock is from before the handler: without this the new
             * deadline is already in the past */
            event_base_update_cache_time(evhttp_connection_get_base(conn));
            evhttp_connection_set_timeout(conn, ctx->timeout_s);
        }
        atomic_fetch_add(&ctx->outstanding, 1);
        evhttp_request_set_on_complete_cb(req, on_complete, ctx);
    }
    evhttp_send_reply(req, status, NULL, body);
}

void srv_reply_json(srv_req *r, int status, json_t *body)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf || !body || srv_json_write(buf, body, 0) != 0) {
        /* out of memory while encoding: a small fixed answer needs no allocation */
        if (buf) evbuffer_drain(buf, evbuffer_get_length(buf));
        status = 503;
        if (buf) evbuffer_add_printf(buf, "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory encoding the reply\"}}");
    }
    json_decref(body);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type", "application/json");
    finish(r, status, buf);
    if (buf) evbuffer_free(buf);
}

void srv_reply_text(srv_req *r, int status, const char *ctype, struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type", ctype);
    finish(r, status, body);
}

void srv_reply_error(srv_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* library messages can quote client bytes; keep the JSON valid UTF-8 */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) *p = '?';
    if (status >= 500) srv_log(SRV_LOG_WARN, "%d %s: %s", status, code, msg);
    srv_reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void srv_reply_qv(srv_req *r, int rc)
{
    int status;
    const char *code;
    switch (rc) {
    case QV_EINVAL:    status = 400; code = "invalid_argument"; break;
    case QV_EDIM:      status = 400; code = "dimension_mismatch"; break;
    case QV_ENOTFOUND: status = 404; code = "not_found"; break;
    case QV_EEXIST:    status = 409; code = "already_exists"; break;
    case QV_ESTATE:    status = 409; code = "invalid_state"; break;
    case QV_ENOMEM:    status = 503; code = "out_of_memory"; break;
    case QV_ENODEV:    status = 501; code = "no_device"; break;
    case QV_EFULL:     status = 507; code = "storage_full"; break;
    case QV_ECORRUPT:  status = 500; code = "corrupt"; break;
    case QV_EIO:       status = 500; code = "io_error"; break;
    default:           status = 500; code = "internal"; break;
    }
    const char *detail = qv_last_error();
    srv_reply_error(r, status, code, "%s", detail && *detail ? detail : qv_strerror(rc));
}

/* ---- routing ------------------------------------------------------------------- */

enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8 };

typedef struct {
    srv_endpoint ep;          /* for the method given; SRV_EP_OTHER when not allowed */
    unsigned allowed;         /* M_* of the path */
    int write;                /* needs a read-write key */
    const char *name, *id;    /* path arguments */
} route;

static unsigned method_bit(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return M_GET;
    case EVHTTP_REQ_HEAD: return M_GET;           /* GET without the body */
    case EVHTTP_REQ_POST: return M_POST;
    case EVHTTP_REQ_PUT: return M_PUT;
    case EVHTTP_REQ_DELETE: return M_DELETE;
    default: return 0;
    }
}

static void allow_header(unsigned allowed, char *buf, size_t len)
{
    static const struct { unsigned bit; const char *name; } m[] = {
        {M_GET, "GET"}, {M_POST, "POST"}, {M_PUT, "PUT"}, {M_DELETE, "DELETE"}};
    buf[0] = 0;
    for (size_t i = 0; i < 4; i++)
        if (allowed & m[i].bit) {
            if (buf[0]) strncat(buf, ", ", len - strlen(buf) - 1);
            strncat(buf, m[i].name, len - strlen(buf) - 1);
        }
}

/* Fill rt for path segments seg[0..n); returns 0 when no route matches. */
static int match(char **seg, int n, unsigned mbit, route *rt)
{
    memset(rt, 0, sizeof *rt);
    rt->ep = SRV_EP_OTHER;
#define ON(bit, endpoint, w) do { rt->allowed |= (bit); if (mbit == (bit)) { rt->ep = (endpoint); rt->write = (w); } } while (0)
    if (n == 1 && strcmp(seg[0], "healthz") == 0) { ON(M_GET, SRV_EP_HEALTHZ, 0); return 1; }
    if (n == 1 && strcmp(seg[0], "metrics") == 0) { ON(M_GET, SRV_EP_METRICS, 0); return 1; }
    if (n < 1 || strcmp(seg[0], "collections") != 0) return 0;
    if (n == 1) { ON(M_GET, SRV_EP_LIST, 0); return 1; }
    rt->name = seg[1];
    if (n == 2) {
        ON(M_GET, SRV_EP_INFO, 0);
        ON(M_PUT, SRV_EP_CREATE, 1);
        ON(M_DELETE, SRV_EP_DROP, 1);
        return 1;
    }
    if (n == 3 && strcmp(seg[2], "points") == 0) { ON(M_PUT, SRV_EP_UPSERT, 1); return 1; }
    if (n == 3 && strcmp(seg[2], "search") == 0) { ON(M_POST, SRV_EP_SEARCH, 0); return 1; }
    if (n == 4 && strcmp(seg[2], "search") == 0 && strcmp(seg[3], "batch") == 0) {
        ON(M_POST, SRV_EP_SEARCH_BATCH, 0);
        return 1;
    }
    if (n == 4 && strcmp(seg[2], "points") == 0 && strcmp(seg[3], "delete") == 0) {
        ON(M_POST, SRV_EP_DELETE_POINTS, 1);
        return 1;
    }
    if (n == 3 && strcmp(seg[2], "train") == 0) { ON(M_POST, SRV_EP_TRAIN, 1); return 1; }
    if (n == 4 && strcmp(seg[2], "index") == 0) {
        rt->id = seg[3];                /* the payload field */
        ON(M_PUT, SRV_EP_INDEX_FIELD, 1);
        ON(M_DELETE, SRV_EP_UNINDEX_FIELD, 1);
        return 1;
    }
    if (n == 4 && strcmp(seg[2], "points") == 0) {
        rt->id = seg[3];
        ON(M_GET, SRV_EP_GET_POINT, 0);
        return 1;
    }
#undef ON
    return 0;
}

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

int srv_split_path(const char *path, srv_path *sp, int max)
{
    int n = 0;
    memset(sp->seg, 0, sizeof sp->seg);
    sp->heap = NULL;
    if (!path || path[0] != '/' || max > SRV_PATH_MAX_SEGS) return -1;
    /* decoded segments are no longer than the path; most paths fit the struct's buffer */
    size_t need = strlen(path) + 1;
    char *buf = need <= sizeof sp->small ? sp->small : (sp->heap = malloc(need));
    if (!buf) return -1;
    const char *p = path + 1;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) {
            if (!e) break;
            return -1;                  /* "//" */
        }
        if (n == max) return -1;
        size_t dlen = percent_decode(p, len, buf);
        sp->seg[n++] = buf;
        for (size_t i = 0; i < dlen; i++)
            if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f) return -2;
        buf += dlen + 1;
        if (!e) break;
        p = e + 1;                      /* a trailing '/' ends the loop */
    }
    return n;
}

void srv_path_release(srv_path *sp)
{
    free(sp->heap);
    sp->heap = NULL;
}

static const char *find_key(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *a = evhttp_find_header(h, "Authorization");
    if (a) {
        while (*a == ' ') a++;
        if (strncasecmp(a, "Bearer ", 7) == 0) {
            a += 7;
            while (*a == ' ') a++;
            return a;
        }
        return NULL;
    }
    return evhttp_find_header(h, "api-key");
}

void srv_http_dispatch(struct evhttp_request *req, void *arg)
{
    srv_ctx *ctx = arg;
    srv_req r = {.ctx = ctx, .req = req, .ep = SRV_EP_OTHER, .t0_us = srv_now_us()};
    srv_worker_busy(1);
    srv_path sp;
    char **seg = sp.seg;
    route rt;
    int n = -1;

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    n = srv_split_path(path, &sp, MAX_SEGS);
    int known = n >= 0 && match(seg, n, method_bit(evhttp_request_get_command(req)), &rt);
    if (known) r.ep = rt.ep;

    if (!(known && n == 1 && strcmp(seg[0], "healthz") == 0)) {
        r.access = ctx->keys ? srv_keys_check(ctx->keys, find_key(req)) : SRV_ACCESS_RW;
        if (r.access == SRV_ACCESS_NONE) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
            srv_reply_error(&r, 401, "unauthorized", "a valid API key is required "
                                                     "(Authorization: Bearer KEY)");
            goto cleanup;
        }
    }
    if (n == -2) {
        srv_reply_error(&r, 400, "invalid_name", "the path holds control or non-ASCII characters");
        goto cleanup;
    }
    if (!known) {
        srv_reply_error(&r, 404, "not_found", "no such endpoint");
        goto cleanup;
    }
    if (rt.ep == SRV_EP_OTHER) {
        char allow[64];
        allow_header(rt.allowed, allow, sizeof allow);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        srv_reply_error(&r, 405, "method_not_allowed", "%s is not allowed here; allowed: %s",
                        method_name(evhttp_request_get_command(req)), allow);
        goto cleanup;
    }
    if (rt.write && r.access < SRV_ACCESS_RW) {
        srv_reply_error(&r, 403, "forbidden", "this API key is read-only");
        goto cleanup;
    }
    if (rt.name && !srv_name_valid(rt.name)) {
        srv_reply_error(&r, 400, "invalid_name", "collection names are 1..64 characters of "
                                                 "[A-Za-z0-9_.-] and do not start with '.'");
        goto cleanup;
    }

    switch (rt.ep) {
    case SRV_EP_HEALTHZ: srv_h_healthz(&r); break;
    case SRV_EP_METRICS: srv_h_metrics(&r); break;
    case SRV_EP_LIST: srv_h_list(&r); break;
    case SRV_EP_CREATE: srv_h_create(&r, rt.name); break;
    case SRV_EP_INFO: srv_h_info(&r, rt.name); break;
    case SRV_EP_DROP: srv_h_drop(&r, rt.name); break;
    case SRV_EP_UPSERT: srv_h_upsert(&r, rt.name); break;
    case SRV_EP_GET_POINT: srv_h_get_point(&r, rt.name, rt.id); break;
    case SRV_EP_DELETE_POINTS: srv_h_delete_points(&r, rt.name); break;
    case SRV_EP_SEARCH: srv_h_search(&r, rt.name); break;
    case SRV_EP_SEARCH_BATCH: srv_h_search_batch(&r, rt.name); break;
    case SRV_EP_INDEX_FIELD: srv_h_index_field(&r, rt.name, rt.id); break;
    case SRV_EP_UNINDEX_FIELD: srv_h_unindex_field(&r, rt.name, rt.id); break;
    case SRV_EP_TRAIN: srv_h_train(&r, rt.name); break;
    default: srv_reply_error(&r, 500, "internal", "unrouted endpoint"); break;
    }
    if (!r.replied) srv_reply_error(&r, 500, "internal", "handler sent no reply");
cleanup:
    srv_path_release(&sp);
    srv_worker_busy(0);
}
