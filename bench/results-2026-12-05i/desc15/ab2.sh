#!/bin/sh
# desc15 A/B 2: non-temporal prefetch of the float vectors (QV_NTA=1) and of the ex rows too
# (QV_NTA=3), debian-desc-384 bit1 M16 / M12 efC400 and fashion-mnist-784 bit1 M12 efC400.
D=$HOME/.cache/quiver-data/debian-desc-384
F=$HOME/.cache/quiver-data/fashion-mnist-784
A=/tmp/base-desc15/quiver-bench          # main 38fc956
X=/tmp/desc15-exp/build/quiver-bench     # main + env knobs
run() { tag=$1; shift; "$@" --index hnsw --quant bit1 --threads 1 --ef-construction 400 --index-cache /tmp/desc15-idx 2>/dev/null | grep '^quiver' | sed "s/^/$tag /"; }
for r in 1 2 3; do
  echo "# round $r $(date -u +%T)"
  for v in base nta0 nta1 nta3; do
    case $v in base) B="$A";; nta*) B="env QV_NTA=${v#nta} $X";; esac
    run d16-$v $B --data $D --m 16 --ef 24,32,40,48 --runs 9
    run d12-$v $B --data $D --m 12 --ef 24,32,40,48 --runs 9
    run f12-$v $B --data $F --m 12 --ef 16,24,32 --runs 3
  done
done
