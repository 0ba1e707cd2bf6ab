#!/bin/sh
# use-512 and desc-384: scalar codes on this host, against bit1 and SymphonyQG
U=$HOME/.cache/quiver-data/debian-use-512; D=$HOME/.cache/quiver-data/debian-desc-384
E="10,12,14,16,18,20,22,24,26,28,30,32,36,40,48,64,96"
/work/notes/s18/sbs.sh /work/notes/s21/sbs-use-sq.txt $U $E 1 0 /work/notes/s21/qb-main \
 "--m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1" \
 "--m 16 --ef-construction 400 --quant sq4 --vec-type f16 --index-cache /tmp/s10-use --oversampling 2" \
 "--m 16 --ef-construction 400 --quant sq4 --vec-type f16 --index-cache /tmp/s10-use --oversampling 3" \
 "--m 16 --ef-construction 400 --quant sq8 --vec-type f16 --index-cache /tmp/s10-use --oversampling 1.5" \
 "--m 16 --ef-construction 400 --quant sq8 --vec-type f16 --index-cache /tmp/s10-use --oversampling 2.5"
/work/notes/s18/sbs.sh /work/notes/s21/sbs-desc-sq.txt $D $E 1 0 /work/notes/s21/qb-main \
 "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6" \
 "--m 16 --ef-construction 400 --quant sq4 --vec-type f16 --index-cache /tmp/integ-idx --oversampling 2" \
 "--m 16 --ef-construction 400 --quant sq4 --vec-type f16 --index-cache /tmp/integ-idx --oversampling 3" \
 "--m 16 --ef-construction 400 --quant sq8 --vec-type f16 --index-cache /tmp/integ-idx --oversampling 2" \
 "--m 16 --ef-construction 400 --quant sq8 --vec-type f16 --index-cache /tmp/integ-idx --oversampling 3"
