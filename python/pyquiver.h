/*
 * python/pyquiver.h -- private header of the `quiver` CPython extension module.
 *
 * The module is written against the Python C API and numpy's C API and calls libquiver
 * through include/quiver.h only. One file per job:
 *   module.c      module init, quiver.open / read_vectors / read_ivecs / version
 *   errors.c      quiver.Error and one subclass per QV_E* code
 *   gate.c        in-flight call counting, so close/drop never free what another thread uses
 *   arrays.c      numpy in (vectors without a copy, ids) and out (ids, scores)
 *   params.c      index and search parameters from Python arguments
 *   id_filter.c   the filter= of Index.search (mask, ids, callable)
 *   json.c        payload dicts and filter dicts <-> JSON text (Python's json module)
 *   index.c       quiver.Index (index level, no storage)
 *   database.c    quiver.Database (qv_db)
 *   collection.c  quiver.Collection (qv_coll), quiver.Hit, quiver.Point
 *   payload.c     Collection.set_payload and the other payload-only updates
 *
 * Threads: every call that can take long (add, train, search, upsert, save, load, get,
 * scroll) releases the GIL around the library call. Inputs are converted and checked
 * with the GIL held, before it is released; results are turned into Python objects after
 * it is taken back. The library's qv_last_error() is thread-local and the GIL is taken
 * back on the same OS thread, so the message read after a failure is the call's own.
 */
#ifndef PYQUIVER_H
#define PYQUIVER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pyquiver_ARRAY_API
#ifndef PYQ_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include <quiver.h>

/* ---- errors.c ---------------------------------------------------------------------- */

/** Create quiver.Error and its subclasses and add them to module m. -1 on failure. */
int pyq_errors_init(PyObject *m);
/** Raise the subclass of quiver.Error for rc with qv_last_error() as its message.
 *  @return NULL, so that callers can `return pyq_raise(rc);`. */
PyObject *pyq_raise(int rc);
/** Same with a message of our own (PyUnicode_FromFormat's format: %S, %R, %zu ... but no
 *  %f), for checks made on the Python side. */
PyObject *pyq_raise_fmt(int rc, const char *fmt, ...);

/* ---- gate.c ------------------------------------------------------------------------ */

/* Counts the calls in flight on an object that can be closed (an index, a database),
 * so that close() and drop() wait for them instead of freeing memory under them.
 * Every function is called with the GIL held; those that wait release it while they
 * wait, so the calls they wait for can finish. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned active;               /* calls between enter and leave */
    int exclusive;                 /* a drain is under way or held: entries wait */
    int closed;                    /* for good: entries fail */
} pyq_gate;

void pyq_gate_init(pyq_gate *g);
void pyq_gate_release(pyq_gate *g);
/** Start a call. @return 0, or -1 with StateError raised ("what is closed"). */
int  pyq_gate_enter(pyq_gate *g, const char *what);
void pyq_gate_leave(pyq_gate *g);
/** Wait until no call is in flight and keep new ones out until pyq_gate_open. */
void pyq_gate_drain(pyq_gate *g);
void pyq_gate_open(pyq_gate *g);
/** Drain for good: later entries fail. Idempotent. */
void pyq_gate_close(pyq_gate *g);

/* ---- arrays.c ---------------------------------------------------------------------- */

/* A matrix of float32 rows borrowed from a numpy array (or converted once). */
typedef struct {
    PyArrayObject *arr;            /* owned reference; NULL after pyq_matrix_release */
    const float *data;
    size_t n, dim;
    int single;                    /* the input was one 1-D vector */
} pyq_matrix;

/** Read obj as n vectors of dimension dim (dim 0: any): a C-contiguous, aligned, native
 *  float32 array is borrowed as is; anything else (float64, a list, a strided view) is
 *  converted to one once. A 1-D input is one vector. Raises DimensionError when the row
 *  length is not dim. @return 0 or -1 with an exception set. */
int  pyq_matrix_from(PyObject *obj, size_t dim, const char *what, pyq_matrix *out);
void pyq_matrix_release(pyq_matrix *m);

