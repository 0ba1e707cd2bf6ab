#!/bin/sh
# alternated A/B at 300K; args: list of variants
# (binaries /tmp/b16b/qb-<variant>: builds of this branch before/after the change, copied aside)
D=$HOME/.cache/quiver-data/sift-debian-1m
for v in "$@"; do
  echo "=== $v $(date -u +%T)"
  /tmp/b16b/qb-$v --data $D --subset 300000 --index hnsw --m 16 --ef-construction 200 --build-threads 2 --ef 48,128 --threads 1 2>&1 | grep -E "built in|^quiver "
done
