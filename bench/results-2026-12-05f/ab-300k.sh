#!/bin/sh
# alternated A/B at 300K; args: variants, binaries /tmp/b17/qb-<variant> (main 712b934, codes, final = codes + link prefetch (lpf), rpf8 / nof0 = variants of lpf)
D=$HOME/.cache/quiver-data/sift-debian-1m
for v in "$@"; do
  echo "=== $v $(date -u +%T)"
  /tmp/b17/qb-$v --data $D --subset 300000 --index hnsw --m 16 --ef-construction 200 --build-threads 2 --ef 48,128 --threads 1 2>&1 | grep -E "built in|^quiver "
done
