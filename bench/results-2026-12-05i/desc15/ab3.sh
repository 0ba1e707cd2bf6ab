#!/bin/sh
# desc15 A/B 3: number of bit1 centroids (QV_KMAX: the codec retrained on load with at most
# K centroids; the graph is the same cached one), debian-desc-384 bit1 M16 / M12 efC400.
D=$HOME/.cache/quiver-data/debian-desc-384
A=/tmp/base-desc15/quiver-bench          # main 38fc956
X=/tmp/desc15-exp/build/quiver-bench     # main + env knobs
run() { tag=$1; shift; "$@" --index hnsw --quant bit1 --threads 1 --ef-construction 400 --index-cache /tmp/desc15-idx 2>/dev/null | grep '^quiver' | sed "s/^/$tag /"; }
for r in 1 2 3; do
  echo "# round $r $(date -u +%T)"
  for v in base k64 k32 k16 k8; do
    case $v in base) B="$A";; k*) B="env QV_KMAX=${v#k} $X";; esac
    run d16-$v $B --data $D --m 16 --ef 24,32,40,48,96 --runs 9
    run d12-$v $B --data $D --m 12 --ef 24,32,40,48,96 --runs 9
  done
done
