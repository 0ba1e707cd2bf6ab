#!/usr/bin/env python3
"""gpu/check/torch_bench.py -- the PyTorch side of `make gpu-check`, and the summary table.

Times exact k-NN the way one writes it in PyTorch -- D = ||x||^2 - 2 Q X^T (torch.addmm),
then torch.topk(k, largest=False) -- on the same shapes gpu-check used (read from its
results file: n, nq, dim), in FP32 (TF32 off), query chunks sized so the distance block
stays near 4 GiB; medians of three runs. Then prints the table of both, last. The data are fresh uniform [0, 1)
values on the device; only times are compared (correctness is gpu-check's job).
With --no-torch, or when torch or a CUDA device is missing, the torch column says why.
"""
import argparse
import sys
import time


def read_results(path):
    res = {}
    with open(path) as f:
        for line in f:
            if "\t" in line:
                key, val = line.rstrip("\n").split("\t", 1)
                res[key] = val
    return res


def torch_times(n, nq, dim, ks):
    import torch
    if not torch.cuda.is_available():
        return None, "torch has no CUDA device"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    g = torch.Generator(device=dev)
    g.manual_seed(int(time.time()))
    x = torch.rand(n, dim, device=dev, generator=g)
    q = torch.rand(nq, dim, device=dev, generator=g)
    xn = (x * x).sum(1)
    chunk = max(1, min(nq, (4 << 30) // (4 * n)))
    out = {}

    def run(k, matmul_only):
        for i in range(0, nq, chunk):
            qc = q[i:i + chunk]
            d = torch.addmm(xn.unsqueeze(0).expand(qc.shape[0], n), qc, x.t(), beta=1.0, alpha=-2.0)
            if not matmul_only:
                torch.topk(d, k, dim=1, largest=False, sorted=True)
        torch.cuda.synchronize()

    for label, k, mm in [("matmul", 10, True)] + [("k%d" % k, k, False) for k in ks]:
        run(k, mm)                                   # warm-up
        times = []
        for _ in range(3):                           # median of three, as gpu-check
            t0 = time.perf_counter()
            run(k, mm)
            times.append(time.perf_counter() - t0)
        out[label] = sorted(times)[1]
    return out, "torch %s, chunk %d queries" % (torch.__version__, chunk)


def fmt(v):
    return "%8.3f s" % v if isinstance(v, float) else "%10s" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    res = read_results(a.results)
    n, nq, dim = int(res.get("n", 0)), int(res.get("nq", 0)), int(res.get("dim", 0))
    ks = [10, 100]
    tt, note = None, "not run (--no-torch)"
    if not a.no_torch and n:
        try:
            tt, note = torch_times(n, nq, dim, ks)
        except Exception as e:                      # no torch, out of memory, ...
            tt, note = None, "torch failed: %s" % (str(e).splitlines()[0] if str(e) else type(e).__name__)

    def ours(key):
        v = res.get(key)
        try:
            return float(v)
        except (TypeError, ValueError):
            return v if v else "n/a"

    def theirs(key):
        return tt[key] if tt and key in tt else "n/a"

    print()
    print("gpu-check summary on %s: exact search n=%d x dim=%d, %d queries (FP32)"
          % (res.get("device", "?"), n, dim, nq))
    print("  %-40s %12s %12s" % ("", "quiver", "torch"))
    print("  %-40s %12s %12s" % ("(a) distances only: SGEMM / addmm", fmt(ours("gemm_s")), fmt(theirs("matmul"))))
    for k in ks:
        print("  %-40s %12s %12s" % ("(b/c) exact search k=%d" % k, fmt(ours("exact_k%d_s" % k)),
                                      fmt(theirs("k%d" % k))))
    for k in ks:
        g, e, tk = ours("gemm_s"), ours("exact_k%d_s" % k), theirs("k%d" % k)
        if isinstance(g, float) and isinstance(e, float):
            line = "  exact k=%d: %.2fx SGEMM alone (target <= 1.3)" % (k, e / g)
            if isinstance(tk, float):
                line += "; torch/quiver %.2fx" % (tk / e)
            print(line)
    print("  %-40s %12s" % ("exact k=10 TF32 (recall %s)" % res.get("tf32_recall", "n/a"), fmt(ours("tf32_k10_s"))))
    print("  %-40s %12s" % ("exact k=10 FP16 (recall %s)" % res.get("fp16_recall", "n/a"), fmt(ours("fp16_k10_s"))))
    print("  %-40s %12s" % ("exact k=10, database streamed from host", fmt(ours("stream_k10_s"))))
    print("  %-40s %12s" % ("sift-100k exact recall@10 = %s" % res.get("sift_recall", "skipped"),
                            fmt(ours("sift_exact_s"))))
    for p in (8, 32):
        print("  %-40s %12s" % ("sift-100k IVF nprobe=%d recall@10 = %s" % (p, res.get("ivf_np%d_recall" % p, "n/a")),
                                fmt(ours("ivf_np%d_s" % p))))
    print("  %-40s %12s %12s" % ("k-means %s: GPU / CPU" % res.get("km", ""), fmt(ours("kmeans_gpu_s")),
                                  fmt(ours("kmeans_cpu_s"))))
    print("  SGEMM tiles: %s; distance rel. error %s; k-means objective rel. diff %s; checks failed: %s"
          % (res.get("gemm_shape", "?"), res.get("exact_rel_err", "?"), res.get("kmeans_rel_diff", "?"),
             res.get("failures", "?")))
    print("  tiling sweep, fastest k=10 (0x0 = the default): %s" % res.get("sweep_best", "?"))
    print("  torch: %s" % note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
