#!/bin/sh
B=/work/notes/s23/bin
/work/notes/s20/abb.sh /work/notes/s23/ab4-use.txt 5 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.8 --ef 10,12,14" $B/qb-main $B/qb-vnni
/work/notes/s20/abb.sh /work/notes/s23/ab4-fm.txt 3 "--data /root/.cache/quiver-data/fashion-mnist-784 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5 --ef 12,16,24" $B/qb-main $B/qb-vnni
