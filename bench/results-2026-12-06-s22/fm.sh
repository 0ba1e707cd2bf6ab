#!/bin/sh
/work/notes/s18/sbs.sh /work/notes/s22/sbs-fm.txt /root/.cache/quiver-data/fashion-mnist-784 10,11,12,13,14,16,18,20,24,28,32,36,40,48,64,96,128,192 1 1 /work/notes/s22/bin/qb-s22b  "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5"  "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.75"
