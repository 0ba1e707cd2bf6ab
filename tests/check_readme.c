/*
 * tests/check_readme.c -- the README's C example is real: the block in README.md is
 * byte-for-byte tests/readme/example.c, and the compiled example runs and prints what the
 * README says it prints.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(test_readme_block_is_the_example)
{
    char *readme = slurp("README.md"), *example = slurp("tests/readme/example.c");
    ck_assert_ptr_nonnull(readme);
    if (!example) {
        free(readme);
        test_skip(TEST_SKIP_MISSING, "readme: tests/readme/example.c missing");
        return;
    }
    const char *marker = strstr(readme, "<!-- readme-example");
    ck_assert_msg(marker != NULL, "README.md lacks the readme-example marker");
    const char *start = strstr(marker, "```c\n");
    ck_assert_ptr_nonnull(start);
    start += 5;
    const char *end = strstr(start, "```\n");
    ck_assert_ptr_nonnull(end);
    size_t len = (size_t)(end - start);
    ck_assert_msg(len == strlen(example) && memcmp(start, example, len) == 0,
                  "the C block in README.md differs from tests/readme/example.c");
    free(readme);
    free(example);
}
END_TEST

START_TEST(test_readme_example_runs)
{
    char bin[512], cmd[12288];
    snprintf(bin, sizeof bin, "%s/readme-example", build_dir());
    if (access(bin, X_OK) != 0) {
        test_skip(TEST_SKIP_MISSING, "readme: %s not built", bin);
        return;
    }
    char *dir = make_tmpdir("qv-readme");
    char out[4096];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(cmd, sizeof cmd, "%s %s/db > %s 2>&1", bin, dir, out);
    int st = system(cmd);
    char *text = slurp(out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "example failed: %s", text ? text : "");
    /* what the README says it prints: the two nearest points, nearest first */
    ck_assert_msg(text && strcmp(text, "id 1 score 0.999\nid 3 score 0.998\n") == 0,
                  "the example printed '%s', not the README's 'id 1 score 0.999', 'id 3 score 0.998'", text ? text : "");
    free(text);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_readme_suite(void)
{
    Suite *s = suite_create("readme");
    TCase *tc = tcase_create("readme");
    tcase_add_test(tc, test_readme_block_is_the_example);
    tcase_add_test(tc, test_readme_example_runs);
    suite_add_tcase(s, tc);
    return s;
}
