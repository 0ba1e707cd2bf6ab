/*
 * python/index.c -- quiver.Index: the index level of the C API (qv_index_*), no storage.
 *
 *   ix = quiver.Index(128, "l2", kind="hnsw", m=16, ef_construction=200, threads=0, quant="sq8")
 *   ix.add(ids, vectors)                    # GIL released; vectors read in place if float32
 *   ids, scores = ix.search(queries, k=10, ef=64, filter=None, oversampling=None, rescore=None, explore=None)
 *   ix.remove(ids); ix.save(path); ix = quiver.Index.load(path); ix.close()
 *
 * search() of one 1-D query returns 1-D arrays of the hits found (at most k); of a 2-D
 * batch, (nq, k) arrays padded with id -1 and the worst score. A batch runs on the
 * index's worker threads (the threads= it was created with), one query runs on the
 * calling thread, so several Python threads searching at once run in parallel.
 * Every call enters the gate (gate.c) so that close() waits for the calls in flight.
 * The library lets any number of searches run beside one writer, but not two writers
 * (add, remove, train) at once on one index: write_mu serializes them, and save() too,
 * which reads the whole structure. It is taken with the GIL released.
 */
#include "pyquiver.h"

#include <stdlib.h>

typedef struct {
    PyObject_HEAD
    qv_index *ix;                  /* NULL once closed */
    pyq_gate gate;
    pthread_mutex_t write_mu;      /* add, remove, train, save: one at a time */
    qv_index_params p;             /* resolved (dim, metric, kind ...) */
} pyq_index;

#define ENTER(self)                                                       \
    do {                                                                  \
        if (pyq_gate_enter(&(self)->gate, "index") < 0) return NULL;      \
    } while (0)

static PyObject *index_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pyq_index *self = (pyq_index *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    pyq_gate_init(&self->gate);
    pthread_mutex_init(&self->write_mu, NULL);
    return (PyObject *)self;
}

/* Take over ix (from qv_index_new or qv_index_load). */
static void index_adopt(pyq_index *self, qv_index *ix)
{
    self->ix = ix;
    qv_index_get_params(ix, &self->p);
    self->p.progress = NULL;
    self->p.progress_arg = NULL;
}

/* Index(dim, metric, kind="hnsw", **knobs): dim, metric and kind are parsed here, the
 * knobs by name in params.c (shared with Database.create_collection). */
static int index_init(pyq_index *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"dim", "metric", "kind", NULL};
    PyObject *dim, *metric, *kind = NULL, *knobs = NULL, *named = NULL;
    qv_index_params p;
    qv_index *ix = NULL;
    int rc, ret = -1;

    if (self->ix) {
        PyErr_SetString(PyExc_RuntimeError, "Index.__init__ called twice");
        return -1;
    }
    if (!(knobs = kwds ? PyDict_Copy(kwds) : PyDict_New()) || !(named = PyDict_New())) goto cleanup;
    for (int i = 0; kwlist[i]; i++) {
        PyObject *v = PyDict_GetItemString(knobs, kwlist[i]);
        if (v && (PyDict_SetItemString(named, kwlist[i], v) < 0 || PyDict_DelItemString(knobs, kwlist[i]) < 0))
            goto cleanup;
    }
    if (!PyArg_ParseTupleAndKeywords(args, named, "OO|O:Index", kwlist, &dim, &metric, &kind)) goto cleanup;
    if (pyq_index_params_from(kind, dim, metric, knobs, &p) < 0) goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_index_new(&p, &ix);
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) {
        pyq_raise(rc);
        goto cleanup;
    }
    index_adopt(self, ix);
    ret = 0;
cleanup:
    Py_XDECREF(named);
    Py_XDECREF(knobs);
    return ret;
}

