#!/bin/bash
# alternated A/B: variants "B MODE" per round (z = 2)
DATA=$1; M=$2; EFS=$3; ROUNDS=$4; shift 4
VARS=("$@")
cd /work/wt-lb15
for r in $(seq $ROUNDS); do
  for v in "${VARS[@]}"; do read B MD <<< "$v"
    echo "## round $r B=$B mode=$MD"
    QV_EDGE_B=$B QV_EDGE_MODE=$MD QV_EDGE_Z=2 build/quiver-bench --data $DATA --index hnsw --m $M --ef-construction 400 --quant bit1 --ef $EFS --threads 1 --runs 3 --index-cache /tmp/lb15-idx 2>&1 | grep "^quiver  "
  done
done
