/*
 * server/aliases.c -- collection aliases on both APIs, over qv_alias_* (storage/alias.c).
 *
 *   POST /collections/aliases (Qdrant), POST /aliases (native)
 *        {"actions":[{"create_alias":{"collection_name","alias_name"}},
 *                    {"delete_alias":{"alias_name"}},
 *                    {"rename_alias":{"old_alias_name","new_alias_name"}}]}
 *        applied in one transaction (all or none); 404 for an unknown collection or
 *        alias, 409 when an alias would take a collection's name.
 *   GET /aliases, GET /collections/{name}/aliases (both APIs)
 *        {"aliases":[{"alias_name","collection_name"}]} (inside Qdrant's envelope).
 *
 * The pipeline resolves an alias in a request's path before anything else (srv_alias_path)
 * so that access is judged, and the handler runs, on the collection itself. A request
 * that resolved an alias whose collection is dropped before it opens or uses it (the old
 * collection of a re-index, dropped right after the switch) is run again on what the
 * alias names then (srv_alias_retry): a stream of searches through an alias never sees
 * "collection not found" while the alias moves.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define MAX_ACTIONS 1024

typedef struct {
    int op;                        /* qv_alias_op, 0 until one is read */
    int nops;                      /* operations named in the action object (1 allowed) */
    char alias[72], target[72];
} alias_act;

typedef struct {
    alias_act *a;
    size_t n;
} alias_body;

static int read_name(api_jread *rd, void *dst)
{
    size_t len = 0;
    int rc = api_jread_string(rd, dst, 72, &len);
    if (rc) return rc;
    if (len > 64 || len != strlen(dst) || qv_coll_name_check(dst) != QV_OK)
        return api_jbad(rd, 0, "invalid_argument", "'%s': names are 1..64 characters of [A-Za-z0-9_.-], not starting with '.'",
                        rd->path);
    return 0;
}

#define A(field) offsetof(alias_act, field)
static const api_jfield create_fields[] = {
    {"collection_name", API_J_CALL, A(target), .read = read_name, .required = 1},
    {"alias_name", API_J_CALL, A(alias), .read = read_name, .required = 1},
    {0},
};
static const api_jfield delete_fields[] = {
    {"alias_name", API_J_CALL, A(alias), .read = read_name, .required = 1},
    {0},
};
static const api_jfield rename_fields[] = {
    {"old_alias_name", API_J_CALL, A(alias), .read = read_name, .required = 1},
    {"new_alias_name", API_J_CALL, A(target), .read = read_name, .required = 1},
    {0},
};

static int read_op(api_jread *rd, alias_act *a, int op, const api_jfield *fields)
{
    a->op = op;
    a->nops++;
    return api_jread_object(rd, fields, a);
}
static int read_create(api_jread *rd, void *a) { return read_op(rd, a, QV_ALIAS_CREATE, create_fields); }
static int read_delete(api_jread *rd, void *a) { return read_op(rd, a, QV_ALIAS_DELETE, delete_fields); }
static int read_rename(api_jread *rd, void *a) { return read_op(rd, a, QV_ALIAS_RENAME, rename_fields); }

static const api_jfield action_fields[] = {
    {"create_alias", API_J_CALL, .read = read_create},
    {"delete_alias", API_J_CALL, .read = read_delete},
    {"rename_alias", API_J_CALL, .read = read_rename},
    {0},
};

static int read_action(api_jread *rd, size_t i, void *arg)
{
    alias_body *b = arg;
    if (i >= MAX_ACTIONS) return api_jbad(rd, 1, "invalid_argument", "at most %d alias actions in one request", MAX_ACTIONS);
    alias_act *a = &b->a[i];
    memset(a, 0, sizeof *a);
    b->n = i + 1;
    int rc = api_jread_object(rd, action_fields, a);
    if (rc == 0 && a->nops != 1)
        return api_jbad(rd, 0, "invalid_argument", "'%s' must hold one of create_alias, delete_alias, rename_alias", rd->path);
    return rc;
}

