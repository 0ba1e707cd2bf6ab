#!/bin/sh
D=$HOME/.cache/quiver-data/fashion-mnist-784; EF=12,16,24,32,36,40,48; P=$HOME/.cache/quiver-peers/build
echo "# $(date -u +%FT%TZ) data=$D ef=$EF repeats=5 (quant_peers.sh's commands, glass left out for time)"
echo "## quiver --m 12 --ef-construction 400 --quant bit1 (walk15b 0dc7410)"
/work/wt-walk15b/build/quiver-bench --data $D --index hnsw --m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/walk15b-idx --ef $EF --threads 1 --runs 5 2>/dev/null | grep -E '^(library|quiver)'
echo "## quiver main 1ed0955 same args"
/tmp/walk15b-qb0 --data $D --index hnsw --m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/walk15b-idx --ef $EF --threads 1 --runs 5 2>/dev/null | grep -E '^(library|quiver)'
echo "## SymphonyQG degree 32"
$P/symqg_bench --data $D --metric l2 --repeats 5 --ef $EF 2>/dev/null
echo "# end $(date -u +%FT%TZ)"
