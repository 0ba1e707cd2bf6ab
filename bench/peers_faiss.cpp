/*
 * bench/peers_faiss.cpp -- Faiss (Debian libfaiss-dev, static libfaiss.a on OpenBLAS and
 * OpenMP) as a bench engine:
 *   --index flat  IndexFlatL2 / IndexFlatIP
 *   --index hnsw  IndexHNSWFlat(d, M, metric), hnsw.efConstruction, hnsw.efSearch per sweep
 *   --index ivf   IndexIVFFlat over an IndexFlat quantizer, nlist and k-means iterations
 *                 and seed the same as Quiver's, 256 training points per centroid (both
 *                 libraries' default), nprobe per sweep
 * Cosine is inner product on the unit vectors the bench hands over.
 *
 * Threads: Faiss parallelizes with OpenMP inside each call. The build and the batch
 * search run with omp_set_num_threads(threads) on the main thread. In single-query mode
 * every search thread sets its own OpenMP team size to 1 (the ICV is per thread), so the
 * --threads search threads do not each fork a team and oversubscribe the cores; that is
 * also how ann-benchmarks runs Faiss one query at a time. Flat batch search goes through
 * BLAS sgemm: the bench checks in /proc/self/maps that it is OpenBLAS. Idle OpenMP
 * workers spin (libgomp's default) and steal cores from OpenBLAS's own threads; run with
 * OMP_WAIT_POLICY=PASSIVE to compare (the header prints the setting).
 *
 * Memory: the size of the index serialized by faiss::write_index (vectors, graph or
 * lists, ids), which is what Faiss itself holds, without allocator slack.
 */
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/utils/utils.h>
#include <omp.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "bench/peers.h"

namespace {

const size_t ADD_CHUNK = 10000;

struct FaissPeer {
    std::unique_ptr<faiss::Index> index;
    faiss::IndexHNSW *hnsw = nullptr;        /* views into index, or null */
    faiss::IndexIVF *ivf = nullptr;
    size_t dim = 0;
    uint32_t search_threads = 1;
};

FaissPeer *peer(bench_engine *e) { return reinterpret_cast<FaissPeer *>(e); }

void set_err(char *err, size_t errlen, const char *what, const char *detail)
{
    std::snprintf(err, errlen, "faiss %s: %s", what, detail);
}

const char *faiss_describe(void)
{
    static std::string text;
    if (text.empty()) {
        char buf[256];
        std::string opts = faiss::get_compile_options();
        while (!opts.empty() && opts.back() == ' ') opts.pop_back();
        std::snprintf(buf, sizeof buf, "faiss %d.%d.%d (libfaiss-dev, compile options: %s), OpenMP max threads %d",
                      FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR, FAISS_VERSION_PATCH, opts.c_str(),
                      omp_get_max_threads());
        text = buf;
    }
    return text.c_str();
}

int faiss_build(const bench_build_params *p, size_t n, const float *base, bench_engine **out, char *err,
                size_t errlen)
{
    *out = nullptr;
    const faiss::MetricType metric = p->metric == QV_METRIC_L2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
    try {
        std::unique_ptr<FaissPeer> e(new FaissPeer());
        e->dim = p->dim;
        omp_set_num_threads((int)(p->threads ? p->threads : 1));
        switch (p->kind) {
        case QV_INDEX_FLAT:
            if (metric == faiss::METRIC_L2) e->index.reset(new faiss::IndexFlatL2(p->dim));
            else e->index.reset(new faiss::IndexFlatIP(p->dim));
            break;
        case QV_INDEX_HNSW: {
            auto *h = new faiss::IndexHNSWFlat((int)p->dim, (int)p->m, metric);
            e->index.reset(h);
            h->hnsw.efConstruction = (int)p->ef_construction;
            e->hnsw = h;
            break;
        }
        case QV_INDEX_IVF: {
            faiss::Index *quantizer = metric == faiss::METRIC_L2
                                          ? static_cast<faiss::Index *>(new faiss::IndexFlatL2(p->dim))
                                          : static_cast<faiss::Index *>(new faiss::IndexFlatIP(p->dim));
            auto *ivf = new faiss::IndexIVFFlat(quantizer, p->dim, p->nlist, metric);
            ivf->own_fields = true;
            e->index.reset(ivf);
            ivf->cp.niter = (int)p->kmeans_iters;
            ivf->cp.seed = (int)p->seed;
            ivf->cp.max_points_per_centroid = 256;
            ivf->cp.verbose = false;
            e->ivf = ivf;
            if (p->progress) p->progress("train", 0, n, p->progress_arg);
            ivf->train((faiss::Index::idx_t)n, base);
            break;
        }
        default:
            set_err(err, errlen, "build", "unknown index kind");
            return -1;
        }
        for (size_t done = 0; done < n;) {
            size_t chunk = n - done < ADD_CHUNK ? n - done : ADD_CHUNK;
            e->index->add((faiss::Index::idx_t)chunk, base + done * p->dim);
            done += chunk;
            if (p->progress) p->progress("add", done, n, p->progress_arg);
        }
        *out = reinterpret_cast<bench_engine *>(e.release());
        return 0;
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "build", "out of memory");
    } catch (const std::exception &ex) {
        set_err(err, errlen, "build", ex.what());
    }
    return -1;
}

