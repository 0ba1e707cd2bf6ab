#!/bin/sh
# Float HNSW (quant none) must not get slower: main e67117f vs branch u8vec, alternated,
# both loading the same cached graph (built by the branch binary on the first call).
C=/tmp/u8vec-idx
run() { $1 --data /work/shared/data/sift-debian-100k --index hnsw --m 16 --ef-construction 200 \
          --ef 16,32,64,128 --threads 1 --runs 5 --index-cache $C 2>/dev/null | grep -E '^quiver'; }
echo "# $(date -u +%FT%TZ) $(uname -n)"
for round in 1 2 3; do
  echo "## round $round main"; run /tmp/u8vec-bench-main
  echo "## round $round u8vec"; run /tmp/u8vec-bench
done
echo "# end $(date -u +%FT%TZ)"
