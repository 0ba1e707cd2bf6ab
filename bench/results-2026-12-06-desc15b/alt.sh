#!/bin/bash
# Alternated variants in one locked run: ROUNDS x (each variant), quiver-bench --runs 5.
# usage: alt.sh OUT ROUNDS EFS "name|env|args[|binary]" ...   (DATA=dir, default debian-desc-384)
out=$1; rounds=$2; efs=$3; shift 3
D=$HOME/.cache/quiver-data/debian-desc-384
: > "$out"
for r in $(seq 1 "$rounds"); do
  for v in "$@"; do
    IFS='|' read -r name envs args bin <<< "$v"
    echo "## round $r $name ($envs) $args" >> "$out"
    env $envs ${bin:-build/quiver-bench} --data ${DATA:-$D} --index hnsw $args --ef "$efs" --threads 1 --runs 5 \
      --index-cache /tmp/desc15b-idx 2>&1 | grep -E '^quiver ' | sed "s/^/$name /" >> "$out"
  done
done