static int read_actions(api_jread *rd, void *dst)
{
    return api_jread_array(rd, read_action, dst);
}

static const api_jfield update_fields[] = {
    {"actions", API_J_CALL, .read = read_actions, .required = 1},
    {0},
};

void srv_h_alias_update(srv_req *r)
{
    alias_body b = {0};
    qv_alias_action *acts = NULL;
    int rc;
    /* an alias can point at any collection: a credential limited to some may not move one */
    if (srv_auth_limited(&r->auth)) {
        srv_fail(r, 403, "forbidden", "a key or token limited to collections cannot change aliases");
        return;
    }
    if (!(b.a = calloc(MAX_ACTIONS, sizeof *b.a))) {
        srv_oom(r);
        return;
    }
    if (srv_read_body(r, "the alias actions", update_fields, &b) != 0) goto done;
    if (!(acts = calloc(b.n ? b.n : 1, sizeof *acts))) {
        srv_oom(r);
        goto done;
    }
    for (size_t i = 0; i < b.n; i++)
        acts[i] = (qv_alias_action){(qv_alias_op)b.a[i].op, b.a[i].alias, b.a[i].op == QV_ALIAS_DELETE ? NULL : b.a[i].target};
    if ((rc = qv_alias_update(r->ctx->db, b.n, acts)) != QV_OK) {
        srv_fail_qv(r, rc);
        goto done;
    }
    srv_log(SRV_LOG_INFO, "applied %zu alias actions", b.n);
    srv_reply_ok(r, 200, json_pack("{s:I}", "applied", (json_int_t)b.n), json_true());
done:
    free(acts);
    free(b.a);
}

void srv_h_alias_list(srv_req *r)
{
    qv_alias_info *a = NULL;
    qv_collection_info info;
    size_t n = 0;
    int rc = r->coll ? qv_collection_get_info(r->coll->coll, &info) : QV_OK;
    if (rc == QV_OK) rc = qv_alias_list(r->ctx->db, r->coll ? info.name : NULL, &a, &n);
    if (rc != QV_OK) {
        srv_fail_qv(r, rc);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (srv_may_see(r, a[i].collection))
            json_array_append_new(arr, json_pack("{s:s,s:s}", "alias_name", a[i].alias, "collection_name", a[i].collection));
    qv_free(a);
    json_t *out = arr ? json_pack("{s:o}", "aliases", arr) : NULL;
    srv_reply_ok(r, 200, out, json_incref(out));          /* the same body on both APIs */
}

/* ---- the pipeline's side ---------------------------------------------------------- */

/* Routes whose {name} is an existing collection's: create, drop and restore name the
 * collection itself (an alias there is a name clash or a 404, as in Qdrant). */
static int takes_alias(const srv_req *r)
{
    return r->name && r->route && r->ep != SRV_EP_CREATE && r->ep != SRV_EP_DROP && r->ep != SRV_EP_RESTORE;
}

void srv_alias_path(srv_req *r)
{
    if (!takes_alias(r) || qv_coll_name_check(r->name) != QV_OK) return;
    const char *name = r->alias ? r->alias : r->name;
    /* not found or failed: the name stays, and opening it answers for both */
    if (qv_alias_resolve(r->ctx->db, name, r->resolved, sizeof r->resolved) != QV_OK) return;
    if (strcmp(r->resolved, name) == 0) return;
    r->alias = name;
    r->name = r->resolved;
}

int srv_alias_retry(srv_req *r, int rc)
{
    qv_collection_info info;
    if (rc != QV_ENOTFOUND || !r->alias || r->retries >= 3) return 0;
    /* the handle the request holds is the dropped collection's (not some other 404) */
    if (r->coll && qv_collection_get_info(r->coll->coll, &info) != QV_ENOTFOUND) return 0;
    r->retries++;
    return 1;
}
