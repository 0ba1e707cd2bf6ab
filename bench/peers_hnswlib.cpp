/*
 * bench/peers_hnswlib.cpp -- hnswlib (Debian libhnswlib-dev, header only) as a bench
 * engine: hnswlib::HierarchicalNSW<float> for --index hnsw, hnswlib::BruteforceSearch
 * for --index flat, on L2Space or InnerProductSpace (cosine = inner product on the unit
 * vectors the bench hands over).
 *
 * Build: the first point alone, then addPoint from --build-threads threads pulling row
 * numbers from one atomic counter (what hnswlib's own Python binding does). Search:
 * searchKnn, which is const and safe from many threads; setEf() is global to the index,
 * so it is set in prepare(), between sweep points. hnswlib has no batch call: the batch
 * mode runs searchKnn over the queries on --threads threads, as the Python binding's
 * knn_query does.
 *
 * Memory: computed from hnswlib's own (public) fields: the level-0 block, the upper-level
 * link lists and the per-element arrays; the label hash map is estimated per element.
 * Compiled with -O3 -march=native: hnswlib picks SSE/AVX/AVX-512 at compile time.
 * Filtered search: through deletion marks (see hnswlib_set_filter).
 * hnswlib defines non-inline functions in its headers, so only this file includes them.
 */
#include <hnswlib/hnswlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "bench/peers.h"

namespace {

struct HnswPeer {
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;   /* hnsw */
    std::unique_ptr<hnswlib::BruteforceSearch<float>> brute;  /* flat */
    hnswlib::AlgorithmInterface<float> *alg = nullptr;
    size_t dim = 0, n = 0;
    uint32_t search_threads = 1;
};

HnswPeer *peer(bench_engine *e) { return reinterpret_cast<HnswPeer *>(e); }

void set_err(char *err, size_t errlen, const char *what, const char *detail)
{
    std::snprintf(err, errlen, "hnswlib %s: %s", what, detail);
}

/* Run fn(i) for i in [0, n) on `threads` threads; the first exception is rethrown. */
template <typename Fn>
void parallel_for(size_t n, uint32_t threads, Fn fn)
{
    std::atomic<size_t> next(0);
    std::exception_ptr failure;
    std::atomic<bool> failed(false);
    auto body = [&]() {
        for (;;) {
            size_t i = next.fetch_add(1);
            if (i >= n || failed.load()) return;
            try {
                fn(i);
            } catch (...) {
                if (!failed.exchange(true)) failure = std::current_exception();
                return;
            }
        }
    };
    if (threads <= 1 || n < 2) {
        body();
    } else {
        std::vector<std::thread> pool;
        for (uint32_t t = 1; t < threads; t++) pool.emplace_back(body);
        body();
        for (auto &th : pool) th.join();
    }
    if (failure) std::rethrow_exception(failure);
}

void results_to_ids(std::priority_queue<std::pair<float, hnswlib::labeltype>> &res, uint32_t k, int64_t *ids)
{
    /* The queue pops the worst first. */
    for (uint32_t i = 0; i < k; i++) ids[i] = -1;
    size_t found = res.size() < k ? res.size() : k;
    while (res.size() > found) res.pop();
    for (size_t i = found; i-- > 0;) {
        ids[i] = (int64_t)res.top().second;
        res.pop();
    }
}

const char *hnswlib_describe(void)
{
#if defined(USE_AVX512)
    return "hnswlib (libhnswlib-dev headers, -O3 -march=native, AVX-512 kernels)";
#elif defined(USE_AVX)
    return "hnswlib (libhnswlib-dev headers, -O3 -march=native, AVX kernels)";
#elif defined(USE_SSE)
    return "hnswlib (libhnswlib-dev headers, -O3 -march=native, SSE kernels)";
#else
    return "hnswlib (libhnswlib-dev headers, -O3, scalar kernels)";
#endif
}

/* A peer of n rows with its space; the index itself is made by the caller. */
std::unique_ptr<HnswPeer> new_peer(const bench_build_params *p, size_t n)
{
    std::unique_ptr<HnswPeer> e(new HnswPeer());
    e->dim = p->dim;
    e->n = n;
    if (p->metric == QV_METRIC_L2) e->space.reset(new hnswlib::L2Space(p->dim));
    else e->space.reset(new hnswlib::InnerProductSpace(p->dim));
    return e;
}

int hnswlib_build(const bench_build_params *p, size_t n, const float *base, bench_engine **out, char *err,
                  size_t errlen)
{
    *out = nullptr;
    if (p->kind == QV_INDEX_IVF) {
        set_err(err, errlen, "build", "no ivf index in hnswlib");
        return -1;
    }
    try {
        std::unique_ptr<HnswPeer> e = new_peer(p, n);
        if (p->kind == QV_INDEX_HNSW) {
            e->graph.reset(new hnswlib::HierarchicalNSW<float>(e->space.get(), n, p->m, p->ef_construction, p->seed));
            e->alg = e->graph.get();
        } else {
            e->brute.reset(new hnswlib::BruteforceSearch<float>(e->space.get(), n));
            e->alg = e->brute.get();
        }
        hnswlib::AlgorithmInterface<float> *alg = e->alg;
        const size_t dim = p->dim;
        std::atomic<size_t> done(0);
        if (n > 0) alg->addPoint(base, 0);                  /* the entry point, alone */
        parallel_for(n > 0 ? n - 1 : 0, p->kind == QV_INDEX_HNSW ? p->threads : 1, [&](size_t i) {
            alg->addPoint(base + (i + 1) * dim, i + 1);
            size_t d = done.fetch_add(1) + 2;
            if (p->progress && (d % 10000 == 0 || d == n)) p->progress("add", d, n, p->progress_arg);
        });
        *out = reinterpret_cast<bench_engine *>(e.release());
        return 0;
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "build", "out of memory");
    } catch (const std::exception &ex) {
        set_err(err, errlen, "build", ex.what());
    }
    return -1;
}

