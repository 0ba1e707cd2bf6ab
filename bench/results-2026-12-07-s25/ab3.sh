#!/bin/sh
B=/work/notes/s25
/work/notes/s20/abb.sh $B/ab3-use.txt 4 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.85 --ef 10,12,14,20" /work/notes/s24/qb-s24 $B/e8bc0 $B/e8bc1 $B/e4bc1
