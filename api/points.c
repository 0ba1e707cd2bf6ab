/*
 * api/points.c -- points as requests carry them: growing lists (of searches, ids,
 * points and their vectors together), and the reader of {"id","vector","payload"}.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

void *api_grow(void *items, size_t size, size_t *n, size_t *cap, size_t i, float **vecs, uint32_t dim)
{
    char *p;
    memcpy(&p, items, sizeof p);                   /* items is the address of a T * */
    if (i >= *cap) {
        size_t c = *cap ? 2 * *cap : 1;            /* a single search allocates one */
        while (c <= i) c *= 2;
        float *v = vecs ? realloc(*vecs, c * (dim ? dim : 1) * sizeof *v) : NULL;
        if (v) *vecs = v;
        char *np = v || !vecs ? realloc(p, c * size) : NULL;
        if (!np) return NULL;
        memset(np + *cap * size, 0, (c - *cap) * size);
        memcpy(items, &np, sizeof np);
        p = np;
        *cap = c;
    }
    if (*n <= i) *n = i + 1;
    return p + i * size;
}

int api_parse_id(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    uint64_t x = 0;
    if (n == 0 || n > 20) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

int api_ids_add(api_ids *l, uint64_t id)
{
    uint64_t *v = api_grow(&l->v, sizeof *l->v, &l->n, &l->cap, l->n, NULL, 0);
    if (v) *v = id;
    return v ? 0 : -1;
}

int api_points_grow(api_points *p, size_t i)
{
    size_t n = p->n;                               /* payloads first: p->n counts both */
    if (!api_grow(&p->payloads, sizeof *p->payloads, &n, &p->pcap, i, NULL, 0)) return -1;
    return api_grow(&p->ids, sizeof *p->ids, &p->n, &p->cap, i, &p->vecs, p->dim) ? 0 : -1;
}

void api_points_release(api_points *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->payloads[i]);
    free(p->payloads);
    free(p->vecs);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

typedef struct { uint64_t id; float *vec; api_jtext payload; } one_point;
#define NO_ID UINT64_MAX                           /* outside the range of ids */
#define P(field) offsetof(one_point, field)
static const api_jfield point_fields[] = {
    {"id", API_J_U64, P(id), 0, INT64_MAX, .required = 0},   /* the reader of a body requires it */
    {"vector", API_J_VECTOR, P(vec), .required = 1},
    {"payload", API_J_OBJTEXT, .off = P(payload)},
    {0},
};

int api_jread_point(api_jread *rd, size_t i, void *points)
{
    api_points *pts = points;
    if (api_points_grow(pts, i)) return api_jbad(rd, 1, "out_of_memory", "out of memory");
    one_point p = {.id = NO_ID, .vec = pts->vecs + i * pts->dim};
    int rc = api_jread_object(rd, point_fields, &p);
    if (rc == 0 && p.id == NO_ID) return api_jbad(rd, 0, "invalid_argument", "%s: missing 'id'", api_jwhere(rd));
    pts->ids[i] = p.id;
    if (rc == 0 && p.payload.p && !(pts->payloads[i] = strndup(p.payload.p, p.payload.len)))
        return api_jbad(rd, 0, "out_of_memory", "out of memory");
    return rc;
}

int api_parse_point(const char *text, size_t len, uint32_t dim, uint64_t *id, float *vec, char **payload, api_jerr *e)
{
    api_jread rd = {.dim = dim, .name = "the point"};
    one_point p = {.id = NO_ID, .vec = vec};
    *payload = NULL;
    if (api_jparse(&rd, text, len, point_fields, &p, e)) return -1;
    if (p.id != NO_ID) *id = p.id;
    if (p.payload.p && !(*payload = strndup(p.payload.p, p.payload.len)))
        return api_jfail(e, "out_of_memory", "out of memory");
    return 0;
}

int api_jread_points(api_jread *rd, void *points)
{
    return api_jread_array(rd, api_jread_point, points);
}


static int read_id(api_jread *rd, size_t i, void *ids)
{
    uint64_t id;
    int rc = api_jread_uint(rd, 0, INT64_MAX, &id);
    (void)i;
    if (rc == 0 && api_ids_add(ids, id)) return api_jbad(rd, 0, "out_of_memory", "out of memory");
    return rc;
}

int api_jread_ids(api_jread *rd, void *ids)
{
    return api_jread_array(rd, read_id, ids);
}
