/*
 * core/error.h -- the one error domain: QV_E* codes plus a thread-local message.
 *
 * qv_fail() stores the formatted detail for qv_last_error() and returns its code, so
 * call sites stay one line: return qv_fail(QV_EDIM, "dimension %u, expected %u", a, b);
 */
#ifndef QV_CORE_ERROR_H
#define QV_CORE_ERROR_H

#include "quiver.h"

#if defined(__GNUC__)
#define QV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define QV_PRINTF(f, a)
#endif

/** Set this thread's last error message and return rc. */
int qv_fail(int rc, const char *fmt, ...) QV_PRINTF(2, 3);
/** Clear this thread's last error message. */
void qv_clear_error(void);

/** Internal invariant check: a bug if it fires, reported as QV_EINTERNAL (no abort). */
#define QV_CHECK_INTERNAL(cond)                                                           \
    do {                                                                                  \
        if (!(cond))                                                                      \
            return qv_fail(QV_EINTERNAL, "%s:%d: invariant '%s' broken", __FILE__,       \
                           __LINE__, #cond);                                              \
    } while (0)

#endif