/* Point ids: 0..QV_MAX_ID, borrowed from an int64/uint64 array or converted once. */
typedef struct {
    PyArrayObject *arr;            /* owned reference, or NULL for a scalar */
    const uint64_t *data;
    size_t n;
    uint64_t one;                  /* storage for a scalar id */
    int scalar;
} pyq_ids;

/** Read obj (an int, a sequence of ints or an integer array) as ids. Raises ValueError for
 *  a negative id or one above QV_MAX_ID, TypeError for non-integers. */
int  pyq_ids_from(PyObject *obj, pyq_ids *out);
void pyq_ids_release(pyq_ids *ids);

/** (ids, scores) numpy arrays from nq*k hits: shape (nq, k) padded with id -1 and score
 *  pad_score, or, when single, shape (n_hits[0],). New reference or NULL. */
PyObject *pyq_hits_to_arrays(const qv_hit *hits, const size_t *n_hits, size_t nq, size_t k,
                             int single, float pad_score);
/** A numpy array that owns buf (freed with qv_free when the array dies). Steals buf,
 *  also on failure. */
PyObject *pyq_array_owning(void *buf, int ndim, npy_intp *shape, int typenum);

/* ---- id_filter.c ------------------------------------------------------------------- */

/* The filter= of Index.search (a bool mask over ids, allowed ids, or a callable). */
typedef struct {
    PyArrayObject *mask_arr;       /* bool mask (owned reference) ... */
    const npy_bool *mask;
    uint64_t mask_len;
    uint64_t *bits;                /* ... or an allow_bits bitset (owned) ... */
    uint64_t *sorted;              /* ... or sorted allowed ids (owned) ... */
    size_t nsorted;
    PyObject *fn;                  /* ... or a callable */
    PyObject *exc_type, *exc_value, *exc_tb;   /* first exception the callable raised */
} pyq_id_filter;

/** Read obj (None, a bool mask, ids, a callable) into *f and point sp's allow_bits or
 *  accept at it. @return 0 or -1 with an exception set; release *f either way. */
int  pyq_id_filter_from(PyObject *obj, pyq_id_filter *f, qv_search_params *sp);
/** After the search, with the GIL: raise what the callable raised. @return 0 or -1. */
int  pyq_id_filter_finish(pyq_id_filter *f);
void pyq_id_filter_release(pyq_id_filter *f);

/* ---- json.c ------------------------------------------------------------------------ */

/** Import json and keep its encoder and decoder. -1 on failure. */
int  pyq_json_init(void);
/** JSON text of a dict (compact, UTF-8, no NaN): a new str, or NULL with TypeError/
 *  ValueError set. what names the argument in messages ("payloads[3]"). */
PyObject *pyq_json_dumps(PyObject *obj, const char *what);
/** The object of a JSON text (payloads read back from the library). */
PyObject *pyq_json_loads(const char *text);
/** A filter from a dict (Qdrant-style), a JSON str, or None (*out = NULL).
 *  @return 0 or -1 with an exception set. Free *out with qv_filter_free. */
int  pyq_filter_from(PyObject *obj, qv_filter **out);

/* ---- the types --------------------------------------------------------------------- */

extern PyTypeObject pyq_IndexType;
extern PyTypeObject pyq_DatabaseType;
extern PyTypeObject pyq_CollectionType;
extern PyTypeObject *pyq_HitType;     /* structseq quiver.Hit(id, score, payload) */
extern PyTypeObject *pyq_PointType;   /* structseq quiver.Point(id, vector, payload) */

/** Create Hit and Point (structseq types). -1 on failure. */
int pyq_records_init(PyObject *m);

typedef struct pyq_collection pyq_collection;

typedef struct {
    PyObject_HEAD
    qv_db *db;                     /* NULL once closed */
    pyq_gate gate;                 /* calls in flight on the db or any of its collections */
    pyq_collection *colls;         /* open Collection objects (borrowed, intrusive list) */
    PyObject *path;
} pyq_database;

