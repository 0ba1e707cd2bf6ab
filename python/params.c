/*
 * python/params.c -- qv_index_params and qv_search_params from Python arguments.
 *
 * Only the conversion happens here (int ranges of the C fields, names of metrics, kinds,
 * quantizations, vector types and GPU modes); the library checks the values (m 2..100,
 * k 1..QV_MAX_K, u8 only on a quantized hnsw ...) and its QV_EINVAL message reaches the
 * caller as InvalidArgumentError. Quiver.Index and Database.create_collection share the
 * knob names, so both go through pyq_index_params_from.
 */
#include "pyquiver.h"

#include <math.h>
#include <stdio.h>

int pyq_uint_arg(PyObject *obj, const char *name, unsigned long long max, unsigned long long *out)
{
    if (!obj || obj == Py_None) return 0;
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.100s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *num = PyNumber_Index(obj);
    if (!num) return -1;
    int overflow = 0;
    long long sv = PyLong_AsLongLongAndOverflow(num, &overflow);
    int bad = overflow < 0 || (overflow == 0 && sv < 0);   /* negative */
    unsigned long long v = (unsigned long long)sv;
    if (overflow > 0 && (v = PyLong_AsUnsignedLongLong(num)) == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        bad = 1;    /* above 2^64 - 1 */
    }
    int ok = !PyErr_Occurred() && !bad && v <= max;
    Py_DECREF(num);
    if (PyErr_Occurred()) return -1;
    if (!ok) {
        pyq_raise_fmt(QV_EINVAL, "%s must be 0..%llu, got %S", name, max, obj);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_u32(PyObject *obj, const char *name, uint32_t *out)
{
    unsigned long long v = *out;
    if (pyq_uint_arg(obj, name, UINT32_MAX, &v) < 0) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The UTF-8 text of a str argument, or NULL with TypeError. */
static const char *str_arg(PyObject *s, const char *what)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, got %.100s", what, Py_TYPE(s)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8(s);
}

/* Names of metrics, kinds, codes and vector types are the library's (qv_metric_parse,
 * qv_index_kind_parse, qv_quant_parse, qv_vec_type_parse), whose QV_EINVAL message names
 * what it expected. One function for the four: their enum types differ, so a switch picks
 * the parser. */
typedef enum { NAME_METRIC, NAME_KIND, NAME_QUANT, NAME_VEC_TYPE } name_knob;

static int parse_name(PyObject *s, name_knob which, void *out)
{
    static const char *const what[] = {"metric", "kind", "quant", "vec_type"};
    const char *v = str_arg(s, what[which]);
    int rc;
    if (!v) return -1;
    switch (which) {
    case NAME_METRIC: rc = qv_metric_parse(v, out); break;
    case NAME_KIND:   rc = qv_index_kind_parse(v, out); break;
    case NAME_QUANT:  rc = qv_quant_parse(v, out); break;
    default:          rc = qv_vec_type_parse(v, out); break;
    }
    if (rc != QV_OK) {
        pyq_raise(rc);
        return -1;
    }
    return 0;
}

/* One of three mode names (gpu, rescore) -> its value in *out; else QV_EINVAL naming what
 * was expected. */
static int parse_mode(const char *v, const char *what, const char *const names[3], const int values[3],
                      const char *expected, int *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, names[i])) {
            *out = values[i];
            return 0;
        }
    pyq_raise_fmt(QV_EINVAL, "unknown %s mode '%s' (expected %s)", what, v, expected);
    return -1;
}

/* gpu: "off", "auto", "require", or a bool (True = require). */
static int parse_gpu(PyObject *s, qv_gpu_mode *out)
{
    static const char *const names[] = {"off", "auto", "require"};
    static const int values[] = {QV_GPU_OFF, QV_GPU_AUTO, QV_GPU_REQUIRE};
    int m;
    if (PyBool_Check(s)) {
        *out = s == Py_True ? QV_GPU_REQUIRE : QV_GPU_OFF;
        return 0;
    }
    const char *v = str_arg(s, "gpu");
    if (!v || parse_mode(v, "gpu", names, values, "off, auto or require", &m) < 0) return -1;
    *out = (qv_gpu_mode)m;
    return 0;
}

