#!/bin/sh
D=$HOME/.cache/quiver-data/debian-desc-384
E="10,11,12,13,14,16,18,20,22,24,26,28,30,32,36,40,48,64,96,128,192"
/work/notes/s18/sbs.sh /work/notes/s21/sbs-desc.txt $D $E 3 0 /work/notes/s21/qb-main \
 "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6" \
 "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.4" \
 "--m 16 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/integ-idx --explore 0.6" \
 "--m 20 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6" \
 "--m 24 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6" \
 "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6"
