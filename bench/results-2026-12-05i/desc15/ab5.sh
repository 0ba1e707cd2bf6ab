#!/bin/sh
# desc15 run 5: sq8 on the efConstruction 800 graph (oversampling 2.5 = beam 25) against
# efConstruction 400 (oversampling 2.8 / 3) and bit1, debian-desc-384, main 38fc956, alternated.
D=$HOME/.cache/quiver-data/debian-desc-384
A=/tmp/base-desc15/quiver-bench
run() { tag=$1; shift; "$A" --data $D --index hnsw --threads 1 --runs 9 --index-cache /tmp/desc15-idx "$@" 2>/dev/null | grep '^quiver' | sed "s/^/$tag /"; }
for r in 1 2 3; do
  echo "# round $r $(date -u +%T)"
  run sq8-m16-c400-os2.8 --m 16 --ef-construction 400 --quant sq8 --oversampling 2.8 --ef 10
  run sq8-m16-c800-os2.5 --m 16 --ef-construction 800 --quant sq8 --oversampling 2.5 --ef 10
  run sq8-m12-c800-os2.8 --m 12 --ef-construction 800 --quant sq8 --oversampling 2.8 --ef 10
  run b1-m16-c400 --m 16 --ef-construction 400 --quant bit1 --ef 32
  run b1-m12-c400 --m 12 --ef-construction 400 --quant bit1 --ef 40
done
