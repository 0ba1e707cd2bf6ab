#!/bin/sh
# sbs.sh OUT DATA EFS ROUNDS GLASS "ARGS"... : one locked quant_peers round at a time
OUT=$1; D=$2; EFS=$3; R=$4; G=$5; shift 5
cd /work/integ
for i in $(seq 1 $R); do
  /work/helpers/cpu-bench env REPEATS=5 ROUNDS=1 GLASS=$G B=build/quiver-bench bench/quant_peers.sh "$D" "$EFS" "$@" >> "$OUT" 2>&1
done
echo DONE >> "$OUT"
