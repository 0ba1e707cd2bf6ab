/*
 * gpu/gpu_loader.c -- the library's side of gpu/gpu.h: every call goes to the CUDA plugin
 * (gpu/gpu_plugin.h), loaded with dlopen on the first call that needs the device. Without
 * it -- a build without nvcc, QV_GPU=off, no plugin found, or a plugin of another ABI --
 * every call answers QV_ENODEV with the reason, and callers take the CPU path. Output
 * handles are set to NULL so that the callers' cleanup is the same either way.
 *
 * On a machine without an NVIDIA driver the plugin is not even loaded (loading it maps
 * cuBLAS, ~155 MB, only for the CUDA runtime to answer "no device"): the driver shows as
 * /dev/nvidiactl or /proc/driver/nvidia (/dev/dxg under WSL). QV_GPU=on skips that test
 * (a driver whose device nodes appear only on first use); QV_GPU_PLUGIN names a plugin
 * and skips it too.
 *
 * Where the plugin is looked for, in order (the first that loads wins):
 *   1. $QV_GPU_PLUGIN, a path, and nothing else when it is set;
 *   2. beside the module that holds this code (libquiver.so, or the program linked with
 *      libquiver.a): build/ for the programs built in the tree, LIBDIR once installed;
 *   3. the build directory and the install directory this library was built for
 *      (QV_GPU_PLUGIN_BUILD_DIR, QV_GPU_PLUGIN_LIBDIR: the Python module, a program
 *      linked elsewhere against build/libquiver.a or an installed libquiver.a);
 *   4. the dynamic loader's own search (LD_LIBRARY_PATH, ld.so.cache).
 */
#include "gpu/gpu_plugin.h"

#include <dlfcn.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "gpu/gpu_internal_host.h"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const qv_gpu_plugin *plugin;  /* written once under load_once */
static char load_why[1024];          /* why not, when !plugin */
static int tried;                    /* a load was attempted (load_why lists the tries) */

/* Open path and check its table: 1 when it fits. With keep, *keep is the table and the
 * handle stays open for good; without, the plugin is closed again (a trial). */
static int open_plugin(const char *path, const qv_gpu_plugin **keep, char *why, size_t len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, len, "%s", e ? e : "dlopen failed");
        return 0;
    }
    qv_gpu_plugin_fn fn = (qv_gpu_plugin_fn)(uintptr_t)dlsym(h, QV_GPU_PLUGIN_SYMBOL);
    const qv_gpu_plugin *p = fn ? fn() : NULL;
    int fits = 0;
    if (!p)
        snprintf(why, len, "not a Quiver GPU plugin (no %s)", QV_GPU_PLUGIN_SYMBOL);
    else if (p->abi != QV_GPU_PLUGIN_ABI || p->size != sizeof *p)
        snprintf(why, len, "GPU plugin ABI %u (%u bytes) of Quiver %s, this library needs ABI %u (%zu bytes)",
                 p->abi, p->size, p->version ? p->version : "?", QV_GPU_PLUGIN_ABI, sizeof *p);
    else
        fits = 1;
    if (fits && keep) {
        *keep = p;
        return 1;
    }
    dlclose(h);
    return fits;
}

int qv_gpu__plugin_try(const char *path)
{
    char why[512];
    if (open_plugin(path, NULL, why, sizeof why)) return QV_OK;
    return qv_fail(QV_ENODEV, "%s: %s", path, why);
}

#ifdef QV_HAVE_CUDA
/* Append "path: reason; " to load_why (truncated when full). */
static void note(const char *path, const char *reason)
{
    tried = 1;
    size_t n = strlen(load_why);
    if (n + 1 < sizeof load_why)
        snprintf(load_why + n, sizeof load_why - n, "%s%s%s%s", n ? "; " : "",
                 strncmp(reason, path, strlen(path)) ? path : "",       /* dlerror names it already */
                 strncmp(reason, path, strlen(path)) ? ": " : "", reason);
}

