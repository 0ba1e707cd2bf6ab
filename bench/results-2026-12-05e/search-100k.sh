#!/bin/sh
for v in "$@"; do
  echo "=== $v $(date -u +%T)"
  /tmp/b16b/qb-$v --data /work/shared/data/sift-debian-100k --index hnsw --m 16 --ef-construction 200 --build-threads 2 --ef 16,48,128 --threads 1 --runs 3 2>&1 | grep -E "built in|^quiver "
done
