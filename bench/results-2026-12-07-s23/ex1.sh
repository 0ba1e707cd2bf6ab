#!/bin/sh
for r in 1 2 3; do for x in 0.8 0.85 0.9 0.95 1 1.1; do
/work/helpers/cpu-bench /work/notes/s23/bin/qb-main --data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore $x --ef 10,11,12 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=x$x -v r=$r '{print n, r, $0}' >> /work/notes/s23/ex1-use.txt
done; done; echo DONE >> /work/notes/s23/ex1-use.txt
