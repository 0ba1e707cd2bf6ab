/*
 * core/vector_check.h -- what makes a vector unusable, decided in one place.
 *
 * A vector is refused when a component is NaN or infinite, when its norm is above
 * QV_MAX_NORM (finite components whose squares or products overflow float would turn
 * every distance to that point into Inf/NaN, and with it every search that meets it),
 * or, for cosine, when it is the zero vector (it has no direction). Callers add their own
 * "point 3 (id 7): " or "query 2: " prefix to qv_vector_problem_text().
 */
#ifndef QV_CORE_VECTOR_CHECK_H
#define QV_CORE_VECTOR_CHECK_H

#include <stddef.h>

#include "quiver.h"

enum { QV_VEC_OK = 0, QV_VEC_NONFINITE, QV_VEC_TOO_LARGE, QV_VEC_ZERO };

/** The first problem of v (QV_VEC_*); *col receives the bad component for NONFINITE. */
int qv_vector_problem(const float *v, size_t dim, qv_metric metric, size_t *col);
/** A message for a problem: "component 3 is not finite", "norm is above 1e+18 ...". */
const char *qv_vector_problem_text(int problem, size_t col, char *buf, size_t len);

#endif
