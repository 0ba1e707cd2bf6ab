#!/bin/sh
# ab.sh OUT DATA EFS ROUNDS "ARGS" "name|ENV" ... (binary /work/wt-s14 unless BIN set)
OUT=$1; D=$2; EFS=$3; R=$4; ARGS=$5; shift 5
B=${BIN:-/work/wt-s14/build/quiver-bench}
for i in $(seq 1 $R); do
  for spec in "$@"; do
    n=$(echo "$spec" | cut -d'|' -f1); e=$(echo "$spec" | cut -d'|' -f2)
    env $e $B --data $D --index hnsw $ARGS --ef $EFS --threads 1 --runs 5 2>/dev/null | grep "^quiver" | sed "s/^/$n r$i /" >> $OUT
  done
done
