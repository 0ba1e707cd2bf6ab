#!/bin/sh
B=/work/notes/s23/bin
/work/notes/s20/abb.sh /work/notes/s23/ab1-use.txt 3 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1 --ef 10,11,12,13,14,16,18" $B/p0 $B/p12 $B/p14 $B/p17 $B/p20
