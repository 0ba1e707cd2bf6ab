#!/bin/sh
S=/work/notes/s18/sbs.sh; B=/work/notes/s25/qb-s25
$S /work/notes/s25/sbs2-fm.txt /root/.cache/quiver-data/fashion-mnist-784 12,16,20,24,32,40,48,64,96,128 2 1 $B "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5"