int hnswlib_prepare(bench_engine *be, uint32_t ef, uint32_t nprobe, uint32_t threads, int batch, char *err,
                    size_t errlen)
{
    (void)nprobe; (void)batch; (void)err; (void)errlen;
    HnswPeer *e = peer(be);
    if (e->graph && ef) e->graph->setEf(ef);
    e->search_threads = threads ? threads : 1;
    return 0;
}

int hnswlib_search_one(bench_engine *be, const float *q, uint32_t k, int64_t *ids, char *err, size_t errlen)
{
    try {
        auto res = peer(be)->alg->searchKnn(q, k);
        results_to_ids(res, k, ids);
        return 0;
    } catch (const std::exception &ex) {
        set_err(err, errlen, "search", ex.what());
    }
    return -1;
}

int hnswlib_search_batch(bench_engine *be, size_t nq, const float *q, uint32_t k, int64_t *ids, char *err,
                         size_t errlen)
{
    HnswPeer *e = peer(be);
    try {
        parallel_for(nq, e->search_threads, [&](size_t i) {
            auto res = e->alg->searchKnn(q + i * e->dim, k);
            results_to_ids(res, k, ids + i * k);
        });
        return 0;
    } catch (const std::exception &ex) {
        set_err(err, errlen, "search", ex.what());
    }
    return -1;
}

size_t hnswlib_memory(bench_engine *be, const char **source)
{
    HnswPeer *e = peer(be);
    /* An unordered_map node (next pointer, key, value, cached hash) plus its bucket slot. */
    const size_t label_map = e->n * (4 * sizeof(void *) + sizeof(void *));
    if (e->graph) {
        const hnswlib::HierarchicalNSW<float> &g = *e->graph;
        size_t bytes = g.max_elements_ * g.size_data_per_element_;          /* vectors + level-0 links */
        for (size_t i = 0; i < g.cur_element_count; i++)
            if (g.element_levels_[i] > 0) bytes += g.size_links_per_element_ * (size_t)g.element_levels_[i];
        bytes += g.max_elements_ * (sizeof(char *) + sizeof(int) + sizeof(std::mutex));
        bytes += label_map;
        *source = "hnswlib_struct";
        return bytes;
    }
    *source = "hnswlib_struct";
    return e->n * (e->dim * sizeof(float) + sizeof(hnswlib::labeltype)) + label_map;
}

