#!/bin/sh
S=/work/notes/s18/sbs.sh; B=/work/notes/s28/qb-s28a
$S /work/notes/s28/sbs2-use.txt /root/.cache/quiver-data/debian-use-512 10,11,12,13,14,16,20,24,28,32,36,40,48,64,96,128,160 5 0 $B "--m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.85" "--m 16 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.85"
$S /work/notes/s28/sbs-fm.txt /root/.cache/quiver-data/fashion-mnist-784 12,16,20,24,32,40,48,64,96,128 2 1 $B "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5"
$S /work/notes/s28/sbs-desc.txt /root/.cache/quiver-data/debian-desc-384 10,12,14,16,18,20,24,28,32,36,40,42,44,46,48,56,64,96,128,192 3 0 $B "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.4" "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.3"
echo ALLDONE > /work/notes/s28/sbs-all.done
