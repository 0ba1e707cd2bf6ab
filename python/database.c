/*
 * python/database.c -- quiver.Database: an open database directory (qv_db).
 *
 *   with quiver.open("./data") as db:
 *       docs = db.create_collection("docs", 384, "cosine", payload_index={"lang": "keyword"},
 *                                   exist_ok=True)
 *       db.collection("docs"); db.collections(); db.drop("docs")
 *
 * Collections: each Collection object holds its own handle from qv_collection_create /
 * qv_collection_open and gives it back with qv_collection_close when it is closed or
 * collected, so it is right whether handles are borrowed from the db (closing is a no-op)
 * or counted references. The database keeps a list of its open Collection objects: close()
 * closes their handles before qv_db_close, and drop() retires those of the dropped
 * collection (their later calls raise StateError instead of touching freed memory).
 *
 * Threads: one gate (gate.c) per database counts the calls in flight on it and on all its
 * collections; close() and drop() drain it first, so they never free what a search in
 * another thread still reads. The gate, the collection list and the handles are only
 * touched with the GIL held.
 */
#include "pyquiver.h"

static const char *utf8(PyObject *s) { return PyUnicode_AsUTF8(s); }

/* A collection name argument as UTF-8, or NULL with TypeError (the library checks the rest). */
static const char *name_arg(PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "collection name must be a str, got %.100s", Py_TYPE(name)->tp_name);
        return NULL;
    }
    return utf8(name);
}

PyObject *pyq_database_open(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "nosync", "readonly", "map_size", "max_collections", "checkpoint_every", NULL};
    PyObject *path = NULL;
    int nosync = 0, readonly = 0;
    Py_ssize_t map_size = 0;
    unsigned int max_colls = 0, checkpoint_every = 0;
    qv_db_options o;
    qv_db *db = NULL;
    int rc;
    (void)module;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|$ppnII:open", kwlist, PyUnicode_FSConverter, &path, &nosync,
                                     &readonly, &map_size, &max_colls, &checkpoint_every))
        return NULL;
    if (map_size < 0) {
        Py_DECREF(path);
        return pyq_raise_fmt(QV_EINVAL, "map_size must be >= 0, got %zd", map_size);
    }
    qv_db_options_init(&o);
    o.flags = (nosync ? QV_DB_NOSYNC : 0u) | (readonly ? QV_DB_RDONLY : 0u);
    o.initial_map_bytes = (size_t)map_size;
    o.max_collections = max_colls;
    o.checkpoint_every = checkpoint_every;
    const char *dir = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    rc = qv_db_open(dir, &o, &db);
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) {
        Py_DECREF(path);
        return pyq_raise(rc);
    }
    pyq_database *self = PyObject_New(pyq_database, &pyq_DatabaseType);
    if (!self) {
        qv_db_close(db);
        Py_DECREF(path);
        return NULL;
    }
    self->db = db;
    self->colls = NULL;
    pyq_gate_init(&self->gate);
    self->path = PyUnicode_DecodeFSDefault(dir);
    Py_DECREF(path);
    if (!self->path) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* Close every Collection object's handle (gate drained) and mark it with why. */
static void retire_collections(pyq_database *self, const char *name, const char *why)
{
    for (pyq_collection *c = self->colls; c; c = c->next) {
        if (!c->coll || (name && strcmp(utf8(c->name), name))) continue;
        qv_collection_close(c->coll);
        c->coll = NULL;
        c->gone = why;
    }
}