static void index_dealloc(pyq_index *self)
{
    qv_index_free(self->ix);   /* no call can be in flight: each holds a reference */
    pyq_gate_release(&self->gate);
    pthread_mutex_destroy(&self->write_mu);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *index_close(pyq_index *self, PyObject *unused)
{
    (void)unused;
    pyq_gate_close(&self->gate);
    qv_index_free(self->ix);
    self->ix = NULL;
    Py_RETURN_NONE;
}

static PyObject *index_enter(pyq_index *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *index_exit(pyq_index *self, PyObject *args)
{
    (void)args;
    return index_close(self, NULL);
}

/* add(ids, vectors): qv_index_add with the GIL released. */
static PyObject *index_add(pyq_index *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ids", "vectors", NULL};
    PyObject *ids_obj, *vec_obj;
    pyq_ids ids = {0};
    pyq_matrix x = {0};
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:add", kwlist, &ids_obj, &vec_obj)) return NULL;
    ENTER(self);
    if (pyq_ids_from(ids_obj, &ids) < 0 || pyq_matrix_from(vec_obj, self->p.dim, "vectors", &x) < 0) goto fail;
    if (ids.n != x.n) {
        pyq_raise_fmt(QV_EINVAL, "%zu ids for %zu vectors", ids.n, x.n);
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->write_mu);
    rc = qv_index_add(self->ix, x.n, ids.data, x.data);
    pthread_mutex_unlock(&self->write_mu);
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) {
        pyq_raise(rc);
        goto fail;
    }
    pyq_ids_release(&ids);
    pyq_matrix_release(&x);
    pyq_gate_leave(&self->gate);
    Py_RETURN_NONE;
fail:
    pyq_ids_release(&ids);
    pyq_matrix_release(&x);
    pyq_gate_leave(&self->gate);
    return NULL;
}

/* train(vectors): k-means for ivf; a no-op for flat and hnsw. */
static PyObject *index_train(pyq_index *self, PyObject *vec_obj)
{
    pyq_matrix x;
    int rc;
    ENTER(self);
    if (pyq_matrix_from(vec_obj, self->p.dim, "vectors", &x) < 0) {
        pyq_gate_leave(&self->gate);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->write_mu);
    rc = qv_index_train(self->ix, x.n, x.data);
    pthread_mutex_unlock(&self->write_mu);
    Py_END_ALLOW_THREADS
    pyq_matrix_release(&x);
    pyq_gate_leave(&self->gate);
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

static PyObject *index_search(pyq_index *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"queries", "k", "ef", "nprobe", "filter", "max_visits", "oversampling", "rescore",
                             "explore", NULL};
    PyObject *q_obj, *k = NULL, *filter = NULL, *result = NULL;
    pyq_search_knobs kn = {0};
    qv_search_params sp;
    pyq_matrix q = {0};
    pyq_id_filter f = {0};
    qv_hit one[QV_MAX_K], *hits = one;
    size_t one_n = 0, *n_hits = &one_n;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$OOOOOOO:search", kwlist, &q_obj, &k, &kn.ef, &kn.nprobe, &filter,
                                     &kn.max_visits, &kn.oversampling, &kn.rescore, &kn.explore))
        return NULL;
    if (pyq_search_params_from(k, &kn, &sp) < 0) return NULL;
    ENTER(self);
    if (pyq_matrix_from(q_obj, self->p.dim, "queries", &q) < 0 || pyq_id_filter_from(filter, &f, &sp) < 0) goto done;
    if (q.single) {
        Py_BEGIN_ALLOW_THREADS
        rc = qv_index_search(self->ix, q.data, &sp, hits, n_hits);
        Py_END_ALLOW_THREADS
    } else {
        hits = q.n ? malloc(q.n * sp.k * sizeof *hits) : one;
        n_hits = q.n ? malloc(q.n * sizeof *n_hits) : &one_n;
        if (!hits || !n_hits) {
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = qv_index_search_batch(self->ix, q.n, q.data, &sp, hits, n_hits);
        Py_END_ALLOW_THREADS
    }
    if (pyq_id_filter_finish(&f) < 0) goto done;
    if (rc != QV_OK) {
        pyq_raise(rc);
        goto done;
    }
    result = pyq_hits_to_arrays(hits, n_hits, q.n, sp.k, q.single, pyq_pad_score(self->p.metric));
done:
    if (hits != one) free(hits);
    if (n_hits != &one_n) free(n_hits);
    pyq_id_filter_release(&f);
    pyq_matrix_release(&q);
    pyq_gate_leave(&self->gate);
    return result;
}

static PyObject *index_remove(pyq_index *self, PyObject *ids_obj)
{
    pyq_ids ids;
    size_t removed = 0;
    int rc;
    ENTER(self);
    if (pyq_ids_from(ids_obj, &ids) < 0) {
        pyq_gate_leave(&self->gate);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->write_mu);
    rc = qv_index_remove(self->ix, ids.n, ids.data, &removed);
    pthread_mutex_unlock(&self->write_mu);
    Py_END_ALLOW_THREADS
    pyq_ids_release(&ids);
    pyq_gate_leave(&self->gate);
    if (rc != QV_OK) return pyq_raise(rc);
    return PyLong_FromSize_t(removed);
}

