#!/bin/sh
# Recall identity with deterministic builds (--build-threads 1: fixed seed + one thread =
# identical graphs): f32 vs u8 storage, one pass per ef (timings here are not the A/B).
B=${B:-/tmp/u8vec-bench}
C=/tmp/u8vec-idx
echo "# $(date -u +%FT%TZ) $(uname -n)"
for vt in f32 u8; do
  echo "## fashion vec-type $vt"
  $B --data $HOME/.cache/quiver-data/fashion-mnist-784 --index hnsw --m 12 --ef-construction 400 --quant bit1 \
     --vec-type $vt --ef 12,16,20,24,28,32,36,40,48 --threads 1 --build-threads 1 --runs 1 --index-cache $C 2>/dev/null
  echo "## sift vec-type $vt"
  $B --data /work/shared/data/sift-debian-100k --index hnsw --m 16 --ef-construction 200 --quant sq4 --oversampling 2 \
     --vec-type $vt --ef 16,20,24,28,32,40,48,56,64,80,96,128 --threads 1 --build-threads 1 --runs 1 --index-cache $C 2>/dev/null
done
echo "# end $(date -u +%FT%TZ)"