int pyq_index_params_from(PyObject *kind, PyObject *dim, PyObject *metric, PyObject *kw, qv_index_params *p)
{
    static const char *const knobs[] = {"m", "ef_construction", "ef_search", "nlist", "nprobe", "kmeans_iters",
                                        "max_train_points", "threads", "seed", "gpu", "keep_pruned", "quant",
                                        "vec_type"};
    qv_index_kind k = QV_INDEX_HNSW;
    qv_metric mt;
    uint32_t d = 0;
    if (kind && kind != Py_None && parse_name(kind, NAME_KIND, &k) < 0) return -1;
    if (parse_name(metric, NAME_METRIC, &mt) < 0 || get_u32(dim, "dim", &d) < 0) return -1;
    qv_index_params_init(p, k, d, mt);
    if (!kw) return 0;

    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kw, &pos, &key, &value)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        size_t i = 0;
        if (!name) return -1;
        while (i < sizeof knobs / sizeof knobs[0] && strcmp(name, knobs[i])) i++;
        unsigned long long v;
        int rc = 0;
        switch (i) {
        case 0: rc = get_u32(value, name, &p->m); break;
        case 1: rc = get_u32(value, name, &p->ef_construction); break;
        case 2: rc = get_u32(value, name, &p->ef_search); break;
        case 3: rc = get_u32(value, name, &p->nlist); break;
        case 4: rc = get_u32(value, name, &p->nprobe); break;
        case 5: rc = get_u32(value, name, &p->kmeans_iters); break;
        case 6:
            v = p->max_train_points;
            rc = pyq_uint_arg(value, name, SIZE_MAX, &v);
            p->max_train_points = (size_t)v;
            break;
        case 7: rc = get_u32(value, name, &p->threads); break;
        case 8:
            v = p->seed;
            rc = pyq_uint_arg(value, name, UINT64_MAX, &v);
            p->seed = v;
            break;
        case 9: rc = value == Py_None ? 0 : parse_gpu(value, &p->gpu); break;
        case 10: {
            int on = PyObject_IsTrue(value);
            if (on < 0) return -1;
            if (on) p->flags |= QV_HNSW_KEEP_PRUNED;
            else p->flags &= ~(uint32_t)QV_HNSW_KEEP_PRUNED;
            break;
        }
        /* quant, vec_type: None keeps the default (none, f32) */
        case 11: rc = value == Py_None ? 0 : parse_name(value, NAME_QUANT, &p->quant); break;
        case 12: rc = value == Py_None ? 0 : parse_name(value, NAME_VEC_TYPE, &p->vec_type); break;
        default:
            PyErr_Format(PyExc_TypeError, "unexpected keyword argument '%s'", name);
            return -1;
        }
        if (rc < 0) return -1;
    }
    return 0;
}

/* A real-valued search knob: None (or absent) leaves *out as it is (the default); a bool
 * or what is not a number is TypeError (True is not 1.0 here); a value outside lo..hi
 * (or 0, the default, when zero_default) is InvalidArgumentError with the library's words
 * (qv_search_params_check). Checked on the double: rounding to float would otherwise let
 * -1e-50 through as 0 or 0.99999999 as 1, and NaN fails every comparison. */
static int parse_real(PyObject *obj, const char *name, double lo, double hi, int zero_default, float *out)
{
    if (!obj || obj == Py_None) return 0;
    if (PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a number, got bool", name);
        return -1;
    }
    double d = PyFloat_AsDouble(obj);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    if (!((zero_default && d == 0.0) || (d >= lo && d <= hi))) {
        char msg[128];   /* PyUnicode_FromFormat has no %g */
        snprintf(msg, sizeof msg, "%s must be %s%g..%g, got %g", name, zero_default ? "0 (default) or " : "", lo, hi, d);
        pyq_raise_fmt(QV_EINVAL, "%s", msg);
        return -1;
    }
    *out = (float)d;
    return 0;
}

/* rescore: None = default (on), True = on, False = off (the codes' estimates are the
 * scores), or one of the names "on", "off", "all" (every candidate of the beam). */
static int parse_rescore(PyObject *obj, qv_rescore *out)
{
    static const char *const names[] = {"on", "off", "all"};
    static const int values[] = {QV_RESCORE_ON, QV_RESCORE_OFF, QV_RESCORE_ALL};
    int m;
    if (!obj || obj == Py_None) return 0;
    if (PyBool_Check(obj)) {
        *out = obj == Py_True ? QV_RESCORE_ON : QV_RESCORE_OFF;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "rescore must be None, a bool or 'all', got %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *v = PyUnicode_AsUTF8(obj);
    if (!v || parse_mode(v, "rescore", names, values, "True, False, 'on', 'off' or 'all'", &m) < 0) return -1;
    *out = (qv_rescore)m;
    return 0;
}

int pyq_search_params_from(PyObject *k, const pyq_search_knobs *kn, qv_search_params *sp)
{
    uint32_t kk = 10;
    if (get_u32(k, "k", &kk) < 0) return -1;
    if (kk < 1 || kk > QV_MAX_K) {
        pyq_raise_fmt(QV_EINVAL, "k must be 1..%u, got %u", QV_MAX_K, kk);
        return -1;
    }
    qv_search_params_init(sp, kk);
    if (!kn) return 0;
    if (get_u32(kn->ef, "ef", &sp->ef) < 0 || get_u32(kn->nprobe, "nprobe", &sp->nprobe) < 0 ||
        get_u32(kn->max_visits, "max_visits", &sp->max_visits) < 0 ||
        /* oversampling: 0 = the code kind's default, or 1..; explore: 0 (off)..; bit1 only */
        parse_real(kn->oversampling, "oversampling", 1.0, QV_MAX_OVERSAMPLING, 1, &sp->oversampling) < 0 ||
        parse_rescore(kn->rescore, &sp->rescore) < 0 ||
        parse_real(kn->explore, "explore", 0.0, QV_MAX_EXPLORE, 0, &sp->explore) < 0)
        return -1;
    return 0;
}

float pyq_pad_score(qv_metric m)
{
    return m == QV_METRIC_L2 ? INFINITY : -INFINITY;
}
