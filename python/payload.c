/*
 * python/payload.c -- payload-only updates of a Collection (qv_update_payload), without
 * touching vectors or the vector index:
 *
 *   docs.set_payload([7, 8], {"lang": "de"})          # merge these keys
 *   docs.overwrite_payload(7, {"title": "new"})       # replace the whole payload
 *   docs.delete_payload_keys([7], ["draft"])
 *   docs.clear_payload([7, 8])
 *   docs.update_payload(ids, merge={...}, remove=[...], clear=False, keep=[...],
 *                       skip_missing=False)           # the general form; returns the count
 *
 * Each call is one transaction: a missing id fails it with NotFoundError and nothing
 * changed, unless skip_missing=True (for ids chosen by a filter, which a concurrent delete
 * may have removed). The four shorthands are update_payload with one field set, as the
 * library's qv_set_payload family is.
 */
#include "pyquiver.h"

#include <stdlib.h>

/* A sequence of str -> n UTF-8 pointers (valid while *keep lives). None = none. */
static int str_list(PyObject *obj, const char *what, PyObject **keep, const char ***out, size_t *n)
{
    *keep = NULL;
    *out = NULL;
    *n = 0;
    if (!obj || obj == Py_None) return 0;
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a sequence of str, not one str", what);
        return -1;
    }
    PyObject *seq = PySequence_Fast(obj, "keys must be a sequence of str");
    if (!seq) return -1;
    size_t len = (size_t)PySequence_Fast_GET_SIZE(seq);
    const char **v = calloc(len ? len : 1, sizeof *v);
    if (!v) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        PyObject *s = PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i);
        if (!PyUnicode_Check(s)) {
            PyErr_Format(PyExc_TypeError, "%s[%zu] must be a str, got %.100s", what, i, Py_TYPE(s)->tp_name);
            goto fail;
        }
        if (!(v[i] = PyUnicode_AsUTF8(s))) goto fail;
    }
    *keep = seq;
    *out = v;
    *n = len;
    return 0;
fail:
    free(v);
    Py_DECREF(seq);
    return -1;
}

/* Apply u (keys borrowed from Python objects held by the caller) to the points ids_obj. */
static PyObject *apply(pyq_collection *self, PyObject *ids_obj, const qv_payload_update *u)
{
    pyq_ids ids;
    size_t updated = 0;
    int rc;
    if (pyq_coll_enter(self) < 0) return NULL;
    if (pyq_ids_from(ids_obj, &ids) < 0) {
        pyq_coll_leave(self);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = qv_update_payload(self->coll, ids.n, ids.data, u, &updated);
    Py_END_ALLOW_THREADS
    pyq_ids_release(&ids);
    pyq_coll_leave(self);
    if (rc != QV_OK) return pyq_raise(rc);
    return PyLong_FromSize_t(updated);
}

PyObject *pyq_coll_update_payload(pyq_collection *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ids", "merge", "remove", "clear", "keep", "skip_missing", NULL};
    PyObject *ids, *merge = NULL, *remove = NULL, *keep = NULL, *merge_json = NULL, *remove_keep = NULL,
             *keep_keep = NULL, *result = NULL;
    int clear = 0, skip_missing = 0;
    const char **remove_v = NULL, **keep_v = NULL;
    qv_payload_update u;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOpOp:update_payload", kwlist, &ids, &merge, &remove, &clear,
                                     &keep, &skip_missing))
        return NULL;
    qv_payload_update_init(&u);
    u.clear = clear;
    u.flags = skip_missing ? QV_PAYLOAD_SKIP_MISSING : 0u;
    if (merge && merge != Py_None) {
        if (!(merge_json = pyq_json_dumps(merge, "merge")) || !(u.merge = PyUnicode_AsUTF8(merge_json))) goto done;
    }
    if (str_list(remove, "remove", &remove_keep, &remove_v, &u.nremove) < 0 ||
        str_list(keep, "keep", &keep_keep, &keep_v, &u.nkeep) < 0)
        goto done;
    u.remove = remove_v;
    u.keep = keep_v;
    result = apply(self, ids, &u);
done:
    free(remove_v);
    free(keep_v);
    Py_XDECREF(remove_keep);
    Py_XDECREF(keep_keep);
    Py_XDECREF(merge_json);
    return result;
}

/* set_payload / overwrite_payload(ids, payload): merge, or clear then merge. */
static PyObject *put(pyq_collection *self, PyObject *args, int overwrite)
{
    PyObject *ids, *payload, *json, *result = NULL;
    qv_payload_update u;
    if (!PyArg_ParseTuple(args, overwrite ? "OO:overwrite_payload" : "OO:set_payload", &ids, &payload)) return NULL;
    if (!(json = pyq_json_dumps(payload, "payload"))) return NULL;
    qv_payload_update_init(&u);
    u.clear = overwrite;
    if ((u.merge = PyUnicode_AsUTF8(json))) result = apply(self, ids, &u);
    Py_DECREF(json);
    return result;
}

PyObject *pyq_coll_set_payload(pyq_collection *self, PyObject *args)
{
    return put(self, args, 0);
}

PyObject *pyq_coll_overwrite_payload(pyq_collection *self, PyObject *args)
{
    return put(self, args, 1);
}

PyObject *pyq_coll_delete_payload_keys(pyq_collection *self, PyObject *args)
{
    PyObject *ids, *keys, *keep = NULL, *result = NULL;
    const char **v = NULL;
    qv_payload_update u;
    if (!PyArg_ParseTuple(args, "OO:delete_payload_keys", &ids, &keys)) return NULL;
    qv_payload_update_init(&u);
    if (str_list(keys, "keys", &keep, &v, &u.nremove) < 0) return NULL;
    u.remove = v;
    result = apply(self, ids, &u);
    free(v);
    Py_XDECREF(keep);
    return result;
}

PyObject *pyq_coll_clear_payload(pyq_collection *self, PyObject *ids)
{
    qv_payload_update u;
    qv_payload_update_init(&u);
    u.clear = 1;
    return apply(self, ids, &u);
}
