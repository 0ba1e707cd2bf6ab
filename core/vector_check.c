/* core/vector_check.c -- the shared definition of an acceptable vector (see the header). */
#include "core/vector_check.h"

#include <math.h>
#include <stdio.h>

/* Sum of squares in 16 independent float lanes (the compiler vectorizes it). A NaN or Inf
 * component, or one whose square overflows, makes the result non-finite. */
static float sumsq16(const float *v, size_t dim)
{
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= dim; i += 16)
        for (size_t j = 0; j < 16; j++) acc[j] += v[i + j] * v[i + j];
    for (size_t j = 0; i < dim; i++, j++) acc[j] += v[i] * v[i];
    float s = 0;
    for (size_t j = 0; j < 16; j++) s += acc[j];
    return s;
}

int qv_vector_problem(const float *v, size_t dim, qv_metric metric, size_t *col)
{
    /* Fast path, taken by every query and point: float sums are exact enough far from the
     * bound (float's range ends at 3.4e38 > QV_MAX_NORM^2 = 1e36). Anything else, a
     * non-finite value, a norm within 1% of the bound or a sum that underflows to 0, takes the exact loop below.
     * (At 784-d the exact loop's chain of dependent double adds took ~3k cycles.) */
    float fs = sumsq16(v, dim);
    if (fs > 0 && fs < 0.99 * QV_MAX_NORM * QV_MAX_NORM) return QV_VEC_OK;   /* false for NaN */
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
