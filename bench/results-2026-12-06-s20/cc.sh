#!/bin/sh
# cc.sh OUT ROUNDS: quiver gcc/clang and SymphonyQG gcc/clang on debian-use-512, alternated, each under the exclusive lock
OUT=$1; R=$2
D=$HOME/.cache/quiver-data/debian-use-512
for r in $(seq 1 $R); do
 for b in qb-f16 qb-clang; do
  /work/helpers/cpu-bench /work/notes/s20/$b --data $D --index hnsw --m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1 --ef 10,11,12,14 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$b -v r=$r '{print n, r, $0}' >> $OUT
 done
 for p in build build-clang19; do
  /work/helpers/cpu-bench $HOME/.cache/quiver-peers/$p/symqg_bench --data $D --metric l2 --repeats 5 --ef 28,30,32,34,36,40 2>/dev/null | awk -v n=symqg-$p -v r=$r '{print n, r, $0}' >> $OUT
 done
done
echo DONE >> $OUT
