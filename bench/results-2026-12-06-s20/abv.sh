#!/bin/sh
# abv.sh OUT ROUNDS DATA M EXPLORE EFS BIN "LABEL:ARGS"... : alternated argument sets of one binary, each run under the exclusive lock
OUT=$1; R=$2; D=$3; M=$4; X=$5; EFS=$6; BIN=$7; shift 7
Q=$HOME/.cache/quiver-data
case $D in debian-use-512) C=/tmp/s10-use;; debian-desc-384) C=/tmp/integ-idx;; *) C=/tmp/s10-idx;; esac
mkdir -p $C
for r in $(seq 1 $R); do
 for la in "$@"; do
  L=${la%%:*}; A=${la#*:}
  /work/helpers/cpu-bench $BIN --data $Q/$D --index hnsw --m $M --ef-construction 400 --quant bit1 $A --index-cache $C --explore $X --ef $EFS --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$L -v r=$r '{print n, r, $0}' >> $OUT
 done
done
echo DONE >> $OUT
