/*
 * python/errors.c -- quiver.Error and one subclass per QV_E* code.
 *
 * Each subclass also derives from the built-in exception a Python caller would catch
 * for that kind of failure (DimensionError is a ValueError, NotFoundError a LookupError,
 * IOFailure an OSError ...), so `except ValueError` keeps working around quiver calls.
 * An instance carries .code (the negative QV_E* number) and .message (the library's
 * qv_last_error() text, or our own for checks made here); str(e) is that message.
 */
#include "pyquiver.h"

#include <stdarg.h>

typedef struct {
    int code;
    const char *name;              /* quiver.<name> */
    const char *doc;
    PyObject **builtin;            /* second base, or NULL */
    PyObject *type;                /* created at init */
} error_class;

static error_class classes[] = {
    {QV_EINVAL, "InvalidArgumentError", "QV_EINVAL: a bad argument (NaN, out-of-range parameter, malformed JSON).",
     &PyExc_ValueError, NULL},
    {QV_EDIM, "DimensionError", "QV_EDIM: a vector's dimension does not match.", &PyExc_ValueError, NULL},
    {QV_ENOMEM, "OutOfMemoryError", "QV_ENOMEM: out of memory.", &PyExc_MemoryError, NULL},
    {QV_ENOTFOUND, "NotFoundError", "QV_ENOTFOUND: no such id, collection or file.", &PyExc_LookupError, NULL},
    {QV_EEXIST, "ExistsError", "QV_EEXIST: already exists.", NULL, NULL},
    {QV_ECORRUPT, "CorruptError", "QV_ECORRUPT: a damaged or foreign file, snapshot or database.", NULL, NULL},
    {QV_EIO, "IOFailure", "QV_EIO: an I/O error from the OS or LMDB.", &PyExc_OSError, NULL},
    {QV_EFULL, "FullError", "QV_EFULL: disk full or a hard size limit reached.", &PyExc_OSError, NULL},
    {QV_ENODEV, "NoDeviceError", "QV_ENODEV: a GPU was required but none is usable.", NULL, NULL},
    {QV_ESTATE, "StateError", "QV_ESTATE: not valid in this state (closed, dropped, untrained).",
     &PyExc_RuntimeError, NULL},
    {QV_EINTERNAL, "InternalError", "QV_EINTERNAL: a broken internal invariant (a bug; please report).",
     &PyExc_RuntimeError, NULL},
};
#define NCLASSES (sizeof classes / sizeof classes[0])

static PyObject *error_base;

int pyq_errors_init(PyObject *m)
{
    error_base = PyErr_NewExceptionWithDoc("quiver.Error",
                                           "Base class of every error raised by libquiver. Attributes: code "
                                           "(the negative QV_E* number) and message (the library's detail).",
                                           PyExc_Exception, NULL);
    if (!error_base || PyModule_AddObjectRef(m, "Error", error_base) < 0) return -1;
    for (size_t i = 0; i < NCLASSES; i++) {
        error_class *c = &classes[i];
        char qualname[64];
        PyObject *bases = c->builtin ? PyTuple_Pack(2, error_base, *c->builtin) : PyTuple_Pack(1, error_base);
        if (!bases) return -1;
        snprintf(qualname, sizeof qualname, "quiver.%s", c->name);
        c->type = PyErr_NewExceptionWithDoc(qualname, c->doc, bases, NULL);
        Py_DECREF(bases);
        if (!c->type || PyModule_AddObjectRef(m, c->name, c->type) < 0) return -1;
    }
    return 0;
}

static PyObject *class_for(int rc)
{
    for (size_t i = 0; i < NCLASSES; i++)
        if (classes[i].code == rc) return classes[i].type;
    return error_base;
}

/* Raise class_for(rc) with message msg (a str; stolen). */
static PyObject *raise_with(int rc, PyObject *msg)
{
    PyObject *cls = class_for(rc), *exc = NULL, *code = NULL;
    if (!msg) return NULL;
    if (!(exc = PyObject_CallOneArg(cls, msg))) goto cleanup;
    if (!(code = PyLong_FromLong(rc))) goto cleanup;
    if (PyObject_SetAttrString(exc, "code", code) < 0 || PyObject_SetAttrString(exc, "message", msg) < 0) goto cleanup;
    PyErr_SetObject(cls, exc);
cleanup:
    Py_XDECREF(exc);
    Py_XDECREF(code);
    Py_DECREF(msg);
    return NULL;
}

PyObject *pyq_raise(int rc)
{
    const char *m = qv_last_error();
    if (!m || !*m) m = qv_strerror(rc);
    return raise_with(rc, PyUnicode_DecodeUTF8(m, (Py_ssize_t)strlen(m), "replace"));
}

PyObject *pyq_raise_fmt(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    return raise_with(rc, msg);
}
