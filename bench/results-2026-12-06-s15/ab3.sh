#!/bin/sh
# ab3.sh OUT DATA EFS ROUNDS "ARGS" "name|env|bin|cache" ... : alternates variants
OUT=$1; D=$2; EFS=$3; R=$4; ARGS=$5; shift 5
for i in $(seq 1 $R); do
  for spec in "$@"; do
    n=$(echo "$spec" | cut -d'|' -f1); e=$(echo "$spec" | cut -d'|' -f2); b=$(echo "$spec" | cut -d'|' -f3); c=$(echo "$spec" | cut -d'|' -f4)
    env $e $b --data $D --index hnsw $ARGS --ef $EFS --threads 1 --runs 5 --index-cache $c 2>/dev/null | grep "^quiver" | sed "s/^/$n r$i /" >> $OUT
  done
done