static PyObject *db_close(pyq_database *self, PyObject *unused)
{
    (void)unused;
    pyq_gate_close(&self->gate);
    if (!self->db) Py_RETURN_NONE;
    retire_collections(self, NULL, "closed with its database");
    qv_db *db = self->db;
    self->db = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_db_close(db);    /* checkpoints: may take a while; nothing else can reach db now */
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

static void db_dealloc(pyq_database *self)
{
    if (self->db) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *r = db_close(self, NULL);
        if (!r) PyErr_WriteUnraisable((PyObject *)self);
        Py_XDECREF(r);
        PyErr_Restore(type, value, tb);
    }
    pyq_gate_release(&self->gate);
    Py_XDECREF(self->path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *db_enter(pyq_database *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *db_exit(pyq_database *self, PyObject *args)
{
    (void)args;
    return db_close(self, NULL);
}

/* create_collection(name, dim, metric="cosine", kind="hnsw", *, payload_index=None,
 *                   exist_ok=False, **knobs) */
static PyObject *db_create_collection(pyq_database *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "dim", "metric", "kind", "payload_index", "exist_ok", NULL};
    PyObject *name, *dim, *metric = NULL, *kind = NULL, *pindex = NULL, *exist_ok = NULL;
    PyObject *knobs = NULL, *named = NULL, *pindex_json = NULL, *result = NULL;
    qv_collection_config cfg;
    qv_coll *c = NULL;
    int rc, entered = 0;

    if (!(knobs = kwds ? PyDict_Copy(kwds) : PyDict_New()) || !(named = PyDict_New())) goto cleanup;
    for (int i = 0; kwlist[i]; i++) {
        PyObject *v = PyDict_GetItemString(knobs, kwlist[i]);
        if (v && (PyDict_SetItemString(named, kwlist[i], v) < 0 || PyDict_DelItemString(knobs, kwlist[i]) < 0))
            goto cleanup;
    }
    if (!PyArg_ParseTupleAndKeywords(args, named, "UO|OO$OO:create_collection", kwlist, &name, &dim, &metric, &kind,
                                     &pindex, &exist_ok))
        goto cleanup;
    memset(&cfg, 0, sizeof cfg);
    if (!metric) metric = PyUnicode_FromString("cosine");
    else Py_INCREF(metric);
    if (!metric) goto cleanup;
    rc = pyq_index_params_from(kind, dim, metric, knobs, &cfg.index);
    Py_DECREF(metric);
    if (rc < 0) goto cleanup;
    if (pindex && pindex != Py_None) {
        if (!(pindex_json = PyUnicode_Check(pindex) ? Py_NewRef(pindex) : pyq_json_dumps(pindex, "payload_index")))
            goto cleanup;
        if (!(cfg.payload_index = utf8(pindex_json))) goto cleanup;
    }
    int ok_if_exists = exist_ok ? PyObject_IsTrue(exist_ok) : 0;
    if (ok_if_exists < 0) goto cleanup;
    const char *cname = utf8(name);
    if (!cname) goto cleanup;
    if (pyq_gate_enter(&self->gate, "database") < 0) goto cleanup;
    entered = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_collection_create(self->db, cname, &cfg, &c);
    if (rc == QV_EEXIST && ok_if_exists) rc = qv_collection_open(self->db, cname, &c);
    Py_END_ALLOW_THREADS
    if (rc != QV_OK) {
        pyq_raise(rc);
        goto cleanup;
    }
    result = pyq_collection_new(self, c, name);
cleanup:
    if (entered) pyq_gate_leave(&self->gate);
    Py_XDECREF(pindex_json);
    Py_XDECREF(named);
    Py_XDECREF(knobs);
    return result;
}

static PyObject *db_collection(pyq_database *self, PyObject *name)
{
    qv_coll *c = NULL;
    const char *cname;
    int rc;
    if (!(cname = name_arg(name))) return NULL;
    if (pyq_gate_enter(&self->gate, "database") < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_collection_open(self->db, cname, &c);
    Py_END_ALLOW_THREADS
    PyObject *result = rc == QV_OK ? pyq_collection_new(self, c, name) : pyq_raise(rc);
    pyq_gate_leave(&self->gate);
    return result;
}

static PyObject *db_collections(pyq_database *self, PyObject *unused)
{
    char **names = NULL;
    size_t n = 0;
    int rc;
    (void)unused;
    if (pyq_gate_enter(&self->gate, "database") < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = qv_collection_list(self->db, &names, &n);
    Py_END_ALLOW_THREADS
    pyq_gate_leave(&self->gate);
    if (rc != QV_OK) return pyq_raise(rc);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, s);
    }
    qv_free_strings(names, n);
    return list;
}

static int db_contains(pyq_database *self, PyObject *name)
{
    PyObject *names = db_collections(self, NULL);
    if (!names) return -1;
    int found = PySequence_Contains(names, name);
    Py_DECREF(names);
    return found;
}

/* drop(name): no call may be in flight on the db while a collection's memory is freed. */
static PyObject *db_drop(pyq_database *self, PyObject *name)
{
    const char *cname;
    int rc;
    if (!(cname = name_arg(name))) return NULL;
    if (pyq_gate_enter(&self->gate, "database") < 0) return NULL;   /* raises if closed */
    pyq_gate_leave(&self->gate);
    pyq_gate_drain(&self->gate);
    if (!self->db) {    /* closed while we waited */
        pyq_gate_open(&self->gate);
        return pyq_raise_fmt(QV_ESTATE, "database is closed");
    }
    rc = qv_collection_drop(self->db, cname);
    if (rc == QV_OK) retire_collections(self, cname, "dropped");
    pyq_gate_open(&self->gate);
    if (rc != QV_OK) return pyq_raise(rc);
    Py_RETURN_NONE;
}

static PyObject *db_get_path(pyq_database *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->path);
}

static PyObject *db_get_closed(pyq_database *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->db == NULL);
}

static PyObject *db_repr(pyq_database *self)
{
    return PyUnicode_FromFormat("<quiver.Database %R%s>", self->path, self->db ? "" : ", closed");
}

static PyMethodDef db_methods[] = {
    {"create_collection", (PyCFunction)(void (*)(void))db_create_collection, METH_VARARGS | METH_KEYWORDS,
     "create_collection(name, dim, metric='cosine', kind='hnsw', *, payload_index=None, exist_ok=False, **params)\n"
     "--\n\nCreate a collection and return it. payload_index: {field: 'keyword'|'integer'|'float'|'bool'}. "
     "params: the index knobs of quiver.Index (m, ef_construction, quant, ...; vec_type stays 'f32': "
     "a collection keeps float32 vectors). exist_ok: open it if it exists."},
    {"collection", (PyCFunction)db_collection, METH_O,
     "collection(name)\n--\n\nOpen an existing collection (NotFoundError if there is none)."},
    {"collections", (PyCFunction)db_collections, METH_NOARGS, "collections()\n--\n\nNames of all collections, sorted."},
    {"drop", (PyCFunction)db_drop, METH_O,
     "drop(name)\n--\n\nDrop a collection and all its data. Its Collection objects raise StateError afterwards."},
    {"close", (PyCFunction)db_close, METH_NOARGS,
     "close()\n--\n\nCheckpoint and close every collection and the database, after waiting for calls in flight."},
    {"__enter__", (PyCFunction)db_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)db_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef db_getset[] = {
    {"path", (getter)db_get_path, NULL, "the database directory", NULL},
    {"closed", (getter)db_get_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods db_as_sequence = {
    .sq_contains = (objobjproc)db_contains,
};

PyTypeObject pyq_DatabaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quiver.Database",
    .tp_basicsize = sizeof(pyq_database),
    .tp_dealloc = (destructor)db_dealloc,
    .tp_repr = (reprfunc)db_repr,
    .tp_as_sequence = &db_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A database directory opened with quiver.open(path). A context manager: close() on exit.",
    .tp_methods = db_methods,
    .tp_getset = db_getset,
};
