#!/bin/sh
B=/work/notes/s26
/work/notes/s20/abb.sh $B/ab1-use.txt 5 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.85 --ef 10,12,14,20" /work/notes/s25/qb-s25 $B/qb-live
