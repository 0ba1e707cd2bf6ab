/*
 * server/snapshots.c -- snapshots (backups) over HTTP, on both APIs: Qdrant's snapshot
 * endpoints in Qdrant's shapes, and the same paths on the native API in native shapes.
 * The work is the library's: qv_backup_dir_* (storage/backup_dir.c) name, list and
 * delete the files, qv_backup_create / qv_backup_restore write and read them; this file
 * serves them, and fetches or receives the ones to restore.
 *
 * Files live in the snapshots directory (--snapshots, default <data>/backups, resolved
 * once at startup): <dir>/<collection>/<collection>-YYYY-MM-DD-HH-MM-SS.snapshot for a
 * collection, <dir>/full-snapshot-YYYY-MM-DD-HH-MM-SS.snapshot for the whole store, each
 * with a sidecar "<file>.sha256" in sha256sum's format (`sha256sum -c` checks it), which
 * the listing reports as the checksum. Snapshots outlive the collection they were taken
 * from (a backup that vanished with its collection would be of little use).
 *
 *   POST   /collections/{name}/snapshots            take one (the library's read txn;
 *                                                    writes go on meanwhile)
 *   GET    /collections/{name}/snapshots            list: name, creation_time, size, checksum
 *   GET    /collections/{name}/snapshots/{file}     download (sendfile)
 *   DELETE /collections/{name}/snapshots/{file}     delete
 *   PUT    /collections/{name}/snapshots/recover    {"location": "file:///..." | "http://...",
 *                                                    "checksum": sha256} restore into {name},
 *                                                    replacing it
 *   POST   /collections/{name}/snapshots/upload     multipart/form-data (or the raw file),
 *                                                    ?checksum=sha256: restore the upload
 *   POST|GET /snapshots, GET|DELETE /snapshots/{file}   the same for the whole store;
 *   PUT    /snapshots/recover                        (native only) restore every collection
 *                                                    of a file, replacing those of the same name
 *
 * A file:// location must lie inside the snapshots directory (after resolving links):
 * an API key is not a license to read the server's other files. An http:// location is
 * fetched with libevent's client (on a private event base: the handler blocks, as a
 * snapshot or restore does anyway) into a temporary file there first; https is not
 * supported. Uploads are bounded by --max-body, as every request body is; larger files go
 * through a location.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "server/server.h"

#define FETCH_TIMEOUT_S 600

/* ---- the directory ------------------------------------------------------------------- */

