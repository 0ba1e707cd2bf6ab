/*
 * python/collection.c -- quiver.Collection: durable points with payloads (qv_coll), and the
 * records it returns, quiver.Hit(id, score, payload) and quiver.Point(id, vector, payload).
 *
 *   docs.upsert(ids, vectors, payloads=[{"lang": "en"}, None, ...])   # one transaction
 *   docs.search(query, k=5, filter={"must": [{"key": "lang", "match": "en"}]})
 *       -> [Hit(id=7, score=0.93, payload={...}), ...]   (a list of such lists for a matrix)
 *   docs.get(7), docs.delete([7, 8]), docs.scroll(filter, start, limit), docs.count(filter)
 *   docs.index_field("lang", "keyword")
 *
 * Payloads are dicts, stored as JSON text; filters are dicts in the JSON form of
 * include/quiver.h ("must", "must_not", "should"), or that JSON as a str. A search reads
 * the payloads of all its hits in one transaction (qv_get_payloads). Every call enters the
 * database's gate (database.c) and checks that the handle is still there: a collection
 * whose database was closed, or which was dropped or closed, raises StateError.
 */
#include "pyquiver.h"

#include <stdlib.h>

PyTypeObject *pyq_HitType;
PyTypeObject *pyq_PointType;

static PyStructSequence_Field hit_fields[] = {
    {"id", "point id"},
    {"score", "l2: squared distance (ascending); ip, cosine: similarity (descending)"},
    {"payload", "the payload dict, or None (no payload, or with_payload=False)"},
    {NULL, NULL},
};
static PyStructSequence_Desc hit_desc = {"quiver.Hit", "One search result.", hit_fields, 3};

static PyStructSequence_Field point_fields[] = {
    {"id", "point id"},
    {"vector", "the stored vector (float32 array; normalized for cosine)"},
    {"payload", "the payload dict, or None"},
    {NULL, NULL},
};
static PyStructSequence_Desc point_desc = {"quiver.Point", "A stored point.", point_fields, 3};

int pyq_records_init(PyObject *m)
{
    if (!(pyq_HitType = PyStructSequence_NewType(&hit_desc))) return -1;
    if (!(pyq_PointType = PyStructSequence_NewType(&point_desc))) return -1;
    if (PyModule_AddObjectRef(m, "Hit", (PyObject *)pyq_HitType) < 0) return -1;
    return PyModule_AddObjectRef(m, "Point", (PyObject *)pyq_PointType);
}

PyObject *pyq_collection_new(pyq_database *db, qv_coll *c, PyObject *name)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(c, &info);
    if (rc != QV_OK) {
        qv_collection_close(c);
        return pyq_raise(rc);
    }
    pyq_collection *self = PyObject_New(pyq_collection, &pyq_CollectionType);
    if (!self) {
        qv_collection_close(c);
        return NULL;
    }
    self->owner = (pyq_database *)Py_NewRef(db);
    self->coll = c;
    self->gone = NULL;
    self->name = Py_NewRef(name);
    self->dim = info.config.index.dim;
    self->metric = info.config.index.metric;
    self->prev = NULL;
    self->next = db->colls;
    if (db->colls) db->colls->prev = self;
    db->colls = self;
    return (PyObject *)self;
}

static void unlink_self(pyq_collection *self)
{
    if (self->prev) self->prev->next = self->next;
    else if (self->owner->colls == self) self->owner->colls = self->next;
    if (self->next) self->next->prev = self->prev;
    self->prev = self->next = NULL;
}

static void coll_dealloc(pyq_collection *self)
{
    /* No call is in flight on self (each holds a reference); the db is open if coll is set. */
    if (self->coll) qv_collection_close(self->coll);
    unlink_self(self);
    Py_DECREF(self->owner);
    Py_DECREF(self->name);
    PyObject_Free(self);
}

int pyq_coll_enter(pyq_collection *self)
{
    if (pyq_gate_enter(&self->owner->gate, "database") < 0) return -1;
    if (!self->coll) {
        pyq_gate_leave(&self->owner->gate);
        pyq_raise_fmt(QV_ESTATE, "collection %R is %s", self->name, self->gone ? self->gone : "closed");
        return -1;
    }
    return 0;
}

void pyq_coll_leave(pyq_collection *self)
{
    pyq_gate_leave(&self->owner->gate);
}