/* hnswlib 0.6.2 (Debian) has no filter functor (searchKnn(query, k, isIdAllowed) came in
 * 0.7.0), but its deletion marks work the same way: searchBaseLayerST<has_deletions>
 * walks through marked nodes and keeps only unmarked ones as results, and goes on until
 * ef unmarked ones are found. 0.7.0's filter runs that very loop with the functor as one
 * more test. So the rows outside the allowed set are marked before the sweep and
 * unmarked after (not timed). Flat (BruteforceSearch) has no marks: no filtered rows. */
int hnswlib_set_filter(bench_engine *be, const bench_filter *f, char *err, size_t errlen)
{
    HnswPeer *e = peer(be);
    if (!e->graph) return f ? 1 : 0;
    try {
        hnswlib::HierarchicalNSW<float> &g = *e->graph;
        for (size_t id = 0; id < e->n; id++) {
            auto it = g.label_lookup_.find((hnswlib::labeltype)id);
            if (it == g.label_lookup_.end()) continue;
            bool pass = !f || (id < f->allow_nbits && (f->allow_bits[id / 64] >> (id % 64) & 1));
            bool marked = g.isMarkedDeleted(it->second);
            if (!pass && !marked) g.markDeletedInternal(it->second);
            else if (pass && marked) g.unmarkDeletedInternal(it->second);
        }
        return 0;
    } catch (const std::exception &ex) {
        set_err(err, errlen, "filter", ex.what());
    }
    return -1;
}

/* Save with saveIndex, drop the index, and time its loading constructor (what a program
 * restarting on a saved hnswlib index runs: the file is read into memory and the label
 * map rebuilt). */
int hnswlib_reload(bench_engine *be, const char *dir, double *open_s, char *err, size_t errlen)
{
    HnswPeer *e = peer(be);
    if (!e->graph) {
        set_err(err, errlen, "reload", "only hnsw indexes are reloaded");
        return -1;
    }
    std::string path = std::string(dir) + "/hnswlib-bench-" + std::to_string((long)getpid()) + ".bin";
    try {
        e->graph->saveIndex(path);
        e->alg = nullptr;
        e->graph.reset();
        auto t0 = std::chrono::steady_clock::now();
        e->graph.reset(new hnswlib::HierarchicalNSW<float>(e->space.get(), path, false, e->n));
        *open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        e->alg = e->graph.get();
        std::remove(path.c_str());
        return 0;
    } catch (const std::exception &ex) {
        std::remove(path.c_str());
        set_err(err, errlen, "reload", ex.what());
    }
    return -1;
}

int hnswlib_save(bench_engine *be, const char *path, char *err, size_t errlen)
{
    HnswPeer *e = peer(be);
    if (!e->graph) {
        set_err(err, errlen, "save", "only hnsw indexes are saved");
        return -1;
    }
    try {
        e->graph->saveIndex(path);
        return 0;
    } catch (const std::exception &ex) {
        set_err(err, errlen, "save", ex.what());
    }
    return -1;
}

/* The loading constructor, as hnswlib_reload times it. */
int hnswlib_load(const bench_build_params *p, size_t n, const char *path, bench_engine **out, char *err,
                 size_t errlen)
{
    *out = nullptr;
    if (p->kind != QV_INDEX_HNSW) {
        set_err(err, errlen, "load", "only hnsw indexes are loaded");
        return -1;
    }
    try {
        std::unique_ptr<HnswPeer> e = new_peer(p, n);
        e->graph.reset(new hnswlib::HierarchicalNSW<float>(e->space.get(), path, false, n));
        e->alg = e->graph.get();
        *out = reinterpret_cast<bench_engine *>(e.release());
        return 0;
    } catch (const std::exception &ex) {
        set_err(err, errlen, "load", ex.what());
    }
    return -1;
}

void hnswlib_destroy(bench_engine *be) { delete peer(be); }

} // namespace

extern "C" const bench_engine_ops bench_hnswlib_ops = {
    "hnswlib", hnswlib_describe, hnswlib_build, hnswlib_prepare, hnswlib_search_one,
    hnswlib_search_batch, hnswlib_memory, hnswlib_destroy, hnswlib_set_filter, "filter", "unfiltered",
    hnswlib_reload, nullptr, hnswlib_save, hnswlib_load,
};
