#!/bin/sh
B=/work/notes/s23/bin
/work/notes/s20/abb.sh /work/notes/s23/ab3-use.txt 4 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.95 --ef 10,11,12" $B/qb-main $B/qb-eager2 $B/qb-eager16