static PyObject *coll_close(pyq_collection *self, PyObject *unused)
{
    (void)unused;
    if (!self->coll) Py_RETURN_NONE;
    pyq_gate_drain(&self->owner->gate);    /* calls on this handle in other threads finish */
    if (self->coll) {
        qv_collection_close(self->coll);
        self->coll = NULL;
        self->gone = "closed";
    }
    pyq_gate_open(&self->owner->gate);
    Py_RETURN_NONE;
}

static PyObject *coll_enter(pyq_collection *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *coll_exit(pyq_collection *self, PyObject *args)
{
    (void)args;
    return coll_close(self, NULL);
}

/* ---- writes -------------------------------------------------------------------------- */

/* payloads (None or a sequence of n dicts/None) -> n JSON strs (kept alive in *keep) and
 * their UTF-8 texts. */
static int payload_texts(PyObject *payloads, size_t n, PyObject **keep, const char ***texts)
{
    *keep = NULL;
    *texts = NULL;
    if (!payloads || payloads == Py_None) return 0;
    if (PyDict_Check(payloads) && n == 1) {    /* upsert(7, v, payloads={...}) */
        PyObject *one = PyTuple_Pack(1, payloads);
        if (!one) return -1;
        int rc = payload_texts(one, n, keep, texts);
        Py_DECREF(one);
        return rc;
    }
    PyObject *seq = PySequence_Fast(payloads, "payloads must be a sequence of dicts (or None)");
    if (!seq) return -1;
    if ((size_t)PySequence_Fast_GET_SIZE(seq) != n) {
        pyq_raise_fmt(QV_EINVAL, "%zd payloads for %zu points", PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return -1;
    }
    PyObject *strs = PyList_New((Py_ssize_t)n);
    const char **t = calloc(n ? n : 1, sizeof *t);
    if (!strs || !t) goto fail;
    for (size_t i = 0; i < n; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i), *s;
        char what[48];
        if (p == Py_None) {
            PyList_SET_ITEM(strs, (Py_ssize_t)i, Py_NewRef(Py_None));
            continue;
        }
        snprintf(what, sizeof what, "payloads[%zu]", i);
        if (!(s = pyq_json_dumps(p, what))) goto fail;
        PyList_SET_ITEM(strs, (Py_ssize_t)i, s);
        if (!(t[i] = PyUnicode_AsUTF8(s))) goto fail;
    }
    Py_DECREF(seq);
    *keep = strs;
    *texts = t;
    return 0;
fail:
    if (!strs || !t) PyErr_NoMemory();
    Py_XDECREF(strs);
    free(t);
    Py_DECREF(seq);
    return -1;
}

static PyObject *coll_upsert(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ids", "vectors", "payloads", NULL};
    PyObject *ids_obj, *vec_obj, *payloads = NULL, *keep = NULL, *result = NULL;
    const char **texts = NULL;
    pyq_ids ids = {0};
    pyq_matrix x = {0};
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:upsert", kwlist, &ids_obj, &vec_obj, &payloads)) return NULL;
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_ids_from(ids_obj, &ids) < 0 || pyq_matrix_from(vec_obj, self->dim, "vectors", &x) < 0) goto done;
    if (ids.n != x.n) {
        pyq_raise_fmt(QV_EINVAL, "%zu ids for %zu vectors", ids.n, x.n);
        goto done;
    }
    if (payload_texts(payloads, ids.n, &keep, &texts) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_upsert(self->coll, x.n, ids.data, x.data, texts);
    Py_END_ALLOW_THREADS
    result = rc == QV_OK ? Py_NewRef(Py_None) : pyq_raise(rc);
done:
    free(texts);
    Py_XDECREF(keep);
    pyq_ids_release(&ids);
    pyq_matrix_release(&x);
    pyq_coll_leave(self);
    return result;
}

static PyObject *coll_delete(pyq_collection *self, PyObject *ids_obj)
{
    pyq_ids ids;
    size_t deleted = 0;
    int rc;
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_ids_from(ids_obj, &ids) < 0) {
        pyq_coll_leave(self);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = qv_delete(self->coll, ids.n, ids.data, &deleted);
    Py_END_ALLOW_THREADS
    pyq_ids_release(&ids);
    pyq_coll_leave(self);
    if (rc != QV_OK) return pyq_raise(rc);
    return PyLong_FromSize_t(deleted);
}

/* ---- reads --------------------------------------------------------------------------- */

/* A payload text from the library (or NULL) as a dict (or None); frees text. */
static PyObject *payload_object(char *text)
{
    if (!text) return Py_NewRef(Py_None);
    PyObject *v = pyq_json_loads(text);
    qv_free(text);
    return v;
}

/* Hits of nq queries as Hit lists; payloads[i] (taken, may be NULL) belongs to the i-th hit
 * in row order. single: the list of the one query, not a list of lists. */
PyObject *pyq_hit_lists(const qv_hit *hits, const size_t *n_hits, size_t nq, size_t k, char **payloads, int single)
{
    PyObject *outer = PyList_New((Py_ssize_t)nq);
    size_t p = 0;
    for (size_t q = 0; outer && q < nq; q++) {
        PyObject *row = PyList_New((Py_ssize_t)n_hits[q]);
        if (!row) {
            Py_CLEAR(outer);
            break;
        }
        PyList_SET_ITEM(outer, (Py_ssize_t)q, row);
        for (size_t j = 0; j < n_hits[q]; j++) {
            const qv_hit *h = &hits[q * k + j];
            PyObject *hit = PyStructSequence_New(pyq_HitType), *id, *score, *payload;
            char *text = payloads ? payloads[p] : NULL;
            if (payloads) payloads[p++] = NULL;
            id = PyLong_FromUnsignedLongLong(h->id);
            score = PyFloat_FromDouble(h->score);
            payload = payload_object(text);
            if (!hit || !id || !score || !payload) {
                Py_XDECREF(hit);
                Py_XDECREF(id);
                Py_XDECREF(score);
                Py_XDECREF(payload);
                Py_CLEAR(outer);
                break;
            }
            PyStructSequence_SET_ITEM(hit, 0, id);
            PyStructSequence_SET_ITEM(hit, 1, score);
            PyStructSequence_SET_ITEM(hit, 2, payload);
            PyList_SET_ITEM(row, (Py_ssize_t)j, hit);
        }
    }
    if (outer && single) {
        PyObject *row = Py_NewRef(PyList_GET_ITEM(outer, 0));
        Py_DECREF(outer);
        return row;
    }
    return outer;
}

static PyObject *coll_search(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"query", "k", "filter", "with_payload", "ef", "nprobe", "max_visits", "oversampling",
                             "rescore", "explore", NULL};
    PyObject *q_obj, *k = NULL, *filter = NULL, *result = NULL;
    pyq_search_knobs kn = {0};
    int with_payload = 1, rc;
    qv_search_params sp;
    qv_filter *f = NULL;
    pyq_matrix q = {0};
    qv_hit *hits = NULL;
    size_t *n_hits = NULL, total = 0;
    uint64_t *ids = NULL;
    char **payloads = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$OpOOOOOO:search", kwlist, &q_obj, &k, &filter, &with_payload,
                                     &kn.ef, &kn.nprobe, &kn.max_visits, &kn.oversampling, &kn.rescore, &kn.explore))
        return NULL;
    if (pyq_search_params_from(k, &kn, &sp) < 0) return NULL;
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_matrix_from(q_obj, self->dim, "queries", &q) < 0 || pyq_filter_from(filter, &f) < 0) goto done;
    sp.filter = f;
    hits = malloc((q.n ? q.n : 1) * sp.k * sizeof *hits);
    n_hits = calloc(q.n ? q.n : 1, sizeof *n_hits);
    if (!hits || !n_hits) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = q.n ? qv_search_ex(self->coll, q.n, q.data, &sp, hits, n_hits, NULL) : QV_OK;
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) {
        pyq_raise(rc);
        goto done;
    }
    for (size_t i = 0; i < q.n; i++) total += n_hits[i];
    if (with_payload && total) {
        ids = malloc(total * sizeof *ids);
        payloads = calloc(total, sizeof *payloads);
        if (!ids || !payloads) {
            PyErr_NoMemory();
            goto done;
        }
        for (size_t i = 0, t = 0; i < q.n; i++)
            for (size_t j = 0; j < n_hits[i]; j++) ids[t++] = hits[i * sp.k + j].id;
        Py_BEGIN_ALLOW_THREADS
        rc = qv_get_payloads(self->coll, total, ids, payloads);
        Py_END_ALLOW_THREADS
        if (rc != QV_OK) {
            pyq_raise(rc);
            goto done;
        }
    }
    result = pyq_hit_lists(hits, n_hits, q.n, sp.k, payloads, q.single);
