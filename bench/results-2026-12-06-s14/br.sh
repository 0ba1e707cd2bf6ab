#!/bin/sh
for i in 1 2; do
for e in "QV_TIME=1" "QV_REPEAT=1" "QV_REPEAT=1 QV_FLUSH=48" "QV_REPEAT=0 QV_FLUSH=48"; do
  echo "$e: $(env $e /work/wt-s14/build/quiver-bench --data $HOME/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --explore 1 --ef 10 --threads 1 --runs 1 --index-cache /tmp/s10-use 2>&1 | grep '^walk' | tail -1)"
done; done
