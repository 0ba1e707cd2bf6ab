#!/bin/sh
# Alternated A/B (f32 vs u8 vectors, same binary, same cached graphs), one dataset per
# exclusive hold: run as  /work/helpers/cpu-bench bench/results-2026-12-06-u8vec/ab.sh fashion|sift
B=${B:-/tmp/u8vec-bench}
C=/tmp/u8vec-idx
echo "# $(date -u +%FT%TZ) $(uname -n) $1"
for round in 1 2 3; do
  for vt in f32 u8; do
    echo "## round $round vec-type $vt"
    case $1 in
    fashion) $B --data $HOME/.cache/quiver-data/fashion-mnist-784 --index hnsw --m 12 --ef-construction 400 \
               --quant bit1 --vec-type $vt --ef 12,16,20,24,28,32,36,40,48 --threads 1 --runs 5 --index-cache $C 2>/dev/null ;;
    sift)    $B --data /work/shared/data/sift-debian-100k --index hnsw --m 16 --ef-construction 200 --quant sq4 \
               --oversampling 2 --vec-type $vt --ef 16,20,24,28,32,40,48,56,64,80,96,128 --threads 1 --runs 5 \
               --index-cache $C 2>/dev/null ;;
    esac
  done
done
echo "# end $(date -u +%FT%TZ)"
