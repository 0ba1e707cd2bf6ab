#!/bin/bash
# usage: ab.sh "label:ENV=.. ENV=..:binary" ...   (each spec run once per round, rounds=$ROUNDS)
D=$HOME/.cache/quiver-data/fashion-mnist-784
ARGS="--index hnsw --m 12 --ef-construction 400 --quant bit1 --threads 1"
for r in $(seq ${ROUNDS:-2}); do
  for spec in "$@"; do
    IFS=: read label envs bin <<< "$spec"
    out=$(env $envs $bin --data ${DATA:-$D} $ARGS ${EXTRA} --ef ${EFS:-24,32,48} --index-cache $HOME/.cache/rescore15/idx 2>&1)
    echo "$r $label $(echo "$out" | grep -E '^quiver ' | awk '{printf "%s:%s/%.1fk ", $4, $7, $8/1000}') $(echo "$out" | grep DBG | awk '{printf "fl%s ", $7}')"
  done
done
