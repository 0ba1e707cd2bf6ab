#!/bin/sh
# alternated A/B, full build each run; args: rounds, bench args...
rounds=$1; shift
for i in $(seq $rounds); do
for r in ${BINS:-082c3b4 walk15 712b934 reg}; do
  b=/tmp/reg15-$r/build/quiver-bench; [ $r = reg ] && b=/work/wt-reg15/build/quiver-bench
  echo "== $r round $i $(date +%T)"
  out=$($b "$@" 2>&1 | grep "^quiver ")
  echo "$out" | awk '{print $5, $7, $8}' | tr '\n' ' '; echo
  echo "$out" | head -1 | awk '{print "# build_s", $11}'
done; done