done:
    if (payloads)
        for (size_t i = 0; i < total; i++) qv_free(payloads[i]);
    free(payloads);
    free(ids);
    free(hits);
    free(n_hits);
    qv_filter_free(f);
    pyq_matrix_release(&q);
    pyq_coll_leave(self);
    return result;
}

/* One point as a Point, or None when absent. Called inside a gate entry. */
static PyObject *get_one(pyq_collection *self, uint64_t id, int with_vector)
{
    npy_intp dim = (npy_intp)self->dim;
    PyObject *vec = NULL, *point = NULL, *payload = NULL;
    char *text = NULL;
    int rc;
    if (with_vector && !(vec = PyArray_SimpleNew(1, &dim, NPY_FLOAT32))) return NULL;
    float *out = vec ? PyArray_DATA((PyArrayObject *)vec) : NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_get(self->coll, id, out, &text);
    Py_END_ALLOW_THREADS
    if (rc == QV_ENOTFOUND) {
        Py_XDECREF(vec);
        Py_RETURN_NONE;
    }
    if (rc != QV_OK) {
        Py_XDECREF(vec);
        return pyq_raise(rc);
    }
    if (!(payload = payload_object(text)) || !(point = PyStructSequence_New(pyq_PointType))) {
        Py_XDECREF(payload);
        Py_XDECREF(vec);
        return NULL;
    }
    PyObject *pid = PyLong_FromUnsignedLongLong(id);
    if (!pid) {
        Py_DECREF(point);
        Py_DECREF(payload);
        Py_XDECREF(vec);
        return NULL;
    }
    PyStructSequence_SET_ITEM(point, 0, pid);
    PyStructSequence_SET_ITEM(point, 1, vec ? vec : Py_NewRef(Py_None));
    PyStructSequence_SET_ITEM(point, 2, payload);
    return point;
}

