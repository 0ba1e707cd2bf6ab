#!/bin/sh
# float HNSW M16 efC200: main vs 082c3b4 alternated, sift-debian-100k and glove6b-100k
for r in 1 2; do
 for d in sift-debian-100k glove6b-100k; do
  for b in /work/tmp-old /work/integ; do
   echo "== round $r $d $b"
   (cd $b && build/quiver-bench --data /work/shared/data/$d --index hnsw --m 16 --ef-construction 200 --ef 16,32,64,128 --threads 1 --build-threads 2 2>&1 | grep -E "^quiver|built in")
  done
 done
done
