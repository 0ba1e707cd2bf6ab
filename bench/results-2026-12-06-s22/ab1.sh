#!/bin/sh
/work/notes/s20/abb.sh /work/notes/s22/ab1-vpf.txt 3 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1 --ef 10,12" /work/notes/s22/bin/vpfall /work/notes/s22/bin/vpf0 /work/notes/s22/bin/vpf4 /work/notes/s22/bin/vpf8
