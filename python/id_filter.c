/*
 * python/id_filter.c -- the filter= of Index.search: which ids a search may return.
 *
 * Three forms, cheapest first:
 *   - a 1-D bool array `mask`: id passes iff id < len(mask) and mask[id]. Read in place
 *     through qv_search_params.accept (nothing is built per call).
 *   - integers (array or sequence): the allowed ids. Turned into the library's allow_bits
 *     bitset when that is small (at most 1 MiB, or 16 bytes per allowed id), otherwise a
 *     sorted copy searched by bisection in an accept callback (ids can be up to 2^63 - 1).
 *   - a callable f(id) -> bool. It runs on the library's search threads, each call taking
 *     the GIL: correct but slow (about a microsecond per candidate, and the threads take
 *     turns); prefer an array for anything hot. An exception in f stops its calls (later
 *     candidates are rejected) and is raised when the search returns.
 */
#include "pyquiver.h"

#include <stdlib.h>

#define BITSET_MAX_BYTES (1u << 20)

static int accept_mask(uint64_t id, void *arg)
{
    const pyq_id_filter *f = arg;
    return id < f->mask_len && f->mask[id];
}

static int accept_sorted(uint64_t id, void *arg)
{
    const pyq_id_filter *f = arg;
    size_t lo = 0, hi = f->nsorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->sorted[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < f->nsorted && f->sorted[lo] == id;
}

static int accept_callable(uint64_t id, void *arg)
{
    pyq_id_filter *f = arg;
    int keep = 0;
    PyGILState_STATE st = PyGILState_Ensure();
    if (!f->exc_type) {
        PyObject *r = PyObject_CallFunction(f->fn, "K", (unsigned long long)id);
        keep = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        if (keep < 0) {
            PyErr_Fetch(&f->exc_type, &f->exc_value, &f->exc_tb);
            keep = 0;
        }
    }
    PyGILState_Release(st);
    return keep;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int from_ids(PyObject *obj, pyq_id_filter *f, qv_search_params *sp)
{
    pyq_ids ids;
    uint64_t max = 0;
    if (pyq_ids_from(obj, &ids) < 0) return -1;
    for (size_t i = 0; i < ids.n; i++)
        if (ids.data[i] > max) max = ids.data[i];
    uint64_t words = max / 64 + 1;
    if (words * 8 <= BITSET_MAX_BYTES || words * 8 <= 16 * (uint64_t)ids.n) {
        if (!(f->bits = calloc(words, sizeof *f->bits))) goto nomem;
        for (size_t i = 0; i < ids.n; i++) f->bits[ids.data[i] / 64] |= 1ull << (ids.data[i] % 64);
        sp->allow_bits = f->bits;
        sp->allow_nbits = max + 1;            /* no ids: one clear bit, nothing passes */
    } else {
        if (!(f->sorted = malloc(ids.n * sizeof *f->sorted))) goto nomem;
        memcpy(f->sorted, ids.data, ids.n * sizeof *f->sorted);
        qsort(f->sorted, ids.n, sizeof *f->sorted, cmp_u64);
        f->nsorted = ids.n;
        sp->accept = accept_sorted;
        sp->accept_arg = f;
    }
    pyq_ids_release(&ids);
    return 0;
nomem:
    pyq_ids_release(&ids);
    PyErr_NoMemory();
    return -1;
}

int pyq_id_filter_from(PyObject *obj, pyq_id_filter *f, qv_search_params *sp)
{
    memset(f, 0, sizeof *f);
    if (!obj || obj == Py_None) return 0;
    if (PyCallable_Check(obj)) {
        f->fn = Py_NewRef(obj);
        sp->accept = accept_callable;
        sp->accept_arg = f;
        return 0;
    }
    if (PyArray_Check(obj) && PyArray_ISBOOL((PyArrayObject *)obj)) {
        PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OTF(obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY);
        if (!a) return -1;
        if (PyArray_NDIM(a) != 1) {
            pyq_raise_fmt(QV_EINVAL, "a filter mask must be a 1-D bool array indexed by id");
            Py_DECREF(a);
            return -1;
        }
        f->mask_arr = a;
        f->mask = PyArray_DATA(a);
        f->mask_len = (uint64_t)PyArray_DIM(a, 0);
        sp->accept = accept_mask;
        sp->accept_arg = f;
        return 0;
    }
    return from_ids(obj, f, sp);
}

int pyq_id_filter_finish(pyq_id_filter *f)
{
    if (!f->exc_type) return 0;
    PyErr_Restore(f->exc_type, f->exc_value, f->exc_tb);
    f->exc_type = f->exc_value = f->exc_tb = NULL;
    return -1;
}

void pyq_id_filter_release(pyq_id_filter *f)
{
    Py_CLEAR(f->fn);
    Py_CLEAR(f->mask_arr);
    Py_CLEAR(f->exc_type);
    Py_CLEAR(f->exc_value);
    Py_CLEAR(f->exc_tb);
    free(f->bits);
    free(f->sorted);
    f->bits = f->sorted = NULL;
}
