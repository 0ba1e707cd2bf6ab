#!/bin/sh
B=/work/notes/s25
/work/notes/s20/abb.sh $B/ab5-desc.txt 3 "--data /root/.cache/quiver-data/debian-desc-384 --index hnsw --m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.4 --ef 14,16,24,64" /work/notes/s24/qb-s24 $B/qb-s25
/work/notes/s20/abb.sh $B/ab5-fm.txt 3 "--data /root/.cache/quiver-data/fashion-mnist-784 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5 --ef 12,16,24" /work/notes/s24/qb-s24 $B/qb-s25
