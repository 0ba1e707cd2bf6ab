#!/bin/sh
# desc15 A/B 1: graph variants (build alpha, efConstruction) and walk knobs (1-bit bound
# multiplier, pipeline lags) on debian-desc-384 bit1, alternated, cached indexes.
D=$HOME/.cache/quiver-data/debian-desc-384
A=/tmp/base-desc15/quiver-bench          # main 38fc956
X=/tmp/desc15-exp/build/quiver-bench     # main + env knobs (QV_EPS0, QV_XLAG, QV_DLAG)
EF=24,32,40,48
run() { tag=$1; shift; "$@" --data $D --index hnsw --quant bit1 --ef $EF --threads 1 --runs 3 2>/dev/null | grep '^quiver' | sed "s/^/$tag /"; }
for r in 1 2 3; do
  echo "# round $r $(date -u +%T)"
  run base-m16-c400  $A --m 16 --ef-construction 400 --index-cache /tmp/desc15-idx
  run alpha1.1       $A --m 16 --ef-construction 400 --index-cache /tmp/desc15-idx-a11
  run alpha1.2       $A --m 16 --ef-construction 400 --index-cache /tmp/desc15-idx-a12
  run m16-c800       $A --m 16 --ef-construction 800 --index-cache /tmp/desc15-idx
  run m12-c400       $A --m 12 --ef-construction 400 --index-cache /tmp/desc15-idx
  run m12-c800       $A --m 12 --ef-construction 800 --index-cache /tmp/desc15-idx
  run eps1.4 env QV_EPS0=1.4 $X --m 16 --ef-construction 400 --index-cache /tmp/desc15-idx
  run dlag2  env QV_DLAG=2 $X --m 16 --ef-construction 400 --index-cache /tmp/desc15-idx
  run xlag3  env QV_XLAG=3 $X --m 16 --ef-construction 400 --index-cache /tmp/desc15-idx
done
