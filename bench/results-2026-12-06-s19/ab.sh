#!/bin/sh
# ab.sh OUT ROUNDS DATA M EXPLORE EFS BIN... : alternated, each under the exclusive lock
OUT=$1; R=$2; D=$3; M=$4; X=$5; EFS=$6; shift 6
Q=$HOME/.cache/quiver-data
case $D in debian-use-512) C=/tmp/s10-use;; debian-desc-384) C=/tmp/integ-idx;; *) C=/tmp/s10-idx;; esac
for r in $(seq 1 $R); do
 for b in "$@"; do
  /work/helpers/cpu-bench env $EXTRA $b --data $Q/$D --index hnsw --m $M --ef-construction 400 --quant bit1 $QARGS --index-cache $C --explore $X --ef $EFS --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$(basename $b) -v r=$r '{print n, r, $0}' >> $OUT
 done
done
echo DONE >> $OUT
