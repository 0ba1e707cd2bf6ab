/*
 * tests/run.c -- runs every check suite. The list comes from build/suites.inc, generated
 * by the Makefile from the "Suite *qv_<name>_suite(void)" lines in tests/check_*.c.
 * CK_RUN_SUITE=<name> (check's own variable) runs one suite; CK_FORK=no runs in-process
 * (the sanitizer build does, so LeakSanitizer sees one process). Tests that cannot run
 * call test_skip(), which appends a line to the file named by QV_SKIP_LOG (set here):
 * check counts a skipped test as passed, so the skips are listed and counted at the end.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUITE(fn) Suite *fn(void);
#include "suites.inc"
#undef SUITE

/* Print the skips logged during the run and their number. */
static void report_skips(const char *log)
{
    FILE *f = fopen(log, "r");
    char line[600];
    int n = 0;
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (n++ == 0) printf("Skipped tests (counted as passed by check):\n");
            printf("  %s", line);
        }
        fclose(f);
    }
    printf("%d test%s skipped\n", n, n == 1 ? "" : "s");
    unlink(log);
}

int main(void)
{
    char log[] = "/tmp/quiver-skips.XXXXXX";
    int fd = mkstemp(log);
    if (fd >= 0) {
        close(fd);
        setenv("QV_SKIP_LOG", log, 1);
    }
    SRunner *sr = srunner_create(NULL);
#define SUITE(fn) srunner_add_suite(sr, fn());
#include "suites.inc"
#undef SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (fd >= 0) report_skips(log);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
