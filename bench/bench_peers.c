/*
 * bench/bench_peers.c -- which engines a run measures: Quiver (unless --peers-only), then
 * the requested peers in a fixed order. A peer is compiled in only when its Debian
 * package's headers were found at build time (bench/bench.mk defines
 * QV_BENCH_HAVE_HNSWLIB / QV_BENCH_HAVE_FAISS); asking for a missing one is an error that
 * names the package, not a silently shorter run.
 */
#include "bench/bench.h"

#ifdef QV_BENCH_HAVE_HNSWLIB
#define HNSWLIB_OPS (&bench_hnswlib_ops)
#else
#define HNSWLIB_OPS NULL
#endif
#ifdef QV_BENCH_HAVE_FAISS
#define FAISS_OPS (&bench_faiss_ops)
#else
#define FAISS_OPS NULL
#endif

static const struct {
    unsigned flag;
    const char *name, *package;
    const bench_engine_ops *ops;
} peers[] = {
    {BENCH_PEER_HNSWLIB, "hnswlib", "libhnswlib-dev", HNSWLIB_OPS},
    {BENCH_PEER_FAISS, "faiss", "libfaiss-dev", FAISS_OPS},
};

int bench_select_engines(const bench_opts *o, const bench_engine_ops **out, size_t cap, size_t *n,
                         char *err, size_t errlen)
{
    size_t count = 0;
    if (!o->no_quiver && count < cap) out[count++] = &bench_quiver_ops;
    for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
        if (!(o->peers & peers[i].flag)) continue;
        if (!peers[i].ops) {
            snprintf(err, errlen,
                     "--peers %s: quiver-bench was built without %s (install the Debian package %s "
                     "and rebuild)", peers[i].name, peers[i].name, peers[i].package);
            return -1;
        }
        if (peers[i].flag == BENCH_PEER_HNSWLIB && o->kind == QV_INDEX_IVF) {
            fprintf(stderr, "quiver-bench: note: hnswlib has no ivf index; skipped\n");
            continue;
        }
        if (count < cap) out[count++] = peers[i].ops;
    }
    *n = count;
    return 0;
}
