#!/bin/sh
# sbs.sh OUT DATA EFS ROUNDS GLASS BIN "ARGS"... : one locked quant_peers round at a time
OUT=$1; D=$2; EFS=$3; R=$4; G=$5; BIN=$6; shift 6
cd /work/main
for i in $(seq 1 $R); do
  /work/helpers/cpu-bench env REPEATS=5 ROUNDS=1 GLASS=$G B=$BIN bench/quant_peers.sh "$D" "$EFS" "$@" >> "$OUT" 2>&1
done
echo DONE >> "$OUT"
