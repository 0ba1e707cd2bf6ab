#!/bin/sh
# xsweep2.sh OUT DATA ROUNDS CACHE "ARGS" "X:EFS"... : alternated explore values with their own ef lists
OUT=$1; D=$2; R=$3; C=$4; ARGS=$5; shift 5
for i in $(seq 1 $R); do
  for spec in "$@"; do
    x=${spec%%:*}; efs=${spec#*:}
    ${BIN:-/work/integ/build/quiver-bench} --data $D --index hnsw $ARGS --explore $x --ef $efs --threads 1 --runs 5 --index-cache $C 2>/dev/null | grep "^quiver" | sed "s/^/x$x r$i /" >> $OUT
  done
done