int srv_snapshots_init(srv_ctx *ctx, const char *dir, const char *data)
{
    char def[PATH_MAX], real[PATH_MAX];
    if (!dir) {
        if ((size_t)snprintf(def, sizeof def, "%s/backups", data) >= sizeof def) {
            srv_log(SRV_LOG_ERROR, "--data path too long");
            return -1;
        }
        dir = def;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        srv_log(SRV_LOG_ERROR, "cannot create the snapshots directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!realpath(dir, real) || !(ctx->snapshots_dir = strdup(real))) {
        srv_log(SRV_LOG_ERROR, "snapshots directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

void srv_snapshots_release(srv_ctx *ctx)
{
    free(ctx->snapshots_dir);
    ctx->snapshots_dir = NULL;
}

/* The directory of this request's snapshots (a collection's, or the top one). */
static int dir_of(srv_req *r, char *buf, size_t len)
{
    int n = r->name ? snprintf(buf, len, "%s/%s", r->ctx->snapshots_dir, r->name)
                    : snprintf(buf, len, "%s", r->ctx->snapshots_dir);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* {"name","creation_time","size","checksum"} of a file (Qdrant's SnapshotDescription;
 * the time is the file's, UTC, without a zone as Qdrant writes it). */
static json_t *describe(const qv_backup_file *f)
{
    char when[32];
    struct tm tm;
    time_t t = (time_t)f->mtime;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    return json_pack("{s:s,s:s,s:I,s:o}", "name", f->name, "creation_time", when, "size", (json_int_t)f->size,
                     "checksum", f->sha256[0] ? json_string(f->sha256) : json_null());
}

/* ---- create, list, download, delete ------------------------------------------------- */

/* POST /collections/{name}/snapshots, POST /snapshots */
void srv_h_snapshot_create(srv_req *r)
{
    qv_backup_file f;
    qv_backup_info info;
    uint64_t t0 = api_now_us();
    int rc = qv_backup_dir_create(r->ctx->db, r->ctx->snapshots_dir, r->name, &f, &info);
    if (rc != QV_OK) { srv_fail_qv(r, rc); return; }
    srv_log(SRV_LOG_INFO, "snapshot %s%s%s: %llu bytes, %u collection(s), %llu points, %.2f s", r->name ? r->name : "",
            r->name ? "/" : "", f.name, (unsigned long long)info.bytes, info.collections,
            (unsigned long long)info.points, (double)(api_now_us() - t0) / 1e6);
    /* native: the description with what it holds and took; Qdrant: the description */
    json_t *native = describe(&f);
    if (native && json_object_update_new(native, json_pack("{s:I,s:I,s:I}", "collections", (json_int_t)info.collections,
                                                           "points", (json_int_t)info.points, "took_us",
                                                           (json_int_t)(api_now_us() - t0))) != 0) {
        json_decref(native);
        native = NULL;
    }
    srv_reply_ok(r, 201, native, describe(&f));
}

/* GET /collections/{name}/snapshots, GET /snapshots */
void srv_h_snapshot_list(srv_req *r)
{
    qv_backup_file *files;
    size_t n;
    int rc = qv_backup_dir_list(r->ctx->snapshots_dir, r->name, &files, &n);
    if (rc != QV_OK) { srv_fail_qv(r, rc); return; }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, describe(&files[i])) != 0) json_decref(list), list = NULL;
    qv_free(files);
    srv_reply_ok(r, 200, list ? json_pack("{s:O}", "snapshots", list) : NULL, list);
}

/* GET /collections/{name}/snapshots/{file}, GET /snapshots/{file}: the bytes. */
void srv_h_snapshot_download(srv_req *r)
{
    char path[PATH_MAX], disp[300];
    struct stat st;
    int rc = qv_backup_dir_path(r->ctx->snapshots_dir, r->name, r->arg, path, sizeof path);
    if (rc != QV_OK) { srv_fail_qv(r, rc); return; }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        srv_fail(r, 404, "not_found", "no snapshot '%s'", r->arg);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    /* evbuffer_add_file owns fd from here on (closed with the buffer's segment) and sends
     * it with sendfile: a large snapshot is never read into memory */
    if (!b || evbuffer_add_file(b, fd, 0, st.st_size) != 0) {
        if (b) evbuffer_free(b);
        else close(fd);
        srv_oom(r);
        return;
    }
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", r->arg);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Disposition", disp);
    srv_reply_buf(r, 200, "application/octet-stream", b);
    evbuffer_free(b);
}

/* DELETE /collections/{name}/snapshots/{file}, DELETE /snapshots/{file} */
void srv_h_snapshot_delete(srv_req *r)
{
    int rc = qv_backup_dir_delete(r->ctx->snapshots_dir, r->name, r->arg);
    if (rc != QV_OK) { srv_fail_qv(r, rc); return; }
    srv_log(SRV_LOG_INFO, "snapshot %s%s%s deleted", r->name ? r->name : "", r->name ? "/" : "", r->arg);
    srv_reply_ok(r, 200, json_pack("{s:s,s:b}", "name", r->arg, "deleted", 1), json_true());
}

/* ---- restoring ------------------------------------------------------------------------ */

/* Restore file path (checksum: expected SHA-256 or NULL) into the request's collection
 * (or every collection of the file for the store), and reply. shown: what to call a
 * temporary file in messages ("the upload"), NULL to name path. */
static void restore_and_reply(srv_req *r, const char *path, const char *shown, const char *checksum, uint64_t t0)
{
    qv_restore_options o;
    qv_backup_info info;
    qv_restore_options_init(&o);
    o.rename = r->name;
    o.sha256 = checksum;
    o.flags = QV_RESTORE_REPLACE;
    int rc = qv_backup_restore(r->ctx->db, path, &o, &info);
    if (rc == QV_ECORRUPT) {                      /* the file's fault, not the server's */
        const char *msg = qv_last_error();
        size_t pl = strlen(path);
        if (shown && !strncmp(msg, path, pl)) srv_fail(r, 400, "invalid_snapshot", "%s%s", shown, msg + pl);
        else srv_fail(r, 400, "invalid_snapshot", "%s", msg);
        return;
    }
    if (rc != QV_OK) { srv_fail_qv(r, rc); return; }
    srv_log(SRV_LOG_INFO, "restored %u collection(s), %llu points%s%s from a snapshot (%s) in %.2f s",
            info.collections, (unsigned long long)info.points, r->name ? " into " : "", r->name ? r->name : "",
            info.sha256, (double)(api_now_us() - t0) / 1e6);
    srv_reply_ok(r, 200, json_pack("{s:I,s:I,s:I,s:s,s:I}", "collections", (json_int_t)info.collections, "points",
                                   (json_int_t)info.points, "index_loaded", (json_int_t)info.index_loaded, "sha256",
                                   info.sha256, "took_us", (json_int_t)(api_now_us() - t0)),
                 json_true());
}

/* A temporary file in the snapshots directory; fd and its path. */
static int temp_file(srv_req *r, char *path, size_t len)
{
    int n = snprintf(path, len, "%s/.incoming-XXXXXX", r->ctx->snapshots_dir);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkostemp(path, O_CLOEXEC);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- fetching an http:// location ---- */

typedef struct {
    struct event_base *base;
    int fd, status, failed, done;
    char err[256];
} fetch_state;

/* What arrived so far into the file (evhttp's chunk callback, and at the end). */
static void fetch_drain(struct evhttp_request *req, void *arg)
{
    fetch_state *f = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n;
    while (!f->failed && (n = evbuffer_get_contiguous_space(in)) > 0) {
        if (write_all(f->fd, evbuffer_pullup(in, (ev_ssize_t)n), n) != 0) {
            f->failed = errno == ENOSPC ? 507 : 500;
            snprintf(f->err, sizeof f->err, "writing the download: %s", strerror(errno));
        }
        evbuffer_drain(in, n);
    }
    if (f->failed) evbuffer_drain(in, evbuffer_get_length(in));
}

static void fetch_done(struct evhttp_request *req, void *arg)
{
    fetch_state *f = arg;
    f->done = 1;
    if (!req || !evhttp_request_get_response_code(req)) {
        if (!f->failed) {
            f->failed = 400;
            snprintf(f->err, sizeof f->err, "no answer");
        }
    } else {
        f->status = evhttp_request_get_response_code(req);
        fetch_drain(req, f);
    }
    event_base_loopexit(f->base, NULL);
}

static void fetch_error(enum evhttp_request_error e, void *arg)
{
    fetch_state *f = arg;
    if (!f->failed) {
        f->failed = 400;
        snprintf(f->err, sizeof f->err, "%s", e == EVREQ_HTTP_TIMEOUT ? "timed out" : e == EVREQ_HTTP_EOF ?
                 "connection closed early" : "connection failed");
    }
}

/* The host of a parsed URL as a resolver takes it: "[::1]" becomes "::1". */
static const char *bare_host(const struct evhttp_uri *u, char *buf, size_t len)
{
    const char *h = u ? evhttp_uri_get_host(u) : NULL;
    size_t n = h ? strlen(h) : 0;
    if (n < 2 || h[0] != '[' || h[n - 1] != ']' || n - 2 >= len) return h;
    memcpy(buf, h + 1, n - 2);
    buf[n - 2] = 0;
    return buf;
}

/* GET url into fd; 0, or the HTTP status to answer with (message in err): a location
 * that cannot be fetched is the request's fault (4xx), a full disk 507. */
static int fetch_http(const char *url, const char *api_key, int fd, char *err, size_t errlen)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    struct evhttp_connection *conn = NULL;
    struct evhttp_request *req = NULL;
    fetch_state f = {.fd = fd};
    int ret = 0;
    char bare[256], target[4096], hosthdr[300];
    const char *host = bare_host(u, bare, sizeof bare), *path = u ? evhttp_uri_get_path(u) : NULL;
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    int port = u ? evhttp_uri_get_port(u) : -1;
    if (!host || !host[0]) {
        snprintf(err, errlen, "location '%.200s' is not a URL quiverd can fetch", url);
        ret = 400;
        goto done;
    }
    snprintf(target, sizeof target, "%s%s%s", path && path[0] ? path : "/", query ? "?" : "", query ? query : "");
    snprintf(hosthdr, sizeof hosthdr, "%s:%d", evhttp_uri_get_host(u), port < 0 ? 80 : port);
    if (!(f.base = event_base_new()) ||
        !(conn = evhttp_connection_base_new(f.base, NULL, host, (unsigned short)(port < 0 ? 80 : port))) ||
        !(req = evhttp_request_new(fetch_done, &f))) {
        snprintf(err, errlen, "out of memory");
        ret = 503;
        goto done;
    }
    evhttp_connection_set_timeout(conn, FETCH_TIMEOUT_S);
    evhttp_request_set_chunked_cb(req, fetch_drain);
    evhttp_request_set_error_cb(req, fetch_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", hosthdr);
    if (api_key) evhttp_add_header(h, "api-key", api_key);
    if (evhttp_make_request(conn, req, EVHTTP_REQ_GET, target) != 0) {   /* frees req */
        snprintf(err, errlen, "cannot request %.200s", url);
        ret = 400;
        goto done;
    }
    event_base_dispatch(f.base);
    if (f.failed) {
        snprintf(err, errlen, "fetching %.200s: %s", url, f.err);
        ret = f.failed;
    } else if (f.status != 200) {
        snprintf(err, errlen, "fetching %.200s: it answered HTTP %d", url, f.status);
        ret = f.status == 404 ? 404 : 400;
    }
done:
    if (conn) evhttp_connection_free(conn);
    if (f.base) event_base_free(f.base);
    if (u) evhttp_uri_free(u);
    return ret;
}

/* ---- a location on this server itself ---- */

/* Whether the socket address a (of a resolved location) reaches listener l: same port, and
 * l's own address, or any address of this machine when l listens on all of them (bind()
 * to it succeeds only for a local address). */
static int reaches(const struct sockaddr *a, const struct sockaddr_storage *l)
{
    if (a->sa_family == AF_INET && l->ss_family == AF_INET6) {     /* [::]:port takes IPv4 too */
        const struct sockaddr_in *x = (const void *)a;
        const struct sockaddr_in6 *y = (const void *)l;
        if (x->sin_port != y->sin6_port || !IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr)) return 0;
    } else if (a->sa_family != l->ss_family) {
        return 0;
    } else if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)l;
        if (x->sin_port != y->sin_port) return 0;
        if (y->sin_addr.s_addr != htonl(INADDR_ANY)) return x->sin_addr.s_addr == y->sin_addr.s_addr;
    } else if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)l;
        if (x->sin6_port != y->sin6_port) return 0;
        if (!IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr)) return !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr);
    } else {
        return 0;
    }
    struct sockaddr_storage probe;
    socklen_t len = a->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    memcpy(&probe, a, len);
    if (a->sa_family == AF_INET) ((struct sockaddr_in *)&probe)->sin_port = 0;
    else ((struct sockaddr_in6 *)&probe)->sin6_port = 0;
    int fd = socket(a->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int local = fd >= 0 && bind(fd, (struct sockaddr *)&probe, len) == 0;
    if (fd >= 0) close(fd);
    return local;
}

