#!/bin/sh
S=/work/notes/s18/sbs.sh; B=/work/notes/s28/qb-final
$S /work/notes/s28/sbs4-use.txt /root/.cache/quiver-data/debian-use-512 10,11,12,13,14,16,20,24,28,32,36,40,48,64,96,128,160 5 0 $B "--m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.85"
echo ALLDONE > /work/notes/s28/sbs5.done
