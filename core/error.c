/* core/error.c -- error codes, names and the thread-local detail message. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

int qv_fail(int rc, const char *fmt, ...)
{
    /* Format into a copy first: callers often wrap the previous message,
     * qv_fail(rc, "%s: %s", name, qv_last_error()), and vsnprintf must not read the
     * buffer it is writing. */
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof msg);
    return rc;
}

void qv_clear_error(void) { last_error[0] = '\0'; }

const char *qv_last_error(void) { return last_error; }

const char *qv_version(void) { return QV_VERSION; }

const char *qv_strerror(int rc)
{
    switch (rc) {
    case QV_OK:        return "QV_OK: success";
    case QV_EINVAL:    return "QV_EINVAL: invalid argument";
    case QV_EDIM:      return "QV_EDIM: dimension mismatch";
    case QV_ENOMEM:    return "QV_ENOMEM: out of memory";
    case QV_ENOTFOUND: return "QV_ENOTFOUND: not found";
    case QV_EEXIST:    return "QV_EEXIST: already exists";
    case QV_ECORRUPT:  return "QV_ECORRUPT: corrupt or foreign data";
    case QV_EIO:       return "QV_EIO: I/O error";
    case QV_EFULL:     return "QV_EFULL: disk or size limit full";
    case QV_ENODEV:    return "QV_ENODEV: no GPU device";
    case QV_ESTATE:    return "QV_ESTATE: invalid state for this call";
    case QV_EINTERNAL: return "QV_EINTERNAL: internal error (a bug)";
    default:           return "QV_E?: unknown error code";
    }
}
