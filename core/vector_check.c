/* core/vector_check.c -- the shared definition of an acceptable vector (see the header). */
#include "core/vector_check.h"

#include <math.h>
#include <stdio.h>

int qv_vector_problem(const float *v, size_t dim, qv_metric metric, size_t *col)
{
    double nsq = 0;
    for (size_t j = 0; j < dim; j++) {
        if (!isfinite(v[j])) {
            *col = j;
            return QV_VEC_NONFINITE;
        }
        nsq += (double)v[j] * (double)v[j];
    }
    if (nsq > QV_MAX_NORM * QV_MAX_NORM) return QV_VEC_TOO_LARGE;
    if (metric == QV_METRIC_COSINE && nsq == 0) return QV_VEC_ZERO;
    return QV_VEC_OK;
}

const char *qv_vector_problem_text(int problem, size_t col, char *buf, size_t len)
{
    switch (problem) {
    case QV_VEC_NONFINITE: snprintf(buf, len, "component %zu is not finite", col); break;
    case QV_VEC_TOO_LARGE: snprintf(buf, len, "norm is above %g (distances would overflow float)", QV_MAX_NORM); break;
    case QV_VEC_ZERO:      snprintf(buf, len, "zero vector has no cosine direction"); break;
    default:               snprintf(buf, len, "ok"); break;
    }
    return buf;
}
