#!/bin/sh
# Side by side on one dataset (issue 15): quiver-bench configurations, then glass (SQ4U and
# SQ8U walk, FP32 re-rank) and SymphonyQG (degree 32, and 64 with DEG64=1), all single
# thread, k = 10, the same ef list. Run it under the exclusive lock, one dataset per run:
#   flock -x /tmp/quiver-cpu.lock bench/quant_peers.sh DIR "EF_LIST" "QUIVER ARGS" ["QUIVER ARGS"...]
# e.g. bench/quant_peers.sh $HOME/.cache/quiver-data/fashion-mnist-784 12,16,24,32,48 \
#        "--m 16 --quant bit1" "--m 16 --quant sq4 --oversampling 1.5"
# Peer drivers: ../shared/peers/README.md (P, default $HOME/.cache/quiver-peers/build).
# On a cosine set stored unit-length the peers run with --metric l2 (same order).
# REPEATS (default 3): passes over the queries per ef for every engine; a 1,000-query set
# (debian-desc-384) passes in ~25 ms, so 3 passes leave single figures 10-15% apart.
# ROUNDS (default 1): the whole list of engines again, in the same order, so that a burst of
# load from a neighbour VM falls on one round of each engine rather than on one engine;
# bench/quant_peers_table.py takes each engine's median over the rounds. GLASS=0 leaves
# glass out (it trails SymphonyQG on the 384-784-d sets; each run rebuilds its index).
set -eu
dir=$1 ef=$2
shift 2
B=${B:-build/quiver-bench}
P=${P:-$HOME/.cache/quiver-peers/build}
R=${REPEATS:-3}
echo "# $(date -u +%FT%TZ) $(uname -n) data=$dir ef=$ef repeats=$R rounds=${ROUNDS:-1}"
# One round: every engine once, in the same order.
one_round() {
    for args in "$@"; do
        echo "## quiver $args"
        # shellcheck disable=SC2086
        "$B" --data "$dir" --index hnsw $args --ef "$ef" --threads 1 --runs "$R" 2>/dev/null | grep -E '^(library|quiver)'
    done
    if [ "${GLASS:-1}" = 1 ]; then
        echo "## glass SQ4U + FP32"
        "$P/glass_bench" --data "$dir" --metric l2 --repeats "$R" --ef "$ef" 2>/dev/null
        echo "## glass SQ8U + FP32"
        "$P/glass_bench" --data "$dir" --metric l2 --search-quant SQ8U --repeats "$R" --ef "$ef" 2>/dev/null
    fi
    echo "## SymphonyQG degree 32"
    "$P/symqg_bench" --data "$dir" --metric l2 --repeats "$R" --ef "$ef" 2>/dev/null
    if [ "${DEG64:-0}" = 1 ]; then
        echo "## SymphonyQG degree 64"
        "$P/symqg_bench" --data "$dir" --metric l2 --degree 64 --repeats "$R" --ef "$ef" 2>/dev/null
    fi
}
for round in $(seq "${ROUNDS:-1}"); do
    echo "# round $round"
    one_round "$@"
done
echo "# end $(date -u +%FT%TZ)"
