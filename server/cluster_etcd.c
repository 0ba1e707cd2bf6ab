/*
 * server/cluster_etcd.c -- etcd v3 through its JSON gateway (/v3/kv/range, put, txn,
 * deleterange, /v3/lease/grant, keepalive): keys and values base64, 64-bit numbers as
 * decimal strings. A request goes to the endpoint that answered last and moves on to
 * the next one when that does not answer, so losing one member of the etcd cluster
 * costs one timeout.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cluster.h"

#define MAX_ENDPOINTS 16
/* etcd answers in milliseconds when idle, but a member syncing its raft log on a busy disk
 * has taken over 2 s here (3 members and 3 nodes on 2 cores): give each endpoint 5 s. */
#define ETCD_TIMEOUT_MS 5000

struct cl_etcd {
    char *url[MAX_ENDPOINTS];
    int n;
    atomic_int current;            /* the one that answered last */
};

cl_etcd *cl_etcd_new(const char *endpoints, char *err, size_t errlen)
{
    cl_etcd *e = calloc(1, sizeof *e);
    char *copy = endpoints ? strdup(endpoints) : NULL, *save = NULL;
    if (!e || !copy) {
        snprintf(err, errlen, "%s", endpoints ? "out of memory" : "no etcd endpoints");
        goto fail;
    }
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t l = strlen(t);
        while (l && t[l - 1] == '/') t[--l] = 0;
        if (strncmp(t, "http://", 7) != 0 || !strchr(t + 7, ':') || strchr(t + 7, '/')) {
            snprintf(err, errlen, "etcd endpoint '%s' is not http://host:port", t);
            goto fail;
        }
        if (e->n == MAX_ENDPOINTS) {
            snprintf(err, errlen, "at most %d etcd endpoints", MAX_ENDPOINTS);
            goto fail;
        }
        if (!(e->url[e->n++] = strdup(t))) goto fail;
    }
    if (!e->n) {
        snprintf(err, errlen, "no etcd endpoints in '%s'", endpoints);
        goto fail;
    }
    free(copy);
    return e;
fail:
    free(copy);
    cl_etcd_free(e);
    return NULL;
}

void cl_etcd_free(cl_etcd *e)
{
    if (!e) return;
    for (int i = 0; i < e->n; i++) free(e->url[i]);
    free(e);
}

/* POST req (stolen) to path on some endpoint; the parsed reply in *out. */
static int call(cl_etcd *e, const char *path, json_t *req, json_t **out, char *err, size_t errlen)
{
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    *out = NULL;
    if (!body) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int start = atomic_load(&e->current), rc = -1;
    for (int k = 0; k < e->n && rc != 0; k++) {
        int i = (start + k) % e->n;
        char url[512];
        cl_http_reply rep;
        snprintf(url, sizeof url, "%s%s", e->url[i], path);
        if (cl_http("POST", url, body, strlen(body), ETCD_TIMEOUT_MS, &rep, err, errlen) != 0) continue;
        json_error_t je;
        json_t *j = json_loadb(rep.body, rep.len, 0, &je);
        if (rep.status != 200 || !j) {
            json_t *m = j ? json_object_get(j, "error") : NULL;
            snprintf(err, errlen, "etcd %s: HTTP %d: %.200s", path, rep.status, json_is_string(m) ? json_string_value(m) : rep.body);
            json_decref(j);
            cl_http_reply_free(&rep);
            if (rep.status >= 400 && rep.status < 500) break;      /* our request's fault: same everywhere */
            continue;
        }
        cl_http_reply_free(&rep);
        /* the keepalive stream wraps its answer in "result" */
        json_t *res = json_object_get(j, "result");
        if (res) {
            json_incref(res);
            json_decref(j);
            j = res;
        }
        *out = j;
        atomic_store(&e->current, i);
        rc = 0;
    }
    free(body);
    return rc;
}

static int64_t num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : json_is_integer(v) ? json_integer_value(v) : 0;
}

static json_t *b64(const char *s)
{
    char *e = cl_b64_encode(s, strlen(s));
    json_t *j = e ? json_string(e) : NULL;
    free(e);
    return j;
}

/* The end of the range of keys that start with prefix: prefix with its last byte + 1. */
static char *prefix_end(const char *prefix)
{
    char *e = strdup(prefix);
    if (e && *e) e[strlen(e) - 1]++;
    return e;
}

