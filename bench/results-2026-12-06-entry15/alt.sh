#!/bin/sh
# entry15: main's and the branch's quiver-bench alternated, ROUNDS rounds (run under cpu-bench).
# usage: alt.sh ROUNDS DATA EFS "ARGS"
ROUNDS=$1 DATA=$2 EFS=$3 ARGS=$4
for r in $(seq 1 "$ROUNDS"); do
  for v in main branch; do
    if [ $v = main ]; then B=/tmp/entry15-main/build/quiver-bench; else B=${BR:-build/nocuda/quiver-bench}; fi
    # shellcheck disable=SC2086
    $B --data "$DATA" --index hnsw $ARGS --ef "$EFS" --threads 1 --runs 5 --index-cache /tmp/entry15-idx 2>/dev/null |
      grep '^quiver ' | sed "s/^/$v r$r /"
  done
done