static int try_dir(const char *dir)
{
    char path[4096], why[512];
    if (!dir || !*dir) return 0;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, QV_GPU_PLUGIN_FILE) >= sizeof path) return 0;
    if (open_plugin(path, &plugin, why, sizeof why)) return 1;
    note(path, why);
    return 0;
}
#endif

static void load(void)
{
#ifndef QV_HAVE_CUDA
    snprintf(load_why, sizeof load_why,
             "this build of Quiver has no GPU support (nvcc was not found at build time, or USE_CUDA=no)");
#else
    char why[512];
    const char *env = getenv("QV_GPU_PLUGIN");
    if (env && *env) {
        if (!open_plugin(env, &plugin, why, sizeof why)) note(env, why);
        return;
    }
    if (!qv_gpu__env_on() && access("/dev/nvidiactl", F_OK) != 0 &&
        access("/proc/driver/nvidia", F_OK) != 0 && access("/dev/dxg", F_OK) != 0) {
        snprintf(load_why, sizeof load_why,
                 "no NVIDIA driver on this machine (no /dev/nvidiactl, /proc/driver/nvidia or /dev/dxg; "
                 "QV_GPU=on tries anyway)");
        return;
    }
    /* The module holding this code: a shared library's path from dladdr; for the program
     * itself dladdr gives argv[0] (maybe relative, maybe a bare name), so its path comes
     * from /proc/self/exe. */
    char dir[4096] = "";
    Dl_info info;
    struct link_map *lm = NULL;
    ssize_t n;
    if (dladdr1((void *)(uintptr_t)qv_gpu_probe, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm && lm->l_name &&
        lm->l_name[0] == '/')
        snprintf(dir, sizeof dir, "%s", lm->l_name);        /* a shared library (the program's is "") */
    else if ((n = readlink("/proc/self/exe", dir, sizeof dir - 1)) > 0)
        dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        if (try_dir(dir)) return;
    }
#ifdef QV_GPU_PLUGIN_BUILD_DIR
    if (try_dir(QV_GPU_PLUGIN_BUILD_DIR)) return;
#endif
#ifdef QV_GPU_PLUGIN_LIBDIR
    if (try_dir(QV_GPU_PLUGIN_LIBDIR)) return;
#endif
    if (open_plugin(QV_GPU_PLUGIN_FILE, &plugin, why, sizeof why)) return;
    note(QV_GPU_PLUGIN_FILE, why);
#endif
}

/* The plugin, or NULL (loaded on the first call; QV_GPU=off loads nothing). */
static const qv_gpu_plugin *get(void)
{
    if (qv_gpu__env_off()) return NULL;
    pthread_once(&load_once, load);
    return plugin;
}

static int no_gpu(void)
{
    if (qv_gpu__env_off()) return qv_fail(QV_ENODEV, "GPU disabled by QV_GPU=%s", getenv("QV_GPU"));
    pthread_once(&load_once, load);
    if (!tried) return qv_fail(QV_ENODEV, "%s", load_why);
    return qv_fail(QV_ENODEV, "the GPU plugin %s could not be loaded (%s)", QV_GPU_PLUGIN_FILE, load_why);
}

/* A call on a handle that is NULL (none was made): refused without loading anything. */
static int no_handle(void)
{
    return qv_fail(QV_EINVAL, "GPU call on a NULL handle");
}

/* A failed plugin call: its message, kept in the plugin's own thread-local buffer, into
 * this library's. */
static int relay(const qv_gpu_plugin *p, int rc)
{
    if (rc == QV_OK) return rc;
    char msg[512];
    const char *m = p->last_error();
    snprintf(msg, sizeof msg, "%s", m ? m : "");
    return qv_fail(rc, "%s", msg);
}

int qv_gpu_probe(void)
{
    const qv_gpu_plugin *p = get();
    return p ? p->probe() : 0;
}

int qv_gpu_require(void)
{
    const qv_gpu_plugin *p = get();
    return p ? relay(p, p->require()) : no_gpu();
}

