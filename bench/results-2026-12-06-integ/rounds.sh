#!/bin/sh
cd /work/integ
B=build/quiver-bench REPEATS=5 ROUNDS=3 GLASS=0 bench/quant_peers.sh $HOME/.cache/quiver-data/fashion-mnist-784 12,16,20,24,28,32,36,40,48 "--m 12 --ef-construction 400 --quant bit1" "--m 14 --ef-construction 400 --quant bit1" > /work/notes/s8/rounds-fashion.txt 2>&1
B=build/quiver-bench REPEATS=5 ROUNDS=3 GLASS=0 bench/quant_peers.sh $HOME/.cache/quiver-data/debian-desc-384 16,20,24,28,32,40,48,64,96,128,192 "--m 16 --ef-construction 400 --quant bit1" "--m 16 --ef-construction 800 --quant sq8 --oversampling 2.5" > /work/notes/s8/rounds-desc.txt 2>&1
