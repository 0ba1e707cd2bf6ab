#!/bin/sh
# bench/ondisk_inserts.sh -- inserts into a quantized HNSW collection after a reopen, vectors
# on_disk (read from LMDB) against in memory: loads the first LOAD points of DATA's base,
# checkpoints, then times (a) opening the collection (`quiver info`) and (b) importing the
# next ADD points into the reopened collection; the insert time is (b) - (a). Each round
# runs every binary of QUIVERS (default build/quiver; give two to compare builds) on and
# off in turn, so drift hits all alike. Run alone:
#   /work/helpers/cpu-bench bench/ondisk_inserts.sh [DATA] [QUANT] [METRIC] [ROUNDS]
# Prints one line per run and the medians. Scratch under $TMPDIR (/tmp).
set -eu
DATA=${1:-../shared/data/sift-debian-100k}
QUANT=${2:-sq8}
METRIC=${3:-l2}
ROUNDS=${4:-3}
LOAD=${LOAD:-90000}
ADD=${ADD:-10000}
QUIVERS=${QUIVERS:-build/quiver}
T=$(mktemp -d "${TMPDIR:-/tmp}/qv-ondisk-ins.XXXXXX")
trap 'rm -rf "$T"' EXIT
base=$DATA/base.fvecs
dim=$(od -An -t u4 -N4 "$base" | tr -d ' ')
rec=$((4 + 4 * dim))
head -c $((rec * LOAD)) "$base" > "$T/load.fvecs"
tail -c +$((rec * LOAD + 1)) "$base" | head -c $((rec * ADD)) > "$T/add.fvecs"
secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
for r in $(seq "$ROUNDS"); do
    for Q in $QUIVERS; do
        for mode in on off; do
            db=$T/db-$mode-$r
            flag=; [ "$mode" = on ] && flag=--on-disk
            $Q create "$db" c --dim "$dim" --metric "$METRIC" --quant "$QUANT" $flag > /dev/null
            $Q import "$db" c "$T/load.fvecs" --quiet --nosync
            $Q checkpoint "$db" c > /dev/null
            open=$(secs $Q info "$db" c)
            add=$(secs $Q import "$db" c "$T/add.fvecs" --start-id "$LOAD" --quiet --nosync)
            echo "round $r $Q $mode: open $open s, open+insert $ADD $add s, insert $(echo "$add - $open" | bc) s"
            rm -rf "$db"
        done
    done
done | tee "$T/log"
for Q in $QUIVERS; do
    for mode in on off; do
        m=$(grep " $Q $mode:" "$T/log" | awk '{print $(NF-1)}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        echo "median insert ($Q, $mode): $m s"
    done
done