int qv_gpu_available(void) { return qv_gpu_probe(); }

int qv_gpu_device_name(char *buf, size_t len)
{
    const qv_gpu_plugin *p = get();
    if (buf && len) buf[0] = '\0';
    return p ? relay(p, p->device_name(buf, len)) : no_gpu();
}

int qv_gpu_flat_new(size_t dim, qv_metric metric, const qv_gpu_options *o, qv_gpu_flat **out)
{
    const qv_gpu_plugin *p = get();
    if (out) *out = NULL;
    return p ? relay(p, p->flat_new(dim, metric, o, out)) : no_gpu();
}

int qv_gpu_flat_new_host(size_t dim, qv_metric metric, const qv_gpu_options *o, const float *x, size_t n,
                         qv_gpu_flat **out)
{
    const qv_gpu_plugin *p = get();
    if (out) *out = NULL;
    return p ? relay(p, p->flat_new_host(dim, metric, o, x, n, out)) : no_gpu();
}

/* A handle exists only if the plugin made it: plugin is set then (no env check, no load). */
void qv_gpu_flat_free(qv_gpu_flat *g)
{
    if (g && plugin) plugin->flat_free(g);
}

int qv_gpu_flat_add(qv_gpu_flat *g, size_t n, const float *x)
{
    return g && plugin ? relay(plugin, plugin->flat_add(g, n, x)) : no_handle();
}

int qv_gpu_flat_set(qv_gpu_flat *g, size_t row0, size_t n, const float *x)
{
    return g && plugin ? relay(plugin, plugin->flat_set(g, row0, n, x)) : no_handle();
}

int qv_gpu_flat_truncate(qv_gpu_flat *g, size_t n)
{
    return g && plugin ? relay(plugin, plugin->flat_truncate(g, n)) : no_handle();
}

size_t qv_gpu_flat_size(const qv_gpu_flat *g) { return g && plugin ? plugin->flat_size(g) : 0; }

size_t qv_gpu_flat_memory(const qv_gpu_flat *g) { return g && plugin ? plugin->flat_memory(g) : 0; }

int qv_gpu_flat_knn(qv_gpu_flat *g, size_t nq, const float *q, size_t k, float *dist, int64_t *rows)
{
    return g && plugin ? relay(plugin, plugin->flat_knn(g, nq, q, k, dist, rows)) : no_handle();
}

int qv_gpu_kmeans(const qv_gpu_kmeans_params *prm, size_t n, size_t dim, const float *x, size_t k,
                  float *centroids, double *objective)
{
    const qv_gpu_plugin *p = get();
    if (p) return relay(p, p->kmeans(prm, n, dim, x, k, centroids, objective));
    if (objective) *objective = NAN;
    return no_gpu();
}

int qv_gpu_ivf_new(size_t dim, qv_metric metric, size_t nlist, const float *centroids, const qv_gpu_options *o,
                   qv_gpu_ivf **out)
{
    const qv_gpu_plugin *p = get();
    if (out) *out = NULL;
    return p ? relay(p, p->ivf_new(dim, metric, nlist, centroids, o, out)) : no_gpu();
}

void qv_gpu_ivf_free(qv_gpu_ivf *g)
{
    if (g && plugin) plugin->ivf_free(g);
}

int qv_gpu_ivf_set_lists(qv_gpu_ivf *g, const uint64_t *offsets, const float *vecs)
{
    return g && plugin ? relay(plugin, plugin->ivf_set_lists(g, offsets, vecs)) : no_handle();
}

int qv_gpu_ivf_probe(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe, float *dist, int64_t *lists)
{
    return g && plugin ? relay(plugin, plugin->ivf_probe(g, nq, q, nprobe, dist, lists)) : no_handle();
}

int qv_gpu_ivf_search(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe, size_t k, float *dist,
                      int64_t *rows)
{
    return g && plugin ? relay(plugin, plugin->ivf_search(g, nq, q, nprobe, k, dist, rows)) : no_handle();
}
