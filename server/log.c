/*
 * server/log.c -- leveled logging to stderr for quiverd.
 *
 * One line per call, "quiverd: LEVEL: message", written with a single fprintf so lines
 * from different worker threads do not interleave (stdio locks the stream per call).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/server.h"

int srv_log_level = SRV_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int srv_log_parse_level(const char *s)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

void srv_log(int level, const char *fmt, ...)
{
    if (level > srv_log_level) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "quiverd: %s: %s\n", level_names[level], line);
}
