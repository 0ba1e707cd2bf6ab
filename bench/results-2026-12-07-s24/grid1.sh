#!/bin/sh
# grid of build/explore configs on use-512, alternated rounds; label = config
OUT=/work/notes/s24/grid1-use.txt
D=/root/.cache/quiver-data/debian-use-512
B=/work/notes/s24/qb-base
for r in 1 2 3; do
 for cfg in "12 400 0.85" "12 800 0.85" "12 800 0.7" "14 400 0.85" "14 400 0.65" "16 400 0.6" "16 400 0.85" "20 400 0.5" "20 400 0.7"; do
  set -- $cfg
  /work/helpers/cpu-bench $B --data $D --index hnsw --m $1 --ef-construction $2 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore $3 --ef 8,9,10,11,12,13,14,16,20 --threads 1 --runs 7 2>/dev/null | grep ^quiver | awk -v n="m$1-efc$2-x$3" -v r=$r '{print n, r, $0}' >> $OUT
 done
done
echo DONE >> $OUT
