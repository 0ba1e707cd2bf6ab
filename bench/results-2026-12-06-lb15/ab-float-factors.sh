#!/bin/bash
# alternated A/B: off, B128 z2, B64 z2, per round
DATA=$1; M=$2; EFS=$3; ROUNDS=${4:-3}
cd /work/wt-lb15
for r in $(seq $ROUNDS); do
  for v in "0 2" "128 2" "64 2"; do set -- $v
    echo "## round $r B=$1 z=$2"
    QV_EDGE_B=$1 QV_EDGE_Z=$2 build/quiver-bench --data $DATA --index hnsw --m $M --ef-construction 400 --quant bit1 --ef $EFS --threads 1 --runs 3 --index-cache /tmp/lb15-idx 2>&1 | grep "^quiver  "
  done
done