/* get(id) -> Point or None; get([ids]) -> [Point or None, ...] */
static PyObject *coll_get(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ids", "with_vector", NULL};
    PyObject *ids_obj, *result = NULL;
    int with_vector = 1;
    pyq_ids ids = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$p:get", kwlist, &ids_obj, &with_vector)) return NULL;
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_ids_from(ids_obj, &ids) < 0) goto done;
    if (ids.scalar) {
        result = get_one(self, ids.data[0], with_vector);
        goto done;
    }
    if (!(result = PyList_New((Py_ssize_t)ids.n))) goto done;
    for (size_t i = 0; i < ids.n; i++) {
        PyObject *p = get_one(self, ids.data[i], with_vector);
        if (!p) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)i, p);
    }
done:
    pyq_ids_release(&ids);
    pyq_coll_leave(self);
    return result;
}

/* scroll(filter=None, start=0, limit=100) -> (ids, next_start or None) */
static PyObject *coll_scroll(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"filter", "start", "limit", NULL};
    PyObject *filter = NULL, *start_obj = NULL, *result = NULL;
    unsigned long long start = 0;
    Py_ssize_t limit = 100;
    qv_filter *f = NULL;
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOn:scroll", kwlist, &filter, &start_obj, &limit) ||
        pyq_uint_arg(start_obj, "start", QV_MAX_ID, &start) < 0)
        return NULL;
    if (limit < 1) return pyq_raise_fmt(QV_EINVAL, "limit must be >= 1, got %zd", limit);
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_filter_from(filter, &f) < 0) goto done;
    /* One more than asked: the first id not returned is where the next page starts. */
    if (!(ids = malloc(((size_t)limit + 1) * sizeof *ids))) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = qv_scroll(self->coll, f, NULL, NULL, (uint64_t)start, (size_t)limit + 1, ids, &n, NULL);
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) {
        pyq_raise(rc);
        goto done;
    }
    PyObject *next = n > (size_t)limit ? PyLong_FromUnsignedLongLong(ids[limit]) : Py_NewRef(Py_None);
    npy_intp len = (npy_intp)(n > (size_t)limit ? (size_t)limit : n);
    PyObject *arr = next ? PyArray_SimpleNew(1, &len, NPY_INT64) : NULL;
    if (arr) memcpy(PyArray_DATA((PyArrayObject *)arr), ids, (size_t)len * sizeof *ids);
    if (arr && next) {
        result = Py_BuildValue("(NN)", arr, next);
    } else {
        Py_XDECREF(arr);
        Py_XDECREF(next);
    }