/* Whether host:port is one of this process's listening sockets (found in /proc/self/fd:
 * every worker's dup of both listeners), so that no route table or main.c needs to say. */
static int is_this_server(const char *host, int port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char svc[16];
    snprintf(svc, sizeof svc, "%d", port);
    if (getaddrinfo(host, svc, &hints, &res) != 0) return 0;
    int found = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (!found && d && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        int on = 0;
        socklen_t ol = sizeof on;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (*end || end == e->d_name || fd == dirfd(d) ||
            getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) != 0 || !on ||
            getsockname((int)fd, (struct sockaddr *)&ss, &sl) != 0)
            continue;
        for (struct addrinfo *a = res; a && !found; a = a->ai_next) found = reaches(a->ai_addr, &ss);
    }
    if (d) closedir(d);
    freeaddrinfo(res);
    return found;
}

/* An http:// location that is this server itself cannot be fetched: the fetch would wait
 * for a worker while holding one (with --threads 1, or as many such requests as workers,
 * the server stopped answering until the fetch timed out). Its snapshot download URLs,
 * /collections/{c}/snapshots/{file} and /snapshots/{file}, name files here: their path
 * goes into local. Returns 0 when url is not this server, 1 with local set, or an HTTP
 * status with err set. */
static int self_location(srv_req *r, const char *url, char *local, size_t len, char *err, size_t errlen)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    char bare[256], *dec = NULL, coll[256] = "", file[256] = "";
    const char *host = bare_host(u, bare, sizeof bare), *path = u ? evhttp_uri_get_path(u) : NULL;
    int port = u ? evhttp_uri_get_port(u) : -1, ret = 0, n = 0;
    if (!host || !host[0] || !is_this_server(host, port < 0 ? 80 : port)) goto done;
    ret = 400;
    snprintf(err, errlen, "location %.200s is this server: give one of its snapshot download URLs "
             "(.../snapshots/{file}) or a file:// location", url);
    if (!path || !(dec = evhttp_uridecode(path, 0, NULL))) goto done;
    if (sscanf(dec, "/collections/%255[^/]/snapshots/%255[^/]%n", coll, file, &n) == 2 && dec[n] == 0) {
        if (qv_coll_name_check(coll) != QV_OK) goto done;
    } else if (!(coll[0] = 0, n = 0, sscanf(dec, "/snapshots/%255[^/]%n", file, &n) == 1 && dec[n] == 0)) {
        goto done;
    }
    int rc = qv_backup_dir_path(r->ctx->snapshots_dir, coll[0] ? coll : NULL, file, local, len);
    if (rc == QV_EINVAL) snprintf(err, errlen, "snapshot path too long");
    if (rc == QV_OK) ret = 1;
