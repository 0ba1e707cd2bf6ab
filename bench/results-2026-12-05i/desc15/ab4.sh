#!/bin/sh
# desc15 run 4: sq8 oversampling at ef <= R (the beam is R = 10 x oversampling), M16 / M12,
# against bit1 M16 / M12 on a fine ef grid, debian-desc-384, main 38fc956, alternated.
D=$HOME/.cache/quiver-data/debian-desc-384
A=/tmp/base-desc15/quiver-bench
run() { tag=$1; shift; "$A" --data $D --index hnsw --threads 1 --ef-construction 400 --runs 9 --index-cache /tmp/desc15-idx "$@" 2>/dev/null | grep '^quiver' | sed "s/^/$tag /"; }
for r in 1 2 3; do
  echo "# round $r $(date -u +%T)"
  run b1-m16 --m 16 --quant bit1 --ef 28,32,36,40
  run b1-m12 --m 12 --quant bit1 --ef 32,36,40,44
  for os in 2.5 2.8 3 3.5; do
    run sq8-m16-os$os --m 16 --quant sq8 --oversampling $os --ef 10
    run sq8-m12-os$os --m 12 --quant sq8 --oversampling $os --ef 10
  done
done
