#!/bin/sh
# msweep.sh OUT DATA CACHE ROUNDS "M:X:EFS"... : alternated (M, explore) settings
OUT=$1; D=$2; C=$3; R=$4; shift 4
for i in $(seq 1 $R); do
  for spec in "$@"; do
    m=$(echo $spec | cut -d: -f1); x=$(echo $spec | cut -d: -f2); efs=$(echo $spec | cut -d: -f3)
    ${BIN:-/work/integ/build/quiver-bench} --data $D --index hnsw --m $m --ef-construction 400 --quant bit1 --explore $x --ef $efs --threads 1 --runs 5 --index-cache $C 2>/dev/null | grep "^quiver" | sed "s/^/m${m}x$x r$i /" >> $OUT
  done
done