struct pyq_collection {
    PyObject_HEAD
    pyq_database *owner;           /* strong reference: the db outlives its collections */
    qv_coll *coll;                 /* NULL once closed or dropped */
    const char *gone;              /* why coll is NULL: "closed", "dropped", ... */
    pyq_collection *prev, *next;   /* in owner->colls */
    PyObject *name;
    uint32_t dim;
    qv_metric metric;
};

/** Start / end a call on a collection: enter its database's gate and check the handle
 *  (StateError when closed or dropped). @return 0 or -1 with an exception set. */
int  pyq_coll_enter(pyq_collection *self);
void pyq_coll_leave(pyq_collection *self);

/* payload.c: payload-only updates (Collection methods). */
PyObject *pyq_coll_update_payload(pyq_collection *self, PyObject *args, PyObject *kwds);
PyObject *pyq_coll_set_payload(pyq_collection *self, PyObject *args);
PyObject *pyq_coll_overwrite_payload(pyq_collection *self, PyObject *args);
PyObject *pyq_coll_delete_payload_keys(pyq_collection *self, PyObject *args);
PyObject *pyq_coll_clear_payload(pyq_collection *self, PyObject *ids);
/* Hits of nq queries as Hit lists (collection.c); payloads[i] (taken, may be NULL) is the
 * i-th hit's in row order; single: the one query's list, not a list of lists. */
PyObject *pyq_hit_lists(const qv_hit *hits, const size_t *n_hits, size_t nq, size_t k, char **payloads, int single);
/* Full-text and hybrid search (text.c). */
PyObject *pyq_coll_search_text(pyq_collection *self, PyObject *args, PyObject *kwds);
PyObject *pyq_coll_hybrid_search(pyq_collection *self, PyObject *args, PyObject *kwds);
/* quiver.tokenize(text, *, language=None, stopwords=False): the text index's tokens. */
PyObject *pyq_tokenize(PyObject *self, PyObject *args, PyObject *kwds);

/** quiver.open(path, ...) */
PyObject *pyq_database_open(PyObject *self, PyObject *args, PyObject *kwds);
/** A Collection object over an open handle (takes over c). */
PyObject *pyq_collection_new(pyq_database *db, qv_coll *c, PyObject *name);

/* ---- params.c ---------------------------------------------------------------------- */

/** Index parameters: kind, dim and metric from str/int arguments, then the knobs from the
 *  keyword dict kw (m, ef_construction, ef_search, nlist, nprobe, kmeans_iters,
 *  max_train_points, threads, seed, gpu, keep_pruned, quant, vec_type; NULL = none).
 *  Unknown keys give TypeError; range checks and the combinations refused are the
 *  library's (QV_EINVAL at creation).
 *  @return 0 or -1 with an exception set. */
int pyq_index_params_from(PyObject *kind, PyObject *dim, PyObject *metric, PyObject *kw,
                          qv_index_params *p);
/** The keyword arguments of a search, borrowed; NULL or None = the index default. */
typedef struct {
    PyObject *ef, *nprobe, *max_visits;
    PyObject *oversampling;        /* a number: 0 or 1..QV_MAX_OVERSAMPLING */
    PyObject *rescore;             /* True, False, 'on', 'off' or 'all' */
    PyObject *explore;             /* a number: 0 (off)..QV_MAX_EXPLORE, bit1 hnsw */
} pyq_search_knobs;
/** Search parameters: k (None = 10), then the knobs kn (NULL = all defaults). */
int pyq_search_params_from(PyObject *k, const pyq_search_knobs *kn, qv_search_params *sp);
/** A non-negative int no larger than max into *out (None leaves *out alone); else
 *  TypeError or InvalidArgumentError naming the argument. @return 0 or -1. */
int pyq_uint_arg(PyObject *obj, const char *name, unsigned long long max, unsigned long long *out);
/** The score of a missing hit for a metric: +inf for l2 (ascending), -inf otherwise. */
float pyq_pad_score(qv_metric m);

#endif
