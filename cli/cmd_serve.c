/* cli/cmd_serve.c -- quiver serve [quiverd options]: runs quiverd from the same folder. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cmd_serve(int argc, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return cli_fail(EXIT_RUNTIME, "serve", "cannot find my own path: %s", strerror(errno));
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(path, sizeof path, "%s/quiverd", self);
    argv[0] = path;                 /* quiverd sees the same options and --help */
    execv(path, argv);
    (void)argc;
    return cli_fail(EXIT_RUNTIME, "serve", "cannot run %s: %s", path, strerror(errno));
}