int cl_etcd_range(cl_etcd *e, const char *prefix, cl_kv **kvs, size_t *n, int64_t *revision, char *err, size_t errlen)
{
    char *end = prefix_end(prefix);
    json_t *rep = NULL, *req = end ? json_pack("{s:o,s:o}", "key", b64(prefix), "range_end", b64(end)) : NULL;
    free(end);
    *kvs = NULL;
    *n = 0;
    if (call(e, "/v3/kv/range", req, &rep, err, errlen) != 0) return -1;
    json_t *arr = json_object_get(rep, "kvs");
    size_t cnt = json_array_size(arr);
    *revision = num(json_object_get(rep, "header"), "revision");
    if (cnt && !(*kvs = calloc(cnt, sizeof **kvs))) {
        json_decref(rep);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        json_t *kv = json_array_get(arr, i);
        const char *k = json_string_value(json_object_get(kv, "key")), *v = json_string_value(json_object_get(kv, "value"));
        size_t l;
        cl_kv *o = &(*kvs)[*n];
        o->key = k ? cl_b64_decode(k, &l) : NULL;
        o->value = cl_b64_decode(v ? v : "", &l);
        o->mod_revision = num(kv, "mod_revision");
        o->create_revision = num(kv, "create_revision");
        if (!o->key || !o->value) {
            free(o->key);
            free(o->value);
            continue;
        }
        (*n)++;
    }
    json_decref(rep);
    return 0;
}

void cl_kvs_free(cl_kv *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

static json_t *put_of(const char *key, const char *value, int64_t lease)
{
    json_t *p = json_pack("{s:o,s:o}", "key", b64(key), "value", b64(value));
    if (p && lease) {
        char l[32];
        snprintf(l, sizeof l, "%lld", (long long)lease);
        json_object_set_new(p, "lease", json_string(l));
    }
    return p;
}

int cl_etcd_put(cl_etcd *e, const char *key, const char *value, int64_t lease, char *err, size_t errlen)
{
    json_t *rep = NULL;
    if (call(e, "/v3/kv/put", put_of(key, value, lease), &rep, err, errlen) != 0) return -1;
    json_decref(rep);
    return 0;
}

int cl_etcd_delete(cl_etcd *e, const char *key, char *err, size_t errlen)
{
    json_t *rep = NULL;
    if (call(e, "/v3/kv/deleterange", json_pack("{s:o}", "key", b64(key)), &rep, err, errlen) != 0) return -1;
    json_decref(rep);
    return 0;
}

int cl_etcd_txn(cl_etcd *e, const cl_cmp *cmp, size_t ncmp, const cl_put *put, size_t nput, char *err, size_t errlen)
{
    json_t *c = json_array(), *s = json_array(), *rep = NULL;
    for (size_t i = 0; i < ncmp; i++) {
        char rev[32];
        snprintf(rev, sizeof rev, "%lld", (long long)cmp[i].mod_revision);
        json_array_append_new(c, json_pack("{s:o,s:s,s:s,s:s}", "key", b64(cmp[i].key), "target", "MOD", "result",
                                           "EQUAL", "mod_revision", rev));
    }
    for (size_t i = 0; i < nput; i++) {
        json_t *op = put[i].value ? json_pack("{s:o}", "request_put", put_of(put[i].key, put[i].value, put[i].lease))
                                  : json_pack("{s:{s:o}}", "request_delete_range", "key", b64(put[i].key));
        json_array_append_new(s, op);
    }
    json_t *req = c && s ? json_pack("{s:o,s:o}", "compare", c, "success", s) : NULL;
    if (!req) {
        json_decref(c);
        json_decref(s);
    }
    if (call(e, "/v3/kv/txn", req, &rep, err, errlen) != 0) return -1;
    int ok = json_is_true(json_object_get(rep, "succeeded"));
    json_decref(rep);
    return ok;
}

int cl_etcd_lease_grant(cl_etcd *e, int ttl_s, int64_t *id, char *err, size_t errlen)
{
    json_t *rep = NULL;
    if (call(e, "/v3/lease/grant", json_pack("{s:i}", "TTL", ttl_s), &rep, err, errlen) != 0) return -1;
    *id = num(rep, "ID");
    json_decref(rep);
    if (!*id) {
        snprintf(err, errlen, "etcd granted no lease");
        return -1;
    }
    return 0;
}

int cl_etcd_lease_keepalive(cl_etcd *e, int64_t id, char *err, size_t errlen)
{
    char l[32];
    json_t *rep = NULL;
    snprintf(l, sizeof l, "%lld", (long long)id);
    if (call(e, "/v3/lease/keepalive", json_pack("{s:s}", "ID", l), &rep, err, errlen) != 0) return -1;
    int64_t ttl = num(rep, "TTL");
    json_decref(rep);
    return ttl > 0 ? 0 : 1;
}
