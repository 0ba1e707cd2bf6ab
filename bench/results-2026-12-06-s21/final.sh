#!/bin/sh
Q=$HOME/.cache/quiver-data
/work/notes/s18/sbs.sh /work/notes/s21/sbs-fm-final.txt $Q/fashion-mnist-784 10,11,12,13,14,16,18,20,24,28,32,36,40,48,64,96,128,192 1 1 /work/notes/s21/qb-final \
 "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5" \
 "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.75"
/work/notes/s18/sbs.sh /work/notes/s21/sbs-use-final.txt $Q/debian-use-512 10,11,12,13,14,16,18,20,22,24,26,28,29,30,31,32,33,34,36,40,48,64,96,128 2 0 /work/notes/s21/qb-final \
 "--m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1" \
 "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1"
