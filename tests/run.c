/*
 * tests/run.c -- runs every check suite. The list comes from build/suites.inc, generated
 * by the Makefile from the "Suite *qv_<name>_suite(void)" lines in tests/check_*.c.
 * CK_RUN_SUITE=<name> (check's own variable) runs one suite; CK_FORK=no runs in-process
 * (the sanitizer build does, so LeakSanitizer sees one process).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SUITE(fn) Suite *fn(void);
#include "suites.inc"
#undef SUITE

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define SUITE(fn) srunner_add_suite(sr, fn());
#include "suites.inc"
#undef SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