done:
    free(dec);
    if (u) evhttp_uri_free(u);
    return ret;
}

/* PUT /collections/{name}/snapshots/recover, PUT /snapshots/recover (native):
 * {"location": url, "checksum": sha256|null, "priority": ..., "api_key": ...} */
typedef struct { api_jtext location, checksum, api_key; int priority; } recover_body;
static const char *const priorities[] = {"no_sync", "snapshot", "replica", NULL};
static const api_jfield recover_fields[] = {
    {"location", API_J_TEXT, offsetof(recover_body, location), .required = 1},
    {"checksum", API_J_TEXT, .off = offsetof(recover_body, checksum)},
    {"priority", API_J_NAME, offsetof(recover_body, priority), .arg = priorities},
    {"api_key", API_J_TEXT, .off = offsetof(recover_body, api_key)},
    {0}};

/* Whether real (a resolved path) is a snapshot file this caller may restore from: inside
 * the snapshots directory, and for a key or token limited to collections inside the
 * target collection's own directory (another collection's snapshot would hand it data
 * it may not read). */
static int may_restore_from(srv_req *r, const char *real)
{
    char root[PATH_MAX];
    if (srv_auth_limited(&r->auth) ? dir_of(r, root, sizeof root) != 0
                                   : (size_t)snprintf(root, sizeof root, "%s", r->ctx->snapshots_dir) >= sizeof root)
        return 0;
    size_t dl = strlen(root);
    return strncmp(real, root, dl) == 0 && real[dl] == '/';
}

