/*
 * python/text.c -- Collection.search_text and Collection.hybrid_search (issue 22): thin
 * wrappers of qv_text_search and qv_hybrid_search, hits as collection.c writes them.
 */
#include "python/pyquiver.h"

#include <string.h>

/* Payloads of the n hits (taken by pyq_hit_lists), then the Hit list. Inside the gate. */
static PyObject *hits_result(pyq_collection *self, const qv_hit *hits, size_t n, size_t k, int with_payload)
{
    uint64_t *ids = NULL;
    char **payloads = NULL;
    PyObject *result = NULL;
    int rc = QV_OK;
    if (with_payload && n) {
        ids = malloc(n * sizeof *ids);
        payloads = calloc(n, sizeof *payloads);
        if (!ids || !payloads) {
            PyErr_NoMemory();
            goto done;
        }
        for (size_t i = 0; i < n; i++) ids[i] = hits[i].id;
        Py_BEGIN_ALLOW_THREADS
        rc = qv_get_payloads(self->coll, n, ids, payloads);
        Py_END_ALLOW_THREADS
        if (rc != QV_OK) {
            pyq_raise(rc);
            goto done;
        }
    }
    result = pyq_hit_lists(hits, &n, 1, k, payloads, 1);
done:
    if (payloads)
        for (size_t i = 0; i < n; i++) qv_free(payloads[i]);
    free(payloads);
    free(ids);
    return result;
}

static int k_from(PyObject *obj, uint32_t *k)
{
    unsigned long long v = 10;
    if (obj && pyq_uint_arg(obj, "k", QV_MAX_K, &v) < 0) return -1;
    if (v < 1) {
        pyq_raise_fmt(QV_EINVAL, "k must be 1..%u, got 0", QV_MAX_K);
        return -1;
    }
    *k = (uint32_t)v;
    return 0;
}

PyObject *pyq_coll_search_text(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"query", "field", "k", "k1", "b", "filter", "with_payload", NULL};
    const char *query, *field;
    PyObject *k_obj = NULL, *filter = NULL, *result = NULL;
    double k1 = QV_BM25_K1, b = QV_BM25_B;
    int with_payload = 1, rc;
    qv_text_params tp;
    qv_filter *f = NULL;
    qv_hit *hits = NULL;
    size_t n = 0;
    uint32_t k;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|O$ddOp:search_text", kwlist, &query, &field, &k_obj, &k1, &b,
                                     &filter, &with_payload))
        return NULL;
    if (k_from(k_obj, &k) < 0) return NULL;
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_filter_from(filter, &f) < 0) goto done;
    if (!(hits = calloc(k, sizeof *hits))) {
        PyErr_NoMemory();
        goto done;
    }
    qv_text_params_init(&tp, k);
    tp.field = field;
    tp.query = query;
    tp.k1 = k1;
    tp.b = b;
    tp.filter = f;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_text_search(self->coll, &tp, hits, &n);
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) pyq_raise(rc);
    else result = hits_result(self, hits, n, k, with_payload);
done:
    free(hits);
    qv_filter_free(f);
    pyq_coll_leave(self);
    return result;
}

PyObject *pyq_coll_hybrid_search(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"vector", "text", "field", "k", "fusion", "alpha", "filter", "with_payload", "ef", NULL};
    const char *text, *field, *fusion = "rrf";
    PyObject *v_obj, *k_obj = NULL, *filter = NULL, *ef = NULL, *result = NULL;
    double alpha = 0.5;
    int with_payload = 1, rc;
    qv_search_params sp;
    qv_text_params tp;
    qv_fusion_params fp;
    qv_filter *f = NULL;
    pyq_matrix q = {0};
    qv_hit *hits = NULL;
    size_t n = 0;
    uint32_t k;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oss|O$sdOpO:hybrid_search", kwlist, &v_obj, &text, &field, &k_obj,
                                     &fusion, &alpha, &filter, &with_payload, &ef))
        return NULL;
    if (k_from(k_obj, &k) < 0 || pyq_search_params_from(NULL, &(pyq_search_knobs){.ef = ef}, &sp) < 0) return NULL;
    qv_fusion_kind kind = !strcmp(fusion, "rrf") ? QV_FUSION_RRF : !strcmp(fusion, "weighted") ? QV_FUSION_WEIGHTED : 0;
    if (!kind) return pyq_raise_fmt(QV_EINVAL, "fusion must be 'rrf' or 'weighted', got '%s'", fusion);
    if (!(alpha >= 0 && alpha <= 1)) return pyq_raise_fmt(QV_EINVAL, "alpha must be 0..1, got %g", alpha);
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_matrix_from(v_obj, self->dim, "vector", &q) < 0 || pyq_filter_from(filter, &f) < 0) goto done;
    if (q.n != 1 || !q.single) {
        pyq_raise_fmt(QV_EINVAL, "vector must be one vector of %u floats", self->dim);
        goto done;
    }
    if (!(hits = calloc(k, sizeof *hits))) {
        PyErr_NoMemory();
        goto done;
    }
    sp.k = k;
    sp.filter = f;
    qv_text_params_init(&tp, k);
    tp.field = field;
    tp.query = text;
    qv_fusion_params_init(&fp, kind, k);
    double w[2] = {alpha, 1 - alpha};
    Py_BEGIN_ALLOW_THREADS
    rc = qv_hybrid_search(self->coll, q.data, &sp, &tp, &fp, w, hits, &n);
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) pyq_raise(rc);
    else result = hits_result(self, hits, n, k, with_payload);
done:
    free(hits);
    qv_filter_free(f);
    pyq_matrix_release(&q);
    pyq_coll_leave(self);
    return result;
}

PyObject *pyq_tokenize(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"text", "language", "stopwords", NULL};
    const char *text, *language = NULL;
    int stopwords = 0, rc;
    qv_text_options o;
    char **tokens = NULL;
    size_t n = 0;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|$zp:tokenize", kwlist, &text, &language, &stopwords)) return NULL;
    qv_text_options_init(&o);
    if (language) o.language = language;
    o.stopwords = stopwords;
    if ((rc = qv_text_tokenize(text, &o, &tokens, &n)) != QV_OK) return pyq_raise(rc);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *s = PyUnicode_FromString(tokens[i]);
        if (!s) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, s);
    }
    qv_free_strings(tokens, n);
    return list;
}
