#!/bin/sh
C="--index-cache /tmp/s15-sift --quant sq4 --vec-type u8"
/work/notes/s18/sbs.sh /work/notes/s21/sbs-sift.txt /work/shared/data/sift-debian-100k 10,12,14,16,18,20,22,24,26,28,32,36,40,48,56,64,80,96,128 2 1 /work/notes/s21/qb-main \
 "--m 16 --ef-construction 200 $C --oversampling 2" \
 "--m 20 --ef-construction 300 $C --oversampling 2" \
 "--m 24 --ef-construction 400 $C --oversampling 2" \
 "--m 24 --ef-construction 400 $C --oversampling 1.5" \
 "--m 32 --ef-construction 400 $C --oversampling 1.5" \
 "--m 20 --ef-construction 300 $C --oversampling 3" \
 "--m 24 --ef-construction 400 $C --oversampling 3" \
 "--m 32 --ef-construction 400 $C --oversampling 3"
