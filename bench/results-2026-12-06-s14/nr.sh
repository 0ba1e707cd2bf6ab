#!/bin/sh
D=$HOME/.cache/quiver-data/debian-use-512
B=/work/integ/build/quiver-bench
for i in 1 2 3; do
 for v in rescore norescore; do
  a=""; [ $v = norescore ] && a="--no-rescore"
  $B --data $D --index hnsw --m 12 --ef-construction 400 --quant bit1 --explore 1 $a --ef 10,14,20 --threads 1 --runs 5 --index-cache /tmp/s10-use 2>/dev/null | grep "^quiver" | sed "s/^/$v r$i /"
 done
done
