#!/bin/sh
# float HNSW M=16, this branch (perf15b) vs main d57650a, alternated x3 per dataset
set -eu
NEW=/work/wt-perf15b/build/quiver-bench
OLD=/work/wt-scale16m/build/quiver-bench
echo "# $(date -u +%FT%TZ) $(uname -n) new=$(git -C /work/wt-perf15b rev-parse --short HEAD) old=$(git -C /work/wt-scale16m rev-parse --short HEAD)"
for d in /work/shared/data/sift-debian-100k /work/shared/data/glove6b-100k; do
  for i in 1 2 3; do
    for b in NEW OLD; do
      eval bin=\$$b
      echo "## $b round $i $d"
      "$bin" --data "$d" --index hnsw --m 16 --ef 16,32,64,128 --threads 1 --runs 3 2>/dev/null | grep -E '^quiver'
    done
  done
done
echo "# end $(date -u +%FT%TZ)"