void srv_h_snapshot_recover(srv_req *r)
{
    char path[PATH_MAX], real[PATH_MAX], err[512], url[2048], sumbuf[256], keybuf[512];
    uint64_t t0 = api_now_us();
    int fd = -1;
    recover_body b = {0};
    if (srv_read_body(r, "the body", recover_fields, &b) != 0) return;
    const char *sum = b.checksum.p ? sumbuf : NULL, *key = b.api_key.p ? keybuf : NULL;
    if (api_jstring(b.location, url, sizeof url) != 0)
        srv_bad(r, "'location' must be a string: file:///path or http://host:port/path");
    else if (sum && api_jstring(b.checksum, sumbuf, sizeof sumbuf) != 0)
        srv_bad(r, "'checksum' must be a string (a SHA-256: 64 hex digits) or null");
    else if (key && api_jstring(b.api_key, keybuf, sizeof keybuf) != 0)
        srv_bad(r, "'api_key' must be a string or null");
    else if (!strncmp(url, "file://", 7)) {
        /* inside the snapshots directory only, links resolved */
        if (!realpath(url + 7, real)) srv_fail(r, 404, "not_found", "%.200s: %s", url + 7, strerror(errno));
        else if (!may_restore_from(r, real))
            srv_fail(r, 403, "forbidden", "file locations must lie inside the snapshots directory %s%s",
                     r->ctx->snapshots_dir, srv_auth_limited(&r->auth) ? " (the collection's own, for this key)" : "");
        else restore_and_reply(r, real, NULL, sum, t0);
    } else if (!strncasecmp(url, "http://", 7)) {
        int status = self_location(r, url, real, sizeof real, err, sizeof err);
        struct stat st;
        if (status == 1 && (stat(real, &st) != 0 || !S_ISREG(st.st_mode)))
            srv_fail(r, 404, "not_found", "%.200s: no such snapshot on this server", url);
        else if (status == 1 && !may_restore_from(r, real))
            srv_fail(r, 403, "forbidden", "this key or token may restore only the collection's own snapshots");
        else if (status == 1) restore_and_reply(r, real, NULL, sum, t0);
        else if (status != 0) srv_bad(r, "%s", err);
        else if ((fd = temp_file(r, path, sizeof path)) < 0)
            srv_fail(r, errno == ENOSPC ? 507 : 500, "io_error", "cannot create a file in %s: %s",
                     r->ctx->snapshots_dir, strerror(errno));
        else if ((status = fetch_http(url, key, fd, err, sizeof err)) != 0)
            srv_fail(r, status, status == 507 ? "storage_full" : status == 503 ? "out_of_memory" :
                     status == 404 ? "not_found" : "fetch_failed", "%s", err);
        else restore_and_reply(r, path, "the download", sum, t0);
    } else {
        srv_bad(r, "location '%.200s': quiverd restores from file:// (inside its snapshots directory) and http:// "
                   "locations", url);
    }
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
}