done:
    free(ids);
    qv_filter_free(f);
    pyq_coll_leave(self);
    return result;
}

/* count(filter=None) -> number of live points passing the filter */
static PyObject *coll_count(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"filter", NULL};
    PyObject *filter = NULL, *result = NULL;
    qv_filter *f = NULL;
    uint64_t total = 0;
    size_t n = 0;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:count", kwlist, &filter)) return NULL;
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_filter_from(filter, &f) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_scroll(self->coll, f, NULL, NULL, 0, 0, NULL, &n, &total);
    Py_END_ALLOW_THREADS
    result = rc == QV_OK ? PyLong_FromUnsignedLongLong(total) : pyq_raise(rc);
done:
    qv_filter_free(f);
    pyq_coll_leave(self);
    return result;
}

static Py_ssize_t coll_len(pyq_collection *self)
{
    qv_collection_info info;
    if (pyq_coll_enter(self) < 0) return -1;
    int rc = qv_collection_get_info(self->coll, &info);
    pyq_coll_leave(self);
    if (rc != QV_OK) {
        pyq_raise(rc);
        return -1;
    }
    return (Py_ssize_t)info.count;
}

/* ---- maintenance --------------------------------------------------------------------- */

static PyObject *coll_index_field(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"field", "type", NULL};
    const char *field, *type = "keyword";
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|s:index_field", kwlist, &field, &type)) return NULL;
    if (pyq_coll_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_collection_index_field(self->coll, field, type, NULL, NULL);
    Py_END_ALLOW_THREADS
    pyq_coll_leave(self);
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

/* update(*, m=None, ef_construction=None, ef_search=None, quant=None): None keeps a value. */
static PyObject *coll_update(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"m", "ef_construction", "ef_search", "quant", NULL};
    PyObject *m = Py_None, *efc = Py_None, *efs = Py_None;
    const char *quant = NULL;
    qv_collection_changes ch = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOOz:update", kwlist, &m, &efc, &efs, &quant)) return NULL;
    PyObject *const given[3] = {m, efc, efs};
    uint32_t *const to[3] = {&ch.m, &ch.ef_construction, &ch.ef_search};
    for (int i = 0; i < 3; i++) {
        if (given[i] == Py_None) continue;
        unsigned long v = PyLong_AsUnsignedLong(given[i]);
        if (v == (unsigned long)-1 && PyErr_Occurred()) return NULL;
        if (v == 0 || v > UINT32_MAX) {
            PyErr_Format(PyExc_ValueError, "%s must be positive (None keeps it), got %lu", kwlist[i], v);
            return NULL;
        }
        *to[i] = (uint32_t)v;
    }
    if (quant) {
        if ((rc = qv_quant_parse(quant, &ch.quant)) != QV_OK) return pyq_raise(rc);
        ch.set_quant = 1;
    }
    if (pyq_coll_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_collection_update(self->coll, &ch);
    Py_END_ALLOW_THREADS
    pyq_coll_leave(self);
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

static PyObject *coll_unindex_field(pyq_collection *self, PyObject *args)
{
    const char *field;
    int rc;
    if (!PyArg_ParseTuple(args, "s:unindex_field", &field)) return NULL;
    if (pyq_coll_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_collection_unindex_field(self->coll, field);
    Py_END_ALLOW_THREADS
    pyq_coll_leave(self);
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

/* checkpoint() and train(): no arguments, the GIL released. */
static PyObject *coll_simple(pyq_collection *self, int which)
{
    int rc;
    if (pyq_coll_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = which ? qv_collection_train(self->coll, NULL, NULL) : qv_checkpoint(self->coll);
    Py_END_ALLOW_THREADS
    pyq_coll_leave(self);
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

static PyObject *coll_checkpoint(pyq_collection *self, PyObject *unused)
{
    (void)unused;
    return coll_simple(self, 0);
}

static PyObject *coll_train(pyq_collection *self, PyObject *unused)
{
    (void)unused;
    return coll_simple(self, 1);
}

/* info: name, dim, metric, kind, quant, index params, payload_index, count, memory_bytes, last_seq */
static PyObject *coll_get_info(pyq_collection *self, void *closure)
{
    qv_collection_info info;
    PyObject *pindex = NULL, *result = NULL;
    (void)closure;
    if (pyq_coll_enter(self) < 0) return NULL;
    int rc = qv_collection_get_info(self->coll, &info);
    if (rc != QV_OK) {
        pyq_raise(rc);
        goto done;
    }
    const qv_index_params *p = &info.config.index;
    pindex = info.config.payload_index ? pyq_json_loads(info.config.payload_index) : PyDict_New();
    if (!pindex) goto done;
    const char *quant = qv_quant_name(p->quant);
    result = Py_BuildValue("{s:s,s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:O,s:n,s:n,s:K}", "name", info.name, "dim",
                           p->dim, "metric", qv_metric_name(p->metric), "kind", qv_index_kind_name(p->kind), "quant",
                           quant ? quant : "?", "m", p->m,
                           "ef_construction", p->ef_construction, "ef_search", p->ef_search, "nlist", p->nlist,
                           "nprobe", p->nprobe, "payload_index", pindex, "count", (Py_ssize_t)info.count,
                           "memory_bytes", (Py_ssize_t)info.memory_bytes, "last_seq",
                           (unsigned long long)info.last_seq);
done:
    Py_XDECREF(pindex);
    pyq_coll_leave(self);
    return result;
}

static PyObject *coll_get_name(pyq_collection *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->name);
}

static PyObject *coll_get_dim(pyq_collection *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->dim);
}

static PyObject *coll_get_metric(pyq_collection *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(qv_metric_name(self->metric));
}

static PyObject *coll_get_closed(pyq_collection *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->coll == NULL);
}

static PyObject *coll_repr(pyq_collection *self)
{
    return PyUnicode_FromFormat("<quiver.Collection %R dim=%u %s%s%s>", self->name, self->dim,
                                qv_metric_name(self->metric), self->coll ? "" : ", ",
                                self->coll ? "" : (self->gone ? self->gone : "closed"));
}

static PyMethodDef coll_methods[] = {
    {"upsert", (PyCFunction)(void (*)(void))coll_upsert, METH_VARARGS | METH_KEYWORDS,
     "upsert(ids, vectors, payloads=None)\n--\n\nInsert or replace points in one transaction (all or none). "
     "payloads: one dict (or None) per point. Durable when it returns."},
    {"search", (PyCFunction)(void (*)(void))coll_search, METH_VARARGS | METH_KEYWORDS,
     "search(query, k=10, *, filter=None, with_payload=True, ef=None, nprobe=None, max_visits=None, "
     "oversampling=None, rescore=None, explore=None)\n--\n\n"
     "Nearest points as a list of Hit(id, score, payload), best first; for a 2-D array of queries, one such "
     "list per query. filter: a dict ({'must': [{'key': 'lang', 'match': 'en'}], ...}) or its JSON text. "
     "oversampling, rescore, explore: as in Index.search (quantized collections only)."},
    {"search_text", (PyCFunction)(void (*)(void))pyq_coll_search_text, METH_VARARGS | METH_KEYWORDS,
     "search_text(query, field, k=10, *, k1=1.2, b=0.75, filter=None, with_payload=True)\n--\n\n"
     "BM25 top-k (SQLite FTS5's formula) over a payload field indexed as 'text': a list of Hit, best first."},
    {"hybrid_search", (PyCFunction)(void (*)(void))pyq_coll_hybrid_search, METH_VARARGS | METH_KEYWORDS,
     "hybrid_search(vector, text, field, k=10, *, fusion='rrf', alpha=0.5, filter=None, with_payload=True, ef=None)\n--\n\n"
     "A vector search and a BM25 search of text, with the same filter, fused by 'rrf' (Reciprocal Rank Fusion) "
     "or 'weighted' (alpha * normalised vector score + (1 - alpha) * normalised BM25 score)."},
    {"get", (PyCFunction)(void (*)(void))coll_get, METH_VARARGS | METH_KEYWORDS,
     "get(ids, *, with_vector=True)\n--\n\nPoint(id, vector, payload) of one id, or None when absent; for a "
     "sequence of ids, a list of those."},
    {"delete", (PyCFunction)coll_delete, METH_O,
     "delete(ids)\n--\n\nDelete points (absent ones skipped) in one transaction; returns the number deleted."},
    {"scroll", (PyCFunction)(void (*)(void))coll_scroll, METH_VARARGS | METH_KEYWORDS,
     "scroll(filter=None, start=0, limit=100)\n--\n\nIds of the points passing filter, ascending from start: "
     "(ids array, next start or None)."},
    {"count", (PyCFunction)(void (*)(void))coll_count, METH_VARARGS | METH_KEYWORDS,
     "count(filter=None)\n--\n\nNumber of points passing filter (all points without one)."},
    {"set_payload", (PyCFunction)pyq_coll_set_payload, METH_VARARGS,
     "set_payload(ids, payload)\n--\n\nMerge the keys of payload (a dict) into the payloads of points ids (one "
     "transaction; NotFoundError for a missing id). Vectors are not touched. Returns the number updated."},
    {"overwrite_payload", (PyCFunction)pyq_coll_overwrite_payload, METH_VARARGS,
     "overwrite_payload(ids, payload)\n--\n\nReplace the whole payload of points ids with payload."},
    {"delete_payload_keys", (PyCFunction)pyq_coll_delete_payload_keys, METH_VARARGS,
     "delete_payload_keys(ids, keys)\n--\n\nRemove keys (absent ones ignored) from the payloads of points ids."},
    {"clear_payload", (PyCFunction)pyq_coll_clear_payload, METH_O,
     "clear_payload(ids)\n--\n\nRemove every key from the payloads of points ids."},
    {"update_payload", (PyCFunction)(void (*)(void))pyq_coll_update_payload, METH_VARARGS | METH_KEYWORDS,
     "update_payload(ids, *, merge=None, remove=(), clear=False, keep=(), skip_missing=False)\n--\n\n"
     "The general payload update: clear every key but keep, then remove keys, then merge a dict; "
     "skip_missing skips absent ids instead of failing. Returns the number of points updated."},
    {"index_field", (PyCFunction)(void (*)(void))coll_index_field, METH_VARARGS | METH_KEYWORDS,
     "index_field(field, type='keyword')\n--\n\nIndex a payload field for filters: 'keyword', 'integer', "
     "'float' or 'bool'."},
    {"update", (PyCFunction)(void (*)(void))coll_update, METH_VARARGS | METH_KEYWORDS,
     "update(*, m=None, ef_construction=None, ef_search=None, quant=None)\n--\n\n"
     "New HNSW parameters and/or codes ('sq8', 'sq4', 'bit1'; 'none' drops them; None keeps each): stored, "
     "and the index rebuilt with them from the stored vectors before it returns (searches go on over the old "
     "index meanwhile)."},
    {"unindex_field", (PyCFunction)coll_unindex_field, METH_VARARGS,
     "unindex_field(field)\n--\n\nRemove a field from the payload index."},
    {"checkpoint", (PyCFunction)coll_checkpoint, METH_NOARGS,
     "checkpoint()\n--\n\nWrite an index snapshot covering all writes so far (faster reopening)."},
    {"train", (PyCFunction)coll_train, METH_NOARGS, "train()\n--\n\nTrain an ivf collection now on its points."},
    {"close", (PyCFunction)coll_close, METH_NOARGS,
     "close()\n--\n\nGive the handle back. Later calls raise StateError; the database stays open."},
    {"__enter__", (PyCFunction)coll_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)coll_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef coll_getset[] = {
    {"name", (getter)coll_get_name, NULL, "collection name", NULL},
    {"dim", (getter)coll_get_dim, NULL, "vector dimension", NULL},
    {"metric", (getter)coll_get_metric, NULL, "'l2', 'ip' or 'cosine'", NULL},
    {"info", (getter)coll_get_info, NULL, "configuration and statistics as a dict", NULL},
    {"closed", (getter)coll_get_closed, NULL, "True once closed, dropped, or its database closed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods coll_as_sequence = {
    .sq_length = (lenfunc)coll_len,
};

PyTypeObject pyq_CollectionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quiver.Collection",
    .tp_basicsize = sizeof(pyq_collection),
    .tp_dealloc = (destructor)coll_dealloc,
    .tp_repr = (reprfunc)coll_repr,
    .tp_as_sequence = &coll_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A collection of a Database (Database.create_collection / collection). A context manager: "
              "close() on exit.",
    .tp_methods = coll_methods,
    .tp_getset = coll_getset,
};
