/*
 * python/arrays.c -- numpy in and out.
 *
 * Vectors: PyArray_FROM_OTF with NPY_ARRAY_IN_ARRAY returns the array itself (one more
 * reference, no copy) when it is already C-contiguous, aligned, native-order float32,
 * and otherwise a float32 copy made in one pass (from float64, a list, a strided view).
 * So Index.add(ids, x) with x float32 hands x's own buffer to qv_index_add, which copies
 * the rows into the index's storage: the only copy (python/tests/test_memory.py checks
 * it through the peak RSS).
 *
 * Ids: int64 and uint64 arrays are read in place as uint64 (an int64 below zero reads as
 * a value above QV_MAX_ID and is refused like one); other integer inputs are converted
 * to int64 once.
 *
 * Results: two arrays, ids as int64 (-1 for a missing hit, as Faiss does) and scores as
 * float32 (the worst possible score for a missing hit, so rows stay sorted).
 */
#include "pyquiver.h"

int pyq_matrix_from(PyObject *obj, size_t dim, const char *what, pyq_matrix *out)
{
    memset(out, 0, sizeof *out);
    if (PyArray_Check(obj) && PyArray_ISCOMPLEX((PyArrayObject *)obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be real numbers, got %R", what, (PyObject *)PyArray_DESCR((PyArrayObject *)obj));
        return -1;
    }
    /* FORCECAST: float64 -> float32 is what every caller of an embedding API wants. */
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OTF(obj, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!a) return -1;
    int nd = PyArray_NDIM(a);
    if (nd != 1 && nd != 2) {
        pyq_raise_fmt(QV_EINVAL, "%s must be one vector or a 2-D array of vectors, got %d dimensions", what, nd);
        Py_DECREF(a);
        return -1;
    }
    size_t n = nd == 1 ? 1 : (size_t)PyArray_DIM(a, 0);
    size_t cols = (size_t)PyArray_DIM(a, nd - 1);
    if (dim && cols != dim) {
        pyq_raise_fmt(QV_EDIM, "%s have dimension %zu, expected %zu", what, cols, dim);
        Py_DECREF(a);
        return -1;
    }
    out->arr = a;
    out->data = PyArray_DATA(a);
    out->n = cols ? n : 0;
    out->dim = cols;
    out->single = nd == 1;
    return 0;
}

void pyq_matrix_release(pyq_matrix *m)
{
    Py_CLEAR(m->arr);
}

static int check_range(const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] > QV_MAX_ID) {
            pyq_raise_fmt(QV_EINVAL, "ids[%zu] = %lld: ids must be 0..%llu", i, (long long)v[i],
                         (unsigned long long)QV_MAX_ID);
            return -1;
        }
    return 0;
}

/* An integer array in native order, C-contiguous and aligned, whose items are read as
 * uint64: 8-byte integers as they are, others converted to int64 once. */
static PyArrayObject *ids_array(PyObject *obj)
{
    PyArrayObject *in = (PyArrayObject *)PyArray_FROM_O(obj), *a = NULL;   /* no copy for arrays */
    if (!in) return NULL;
    if (PyArray_SIZE(in) > 0 && !PyArray_ISINTEGER(in)) {
        PyErr_Format(PyExc_TypeError, "ids must be integers, got %R", (PyObject *)PyArray_DESCR(in));
    } else if (PyArray_ITEMSIZE(in) == 8 && PyArray_ISINTEGER(in) && PyArray_ISNOTSWAPPED(in)) {
        a = (PyArrayObject *)PyArray_FROM_OF((PyObject *)in, NPY_ARRAY_IN_ARRAY);
    } else {
        a = (PyArrayObject *)PyArray_FROM_OTF((PyObject *)in, PyArray_ISUNSIGNED(in) ? NPY_UINT64 : NPY_INT64,
                                              NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);   /* checked above */
    }
    Py_DECREF(in);
    return a;
}

int pyq_ids_from(PyObject *obj, pyq_ids *out)
{
    memset(out, 0, sizeof *out);
    if (PyLong_Check(obj)) {
        unsigned long long v = PyLong_AsUnsignedLongLong(obj);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            pyq_raise_fmt(QV_EINVAL, "id %R: ids must be 0..%llu", obj, (unsigned long long)QV_MAX_ID);
            return -1;
        }
        out->one = v;
        out->data = &out->one;
        out->n = 1;
        out->scalar = 1;
        return check_range(out->data, 1);
    }
    PyArrayObject *a = ids_array(obj);
    if (!a) return -1;
    if (PyArray_NDIM(a) > 1) {
        pyq_raise_fmt(QV_EINVAL, "ids must be one id or a 1-D sequence, got %d dimensions", PyArray_NDIM(a));
        Py_DECREF(a);
        return -1;
    }
    out->arr = a;
    out->data = PyArray_DATA(a);
    out->n = (size_t)PyArray_SIZE(a);
    out->scalar = PyArray_NDIM(a) == 0;
    if (check_range(out->data, out->n) < 0) {
        pyq_ids_release(out);
        return -1;
    }
    return 0;
}

void pyq_ids_release(pyq_ids *ids)
{
    Py_CLEAR(ids->arr);
}

PyObject *pyq_hits_to_arrays(const qv_hit *hits, const size_t *n_hits, size_t nq, size_t k, int single,
                             float pad_score)
{
    npy_intp shape[2] = {(npy_intp)nq, (npy_intp)k};
    int nd = 2;
    if (single) {
        shape[0] = (npy_intp)n_hits[0];
        nd = 1;
    }
    PyArrayObject *ids = (PyArrayObject *)PyArray_SimpleNew(nd, shape, NPY_INT64);
    PyArrayObject *scores = (PyArrayObject *)PyArray_SimpleNew(nd, shape, NPY_FLOAT32);
    if (!ids || !scores) {
        Py_XDECREF(ids);
        Py_XDECREF(scores);
        return NULL;
    }
    int64_t *pi = PyArray_DATA(ids);
    float *ps = PyArray_DATA(scores);
    size_t width = single ? n_hits[0] : k;
    for (size_t q = 0; q < nq; q++) {
        const qv_hit *h = hits + q * k;
        size_t j = 0;
        for (; j < n_hits[q]; j++) {
            pi[q * width + j] = (int64_t)h[j].id;
            ps[q * width + j] = h[j].score;
        }
        for (; j < width; j++) {
            pi[q * width + j] = -1;
            ps[q * width + j] = pad_score;
        }
    }
    return Py_BuildValue("(NN)", ids, scores);
}

/* A capsule that frees a library buffer: the base object of arrays over qv_read_* data. */
static void free_capsule(PyObject *cap)
{
    qv_free(PyCapsule_GetPointer(cap, "quiver.buffer"));
}

PyObject *pyq_array_owning(void *buf, int ndim, npy_intp *shape, int typenum)
{
    PyObject *arr = NULL, *cap = NULL;
    if (!(cap = PyCapsule_New(buf ? buf : (void *)&cap, "quiver.buffer", buf ? free_capsule : NULL))) {
        qv_free(buf);
        return NULL;
    }
    if (!(arr = PyArray_SimpleNewFromData(ndim, shape, typenum, buf))) {
        Py_DECREF(cap);
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)arr, cap) < 0) {  /* steals cap, also on failure */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}
