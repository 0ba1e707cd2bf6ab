#!/bin/sh
# Quantized IVF against float IVF and Faiss 1.15's IVF-SQ8 / IVF-SQ4 / IVF-PQ fast-scan (issue 15).
# usage: bench/ivf_quant.sh DATA_DIR NLIST NPROBES [FAISS_DRIVER]
# One thread, one query per call, k = 10, same nlist and 20 k-means iterations everywhere.
# FAISS_DRIVER: faiss_ivf_sq_bench built from ../shared/peers/faiss_ivf_sq_bench.cpp (its
# header says how); skipped when absent. Run under the exclusive lock.
set -e
data=$1 nlist=$2 nprobes=$3 faiss=${4:-}
for q in none sq8 sq4 bit1; do
    build/quiver-bench --data "$data" --index ivf --nlist "$nlist" --nprobe "$nprobes" --quant $q --runs 3 \
        --build-threads 2 --threads 1 | grep -E '^(library|quiver)'
done
if [ -n "$faiss" ] && [ -x "$faiss" ]; then
    OMP_WAIT_POLICY=PASSIVE "$faiss" "$data" "$nlist" flat,sq8,sq8r,sq4r,pqfs
fi