/* The file part of a multipart/form-data body: the first part that has a filename (or,
 * without one, the first part). NULL when the body is not that. */
static const char *multipart_file(const char *ctype, const char *body, size_t len, size_t *flen)
{
    char delim[200];
    const char *bd = strcasestr(ctype, "boundary=");
    if (!bd) return NULL;
    bd += 9;
    size_t bl = strcspn(bd, "; ");
    if (*bd == '"') {
        bd++;
        bl = strcspn(bd, "\"");
    }
    if (bl == 0 || bl > 100) return NULL;
    int dl = snprintf(delim, sizeof delim, "--%.*s", (int)bl, bd);
    const char *first = NULL, *end = body + len;
    size_t first_len = 0;
    const char *p = memmem(body, len, delim, (size_t)dl);
    while (p) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') break;              /* the closing delimiter */
        const char *hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hdr_end) return NULL;
        const char *data = hdr_end + 4;
        char sep[204];
        int sl = snprintf(sep, sizeof sep, "\r\n%s", delim);
        const char *next = memmem(data, (size_t)(end - data), sep, (size_t)sl);
        if (!next) return NULL;
        size_t hl = (size_t)(hdr_end - p);
        int has_filename = memmem(p, hl, "filename=", 9) != NULL;
        if (has_filename) {
            *flen = (size_t)(next - data);
            return data;
        }
        if (!first) {
            first = data;
            first_len = (size_t)(next - data);
        }
        p = next + 2;
    }
    *flen = first_len;
    return first;
}

/* POST /collections/{name}/snapshots/upload[?checksum=..&priority=..]: the body is a
 * multipart/form-data form with the file (Qdrant's "snapshot" field), or the file itself. */
void srv_h_snapshot_upload(srv_req *r)
{
    char path[PATH_MAX];
    struct evkeyvalq q;                           /* the query; checksum points into it */
    uint64_t t0 = api_now_us();
    TAILQ_INIT(&q);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (query && evhttp_parse_query_str(query, &q) != 0) {     /* it clears q on failure */
        srv_bad(r, "malformed query string");
        return;
    }
    const char *checksum = evhttp_find_header(&q, "checksum");
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in), flen = 0;
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL, *data = NULL;
    int fd = -1;
    if (len && !body) srv_oom(r);
    else if (!len) srv_bad(r, "the upload is empty: send the snapshot file (multipart/form-data field \"snapshot\")");
    else if (ctype && !strncasecmp(ctype, "multipart/form-data", 19) &&
             !(data = multipart_file(ctype, body, len, &flen)))
        srv_bad(r, "malformed multipart/form-data body");
    else {
        if (!data) {                              /* not a form: the file itself */
            data = body;
            flen = len;
        }
        if ((fd = temp_file(r, path, sizeof path)) < 0 || write_all(fd, data, flen) != 0)
            srv_fail(r, errno == ENOSPC ? 507 : 500, errno == ENOSPC ? "storage_full" : "io_error",
                     "storing the upload in %s: %s", r->ctx->snapshots_dir, strerror(errno));
        else restore_and_reply(r, path, "the upload", checksum, t0);
    }
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    evhttp_clear_headers(&q);
}