static PyObject *index_save(pyq_index *self, PyObject *path_obj)
{
    PyObject *path = NULL;
    int rc;
    if (!PyUnicode_FSConverter(path_obj, &path)) return NULL;
    if (pyq_gate_enter(&self->gate, "index") < 0) {
        Py_DECREF(path);
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->write_mu);
    rc = qv_index_save(self->ix, p);
    pthread_mutex_unlock(&self->write_mu);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    pyq_gate_leave(&self->gate);
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

/* Index.load(path): a classmethod. */
static PyObject *index_load(PyTypeObject *type, PyObject *path_obj)
{
    PyObject *path = NULL;
    qv_index *ix = NULL;
    int rc;
    if (!PyUnicode_FSConverter(path_obj, &path)) return NULL;
    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    rc = qv_index_load(p, &ix);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc != QV_OK) return pyq_raise(rc);
    pyq_index *self = (pyq_index *)index_new(type, NULL, NULL);
    if (!self) {
        qv_index_free(ix);
        return NULL;
    }
    index_adopt(self, ix);
    return (PyObject *)self;
}

static Py_ssize_t index_len(pyq_index *self)
{
    if (pyq_gate_enter(&self->gate, "index") < 0) return -1;
    size_t n = qv_index_size(self->ix);
    pyq_gate_leave(&self->gate);
    return (Py_ssize_t)n;
}

static PyObject *index_get_memory(pyq_index *self, void *closure)
{
    (void)closure;
    ENTER(self);
    size_t n = qv_index_memory(self->ix);
    pyq_gate_leave(&self->gate);
    return PyLong_FromSize_t(n);
}

static PyObject *index_get_dim(pyq_index *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->p.dim);
}

static PyObject *index_get_metric(pyq_index *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(qv_metric_name(self->p.metric));
}

static PyObject *index_get_kind(pyq_index *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(qv_index_kind_name(self->p.kind));
}

static PyObject *index_get_closed(pyq_index *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->ix == NULL);
}

/* The parameters in force, defaults resolved, as a dict. */
static PyObject *index_get_params(pyq_index *self, void *closure)
{
    (void)closure;
    const qv_index_params *p = &self->p;
    static const char *const gpu[] = {"off", "auto", "require"};
    const char *quant = qv_quant_name(p->quant), *vec_type = qv_vec_type_name(p->vec_type);
    return Py_BuildValue("{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:n,s:I,s:K,s:s,s:O,s:s,s:s}", "kind",
                         qv_index_kind_name(p->kind), "dim", p->dim, "metric", qv_metric_name(p->metric), "m", p->m,
                         "ef_construction", p->ef_construction, "ef_search", p->ef_search, "nlist", p->nlist,
                         "nprobe", p->nprobe, "kmeans_iters", p->kmeans_iters, "max_train_points",
                         (Py_ssize_t)p->max_train_points, "threads", p->threads, "seed",
                         (unsigned long long)p->seed, "gpu", (unsigned)p->gpu < 3 ? gpu[p->gpu] : "off",
                         "keep_pruned", (p->flags & QV_HNSW_KEEP_PRUNED) ? Py_True : Py_False, "quant",
                         quant ? quant : "?", "vec_type", vec_type ? vec_type : "?");
}

/* <quiver.Index hnsw dim=64 l2 sq8 u8, 2000 vectors>: the codes and the element type only
 * when they are not the defaults (none, f32). */
static PyObject *index_repr(pyq_index *self)
{
    const qv_index_params *p = &self->p;
    const char *quant = p->quant != QV_QUANT_NONE ? qv_quant_name(p->quant) : NULL;
    const char *vt = p->vec_type != QV_VEC_F32 ? qv_vec_type_name(p->vec_type) : NULL;
    PyObject *codes = PyUnicode_FromFormat("%s%s%s%s", quant ? " " : "", quant ? quant : "", vt ? " " : "",
                                           vt ? vt : "");
    if (!codes) return NULL;
    PyObject *r;
    if (!self->ix)
        r = PyUnicode_FromFormat("<quiver.Index %s dim=%u %s%U, closed>", qv_index_kind_name(p->kind), p->dim,
                                 qv_metric_name(p->metric), codes);
    else
        r = PyUnicode_FromFormat("<quiver.Index %s dim=%u %s%U, %zu vectors>", qv_index_kind_name(p->kind), p->dim,
                                 qv_metric_name(p->metric), codes, qv_index_size(self->ix));
    Py_DECREF(codes);
    return r;
}

