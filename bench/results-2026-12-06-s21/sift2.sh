#!/bin/sh
C="--index-cache /tmp/s15-sift --quant sq4 --vec-type u8"
/work/notes/s18/sbs.sh /work/notes/s21/sbs-sift2.txt /work/shared/data/sift-debian-100k 16,18,20,22,23,24,25,26,27,28,30,32,36,40,48,56,64,72,80,96 3 1 /work/notes/s21/qb-main \
 "--m 16 --ef-construction 200 $C --oversampling 2" \
 "--m 16 --ef-construction 400 $C --oversampling 2" \
 "--m 16 --ef-construction 400 $C --oversampling 2.5" \
 "--m 20 --ef-construction 300 $C --oversampling 2" \
 "--m 24 --ef-construction 400 $C --oversampling 2" \
 "--m 24 --ef-construction 400 $C --oversampling 3"
