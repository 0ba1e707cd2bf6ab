#!/bin/sh
# usage: c15-ab.sh ROUNDS "EXTRA ARGS" name=bin:cache ...
R=$1; shift; ARGS=$1; shift
for r in $(seq 1 $R); do
  for spec in "$@"; do
    name=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; cache=${rest#*:}
    $bin $ARGS --threads 1 --runs 3 --index-cache $cache 2>/dev/null | grep "^quiver " | sed "s/^/$name r$r /"
  done
done
