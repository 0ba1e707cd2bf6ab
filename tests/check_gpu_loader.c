/*
 * tests/check_gpu_loader.c -- suite "gpu_loader": the library loads its CUDA plugin
 * (gpu/gpu_plugin.h) only when a GPU function is first called, so a process that never
 * asks for the GPU never maps cuBLAS; the plugin is found beside the program; a file that
 * is missing or not a plugin is refused with QV_ENODEV and a reason; without an NVIDIA
 * driver it is not loaded at all, unless QV_GPU=on. Runs on any machine: a CUDA build
 * without a device still loads its plugin (QV_GPU=on), which answers "no device" itself.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu/gpu_plugin.h"
#include "test_util.h"

extern Suite *qv_gpu_loader_suite(void);   /* "extern": the Makefile lists definitions only */

/* Whether a mapped file of this process has `name` in its path. */
static int mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    ck_assert_ptr_nonnull(f);
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

START_TEST(test_cuda_mapped_only_with_the_plugin)
{
    /* Whatever ran before in this process: cuBLAS or the CUDA runtime only came in with
     * the plugin (the library itself does not link them). */
    if (!mapped(QV_GPU_PLUGIN_FILE)) {
        ck_assert_msg(!mapped("libcublas"), "cuBLAS is mapped without the GPU plugin");
        ck_assert_msg(!mapped("libcudart"), "the CUDA runtime is mapped without the GPU plugin");
    }
    if (getenv("QV_GPU") || getenv("QV_GPU_PLUGIN")) return;   /* not the default search below */
    int rc = qv_gpu_require();
#ifdef QV_HAVE_CUDA
    int driver = access("/dev/nvidiactl", F_OK) == 0 || access("/proc/driver/nvidia", F_OK) == 0 ||
                 access("/dev/dxg", F_OK) == 0;
    if (driver) {
        /* The plugin beside the test program loads, device or not; without a usable device
         * the reason is the plugin's own (the CUDA runtime's), not a failed load. */
        ck_assert_msg(mapped(QV_GPU_PLUGIN_FILE), "the GPU plugin was not loaded: %s", qv_last_error());
        if (rc != QV_OK) ck_assert_msg(!strstr(qv_last_error(), "could not be loaded"), "%s", qv_last_error());
    } else {
        /* No driver: the plugin (and cuBLAS) stay out of the process. */
        QV_CK_FAIL(rc, QV_ENODEV);
        ck_assert_msg(strstr(qv_last_error(), "no NVIDIA driver") != NULL, "%s", qv_last_error());
        ck_assert_msg(!mapped(QV_GPU_PLUGIN_FILE), "the GPU plugin was loaded without a driver");
    }
#else
    QV_CK_FAIL(rc, QV_ENODEV);
    ck_assert_msg(strstr(qv_last_error(), "no GPU support") != NULL, "%s", qv_last_error());
    ck_assert_msg(!mapped(QV_GPU_PLUGIN_FILE), "a build without CUDA loaded a GPU plugin");
#endif
}
END_TEST

START_TEST(test_plugin_try_refuses)
{
    QV_CK_FAIL(qv_gpu__plugin_try("/nonexistent/dir/" QV_GPU_PLUGIN_FILE), QV_ENODEV);
    ck_assert_msg(strstr(qv_last_error(), "/nonexistent/dir/") != NULL, "%s", qv_last_error());
    /* A shared object that loads but is no plugin. */
    QV_CK_FAIL(qv_gpu__plugin_try("libm.so.6"), QV_ENODEV);
    ck_assert_msg(strstr(qv_last_error(), "not a Quiver GPU plugin") != NULL, "%s", qv_last_error());
    /* A file that is not a shared object at all. */
    char path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
    ck_assert_int_gt(n, 0);
    path[n] = '\0';
    QV_CK_FAIL(qv_gpu__plugin_try("/proc/self/maps"), QV_ENODEV);
#ifdef QV_HAVE_CUDA
    /* The plugin this build made, beside the test program: it fits. */
    char *slash = strrchr(path, '/');
    ck_assert_ptr_nonnull(slash);
    snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "%s", QV_GPU_PLUGIN_FILE);
    QV_CK(qv_gpu__plugin_try(path));
#endif
}
END_TEST

/* QV_GPU=on loads the plugin even without a driver. The load happens once a process, so
 * this runs in a fresh one: the test program again, this case only, with QV_GPU=on and
 * QV_TEST_LOADER_CHILD set; there the plugin must be mapped and answer for itself. */
START_TEST(test_on_loads_the_plugin)
{
#ifndef QV_HAVE_CUDA
    /* No plugin was built: QV_GPU=on changes nothing, and nothing is looked for. */
    setenv("QV_GPU", "on", 1);
    QV_CK_FAIL(qv_gpu_require(), QV_ENODEV);
    ck_assert_msg(strstr(qv_last_error(), "no GPU support") != NULL, "%s", qv_last_error());
    ck_assert_msg(!mapped(QV_GPU_PLUGIN_FILE), "a build without CUDA loaded a GPU plugin");
    unsetenv("QV_GPU");
#else
    if (getenv("QV_TEST_LOADER_CHILD")) {
        int rc = qv_gpu_require();
        ck_assert_msg(mapped(QV_GPU_PLUGIN_FILE), "QV_GPU=on did not load the plugin: %s", qv_last_error());
        if (rc != QV_OK) ck_assert_msg(!strstr(qv_last_error(), "could not be loaded"), "%s", qv_last_error());
        return;
    }
    if (getenv("QV_GPU_PLUGIN")) return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("QV_GPU", "on", 1);
        setenv("QV_TEST_LOADER_CHILD", "1", 1);
        setenv("CK_RUN_SUITE", "gpu_loader", 1);
        setenv("CK_RUN_CASE", "forced", 1);
        execl(exe, exe, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the QV_GPU=on run failed (status %d; its output above)", st);
#endif
}
END_TEST

Suite *qv_gpu_loader_suite(void)
{
    Suite *s = suite_create("gpu_loader");
    TCase *tc = tcase_create("loader");
    tcase_add_test(tc, test_cuda_mapped_only_with_the_plugin);
    tcase_add_test(tc, test_plugin_try_refuses);
    suite_add_tcase(s, tc);
    tc = tcase_create("forced");
    tcase_add_test(tc, test_on_loads_the_plugin);
    suite_add_tcase(s, tc);
    return s;
}
