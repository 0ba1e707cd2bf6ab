#!/bin/sh
D=$HOME/.cache/quiver-data/debian-desc-384; S=/work/shared/data/sift-debian-100k
for r in 1 2 3; do
 for v in A B; do
  if [ $v = A ]; then b=/work/integ/build/quiver-bench; else b=/tmp/varB/build/quiver-bench; fi
  echo "## round $r $v desc"; $b --data $D --index hnsw --m 16 --ef-construction 800 --quant sq8 --oversampling 2.5 --ef 32,40,48,64 --threads 1 --runs 5 --index-cache /tmp/coord-idx 2>/dev/null | grep ^quiver | awk '{print $4,$7,$8}'
  echo "## round $r $v sift"; $b --data $S --index hnsw --m 16 --quant sq4 --oversampling 3 --ef 48,56,64,72,80 --threads 1 --runs 5 --index-cache /tmp/coord-idx 2>/dev/null | grep ^quiver | awk '{print $4,$7,$8}'
 done
done
