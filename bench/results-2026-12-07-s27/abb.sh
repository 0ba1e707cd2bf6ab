#!/bin/sh
# abb.sh OUT ROUNDS "ARGS" BIN... : alternated binaries with the same quiver-bench arguments, each under the exclusive lock
OUT=$1; R=$2; A=$3; shift 3
for r in $(seq 1 $R); do
 for b in "$@"; do
  /work/helpers/cpu-bench $b $A --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$(basename $b) -v r=$r '{print n, r, $0}' >> $OUT
 done
done
echo DONE >> $OUT
