/*
 * python/json.c -- payloads and filters between Python objects and JSON text.
 *
 * The library stores payloads as JSON objects and parses filters from their JSON form, so
 * the module only needs text both ways; Python's own json module (its C accelerator)
 * does the work. The encoder is compact and refuses NaN and Infinity (not JSON); the
 * decoder is json's default one.
 */
#include "pyquiver.h"

static PyObject *encode;          /* json.JSONEncoder(...).encode */
static PyObject *decode;          /* json.JSONDecoder().decode */

int pyq_json_init(void)
{
    PyObject *json = NULL, *cls = NULL, *noargs = NULL, *kw = NULL, *enc = NULL, *dec = NULL;
    int rc = -1;
    if (!(json = PyImport_ImportModule("json"))) goto cleanup;
    /* JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode */
    if (!(cls = PyObject_GetAttrString(json, "JSONEncoder")) || !(noargs = PyTuple_New(0))) goto cleanup;
    if (!(kw = Py_BuildValue("{s:O,s:O,s:(ss)}", "ensure_ascii", Py_False, "allow_nan", Py_False, "separators",
                             ",", ":")))
        goto cleanup;
    if (!(enc = PyObject_Call(cls, noargs, kw)) || !(encode = PyObject_GetAttrString(enc, "encode"))) goto cleanup;
    if (!(dec = PyObject_CallMethod(json, "JSONDecoder", NULL))) goto cleanup;
    if (!(decode = PyObject_GetAttrString(dec, "decode"))) goto cleanup;
    rc = 0;
cleanup:
    Py_XDECREF(dec);
    Py_XDECREF(enc);
    Py_XDECREF(kw);
    Py_XDECREF(noargs);
    Py_XDECREF(cls);
    Py_XDECREF(json);
    return rc;
}

/* Re-raise the pending exception with "what: " in front of its message, same type. */
static void prefix_error(const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *msg = value ? PyObject_Str(value) : NULL;
    if (!msg) {                       /* keep the original as it is */
        PyErr_Clear();
        PyErr_Restore(type, value, tb);
        return;
    }
    PyErr_Format(type, "%s: %U", what, msg);
    Py_DECREF(msg);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

PyObject *pyq_json_dumps(PyObject *obj, const char *what)
{
    if (!PyDict_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a dict or None, got %.100s", what, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyObject *s = PyObject_CallOneArg(encode, obj);
    if (!s) prefix_error(what);
    return s;
}

PyObject *pyq_json_loads(const char *text)
{
    PyObject *s = PyUnicode_FromString(text), *v = NULL;
    if (s) v = PyObject_CallOneArg(decode, s);
    Py_XDECREF(s);
    return v;
}

int pyq_filter_from(PyObject *obj, qv_filter **out)
{
    PyObject *text = NULL;
    const char *json;
    int rc;
    *out = NULL;
    if (obj == NULL || obj == Py_None) return 0;
    if (PyUnicode_Check(obj)) {
        text = Py_NewRef(obj);
    } else if (!(text = pyq_json_dumps(obj, "filter"))) {
        return -1;
    }
    if (!(json = PyUnicode_AsUTF8(text))) {
        Py_DECREF(text);
        return -1;
    }
    rc = qv_filter_parse(json, out);
    Py_DECREF(text);
    if (rc != QV_OK) {
        pyq_raise(rc);
        return -1;
    }
    return 0;
}
