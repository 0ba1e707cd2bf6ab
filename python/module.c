/*
 * python/module.c -- the `quiver` module: types, errors, and the module-level functions
 * open(), read_vectors(), read_ivecs(), gpu_available().
 */
#define PYQ_IMPORT_ARRAY   /* this file calls import_array(); the others share its table */
#include "pyquiver.h"

/* read_vectors(path) / read_ivecs(path): the library's readers, the result handed to
 * numpy without a copy (the array frees the buffer with qv_free). */
static PyObject *read_file(PyObject *path_obj, int ivecs)
{
    PyObject *path = NULL;
    void *data = NULL;
    size_t n = 0, dim = 0;
    int rc;
    if (!PyUnicode_FSConverter(path_obj, &path)) return NULL;
    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    rc = ivecs ? qv_read_ivecs(p, (int32_t **)&data, &n, &dim) : qv_read_vectors(p, (float **)&data, &n, &dim);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc != QV_OK) return pyq_raise(rc);
    npy_intp shape[2] = {(npy_intp)n, (npy_intp)dim};
    return pyq_array_owning(data, 2, shape, ivecs ? NPY_INT32 : NPY_FLOAT32);
}

static PyObject *mod_read_vectors(PyObject *self, PyObject *path)
{
    (void)self;
    return read_file(path, 0);
}

static PyObject *mod_read_ivecs(PyObject *self, PyObject *path)
{
    (void)self;
    return read_file(path, 1);
}

static PyObject *mod_gpu_available(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyBool_FromLong(qv_gpu_available());
}

static PyMethodDef module_methods[] = {
    {"tokenize", (PyCFunction)(void (*)(void))pyq_tokenize, METH_VARARGS | METH_KEYWORDS,
     "tokenize(text, *, language=None, stopwords=False)\n--\n\nThe tokens a 'text' payload index makes of text: "
     "lowercase Unicode words, Snowball-stemmed (English unless language names another, 'none' for no stemming)."},
    {"open", (PyCFunction)(void (*)(void))pyq_database_open, METH_VARARGS | METH_KEYWORDS,
     "open(path, *, nosync=False, readonly=False, map_size=0, max_collections=0, checkpoint_every=0)\n--\n\n"
     "Open (creating if needed) the database in directory path and return a Database."},
    {"read_vectors", mod_read_vectors, METH_O,
     "read_vectors(path)\n--\n\nRead .fvecs, .bvecs or .npy (float32, 2-D) into an (n, dim) float32 array."},
    {"read_ivecs", mod_read_ivecs, METH_O, "read_ivecs(path)\n--\n\nRead .ivecs into an (n, dim) int32 array."},
    {"gpu_available", mod_gpu_available, METH_NOARGS,
     "gpu_available()\n--\n\nTrue when the GPU part is built and a device is usable."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef quiver_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "quiver",
    .m_doc = "Quiver, a vector similarity search engine, embedded: quiver.Index (an index without storage) "
             "and quiver.open(path) (a database of collections with payloads and filters).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit_quiver(void);
PyMODINIT_FUNC PyInit_quiver(void)
{
    import_array();
    PyObject *m = PyModule_Create(&quiver_module);
    if (!m) return NULL;
    if (PyType_Ready(&pyq_IndexType) < 0 || PyType_Ready(&pyq_DatabaseType) < 0 ||
        PyType_Ready(&pyq_CollectionType) < 0)
        goto fail;
    if (PyModule_AddObjectRef(m, "Index", (PyObject *)&pyq_IndexType) < 0 ||
        PyModule_AddObjectRef(m, "Database", (PyObject *)&pyq_DatabaseType) < 0 ||
        PyModule_AddObjectRef(m, "Collection", (PyObject *)&pyq_CollectionType) < 0)
        goto fail;
    if (pyq_errors_init(m) < 0 || pyq_records_init(m) < 0 || pyq_json_init() < 0) goto fail;
    if (PyModule_AddStringConstant(m, "__version__", qv_version()) < 0 ||
        PyModule_AddIntConstant(m, "MAX_K", QV_MAX_K) < 0 || PyModule_AddIntConstant(m, "MAX_DIM", QV_MAX_DIM) < 0 ||
        PyModule_AddObject(m, "MAX_ID", PyLong_FromUnsignedLongLong(QV_MAX_ID)) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
