#!/bin/bash
# usage: alt.sh BIN DATA M ROUNDS EFS "NAME=ENV..." ...   (env per variant as "name:K=V,K=V")
BIN=$1; DATA=$2; M=$3; ROUNDS=$4; EFS=$5; shift 5
for r in $(seq 1 $ROUNDS); do
  for v in "$@"; do
    name=${v%%:*}; envs=${v#*:}; envs=${envs//,/ }
    env $envs $BIN --data $HOME/.cache/quiver-data/$DATA --index hnsw --m $M --ef-construction 400 --quant bit1 --ef $EFS --threads 1 --runs 1 --index-cache /tmp/walk15b-idx 2>/dev/null | grep '^quiver ' | sed "s/^/$name r$r /"
  done
done
