/*
 * server/dashboard.c -- GET /dashboard: the web dashboard, a single page of plain HTML,
 * CSS and JS from server/dashboard/, built into the binary (server/dashboard/embed.sh
 * writes the table at make time), so quiverd serves it air-gapped with no files beside it.
 *
 * The page needs no key: it holds no data. Everything it shows comes from the public API,
 * called from the browser with the key the user typed (kept in sessionStorage).
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "server/server.h"

/* The file a path names: "/dashboard" and "/dashboard/" are index.html. */
static const srv_asset *asset_of(const char *path)
{
    const char *name = path + strlen("/dashboard");
    if (*name == '/') name++;
    if (!*name) name = "index.html";
    for (const srv_asset *a = srv_dashboard_assets; a->name; a++)
        if (strcmp(a->name, name) == 0) return a;
    return NULL;
}

void srv_h_dashboard(srv_req *r)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const srv_asset *a = path && strncmp(path, "/dashboard", 10) == 0 ? asset_of(path) : NULL;
    if (!a) {
        srv_fail(r, 404, "not_found", "no such dashboard file");
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body || evbuffer_add_reference(body, a->data, a->len, NULL, NULL) != 0) {
        if (body) evbuffer_free(body);
        srv_oom(r);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    /* the page runs only its own files and talks only to this server; payloads are
     * shown as text, and this keeps any that slipped through from running */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
                      "base-uri 'none'; form-action 'none'");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    srv_reply_buf(r, 200, a->type, body);
    evbuffer_free(body);
}