static PyMethodDef index_methods[] = {
    {"add", (PyCFunction)(void (*)(void))index_add, METH_VARARGS | METH_KEYWORDS,
     "add(ids, vectors)\n--\n\nAdd n vectors (an (n, dim) array, or one vector) with their ids (0..2**63-1). "
     "An id already present is replaced. All or nothing. C-contiguous float32 input is read in place."},
    {"train", (PyCFunction)index_train, METH_O,
     "train(vectors)\n--\n\nTrain an ivf index (k-means) on sample vectors; a no-op for flat and hnsw."},
    {"search", (PyCFunction)(void (*)(void))index_search, METH_VARARGS | METH_KEYWORDS,
     "search(queries, k=10, *, ef=None, nprobe=None, filter=None, max_visits=None, oversampling=None, "
     "rescore=None, explore=None)\n--\n\n"
     "Nearest neighbours. One 1-D query: (ids, scores) of the hits found, best first. A 2-D batch: (nq, k) "
     "arrays, missing hits padded with id -1 and the worst score. filter: a bool mask indexed by id, the "
     "allowed ids, or a callable id -> bool (slow). Quantized indexes only (ignored otherwise): the codes rank "
     "the candidates, then the best ceil(k * oversampling) get exact float distances. oversampling: 1..100 "
     "(None or 0 = the code kind's default). rescore: None or True = re-score that many, False = return the "
     "codes' estimated scores, 'all' = re-score every candidate of the beam. explore: 0..4 (None or 0 = off), "
     "bit1 hnsw only: the walk also follows neighbours whose estimate minus explore x the 1-bit error bound "
     "could enter the beam, raising recall at a given ef (about 1 for recall ~0.99, 0.3-0.5 for ~0.95)."},
    {"remove", (PyCFunction)index_remove, METH_O, "remove(ids)\n--\n\nRemove ids (absent ones skipped); returns the number removed."},
    {"save", (PyCFunction)index_save, METH_O, "save(path)\n--\n\nWrite the index to a file (versioned, checksummed)."},
    {"load", (PyCFunction)index_load, METH_O | METH_CLASS, "load(path)\n--\n\nRead an index written by save()."},
    {"close", (PyCFunction)index_close, METH_NOARGS,
     "close()\n--\n\nFree the index, after waiting for calls in flight in other threads. Later calls raise StateError."},
    {"__enter__", (PyCFunction)index_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)index_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef index_getset[] = {
    {"dim", (getter)index_get_dim, NULL, "vector dimension", NULL},
    {"metric", (getter)index_get_metric, NULL, "'l2', 'ip' or 'cosine'", NULL},
    {"kind", (getter)index_get_kind, NULL, "'flat', 'hnsw' or 'ivf'", NULL},
    {"memory", (getter)index_get_memory, NULL, "bytes held by the index (qv_index_memory)", NULL},
    {"params", (getter)index_get_params, NULL, "the parameters in force, defaults resolved", NULL},
    {"closed", (getter)index_get_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods index_as_sequence = {
    .sq_length = (lenfunc)index_len,
};

PyTypeObject pyq_IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quiver.Index",
    .tp_basicsize = sizeof(pyq_index),
    .tp_dealloc = (destructor)index_dealloc,
    .tp_repr = (reprfunc)index_repr,
    .tp_as_sequence = &index_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Index(dim, metric, kind='hnsw', *, m=16, ef_construction=200, ef_search=64, nlist=0, nprobe=8,\n"
              "      kmeans_iters=20, max_train_points=0, threads=0, seed=..., gpu='off', keep_pruned=False,\n"
              "      quant='none', vec_type='f32')\n"
              "--\n\n"
              "An in-memory vector index without storage (flat, hnsw or ivf). metric: 'l2' (score = squared\n"
              "distance, ascending), 'ip' or 'cosine' (similarity, descending). threads: worker threads of add\n"
              "and batch search (0 = all cores). quant: the codes searched on, 'none' (float32), 'sq8', 'sq4'\n"
              "(scalar, 8 / 4 bits a dimension) or 'bit1' (1-bit RaBitQ); the float vectors are kept for\n"
              "re-scoring (search's oversampling and rescore). vec_type: 'f32', or 'u8' for data whose values\n"
              "are all integers 0..255 (a quarter of the memory, same distances; a quantized hnsw with l2 or ip\n"
              "only; other values raise InvalidArgumentError on add), or 'f16' (half floats, rounded on add: half\n"
              "the memory; a quantized hnsw). A context manager: close() on exit.",
    .tp_methods = index_methods,
    .tp_getset = index_getset,
    .tp_init = (initproc)index_init,
    .tp_new = index_new,
};