int faiss_prepare(bench_engine *be, uint32_t ef, uint32_t nprobe, uint32_t threads, int batch, char *err,
                  size_t errlen)
{
    (void)err; (void)errlen;
    FaissPeer *e = peer(be);
    if (e->hnsw && ef) e->hnsw->hnsw.efSearch = (int)ef;
    if (e->ivf && nprobe) e->ivf->nprobe = nprobe;
    e->search_threads = threads ? threads : 1;
    omp_set_num_threads(batch ? (int)e->search_threads : 1);
    return 0;
}

int faiss_search_one(bench_engine *be, const float *q, uint32_t k, int64_t *ids, char *err, size_t errlen)
{
    float dist[QV_MAX_K];
    faiss::Index::idx_t labels[QV_MAX_K];
    if (omp_get_max_threads() != 1) omp_set_num_threads(1);   /* this thread's own ICV */
    try {
        peer(be)->index->search(1, q, k, dist, labels);
        for (uint32_t i = 0; i < k; i++) ids[i] = labels[i] < 0 ? -1 : (int64_t)labels[i];
        return 0;
    } catch (const std::exception &ex) {
        set_err(err, errlen, "search", ex.what());
    }
    return -1;
}

int faiss_search_batch(bench_engine *be, size_t nq, const float *q, uint32_t k, int64_t *ids, char *err,
                       size_t errlen)
{
    FaissPeer *e = peer(be);
    try {
        std::vector<float> dist(nq * k);
        std::vector<faiss::Index::idx_t> labels(nq * k);
        omp_set_num_threads((int)e->search_threads);
        e->index->search((faiss::Index::idx_t)nq, q, k, dist.data(), labels.data());
        for (size_t i = 0; i < nq * k; i++) ids[i] = labels[i] < 0 ? -1 : (int64_t)labels[i];
        return 0;
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "search", "out of memory");
    } catch (const std::exception &ex) {
        set_err(err, errlen, "search", ex.what());
    }
    return -1;
}

size_t faiss_memory(bench_engine *be, const char **source)
{
    try {
        faiss::VectorIOWriter w;
        faiss::write_index(peer(be)->index.get(), &w);
        *source = "faiss_serialized";
        return w.data.size();
    } catch (const std::exception &) {
        *source = "unknown";
        return 0;
    }
}

void faiss_destroy(bench_engine *be) { delete peer(be); }

} // namespace

extern "C" const bench_engine_ops bench_faiss_ops = {
    "faiss", faiss_describe, faiss_build, faiss_prepare, faiss_search_one,
    faiss_search_batch, faiss_memory, faiss_destroy, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
    nullptr,
};
