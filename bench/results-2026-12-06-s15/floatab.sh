#!/bin/sh
while ! grep -q ALLDONE bench/results-2026-12-06-s15/avx2-fm.txt 2>/dev/null; do sleep 20; done
while ! grep -q rc= bench/results-2026-12-06-s15/build-old.log 2>/dev/null; do sleep 20; done
D=/work/shared/data
/work/helpers/cpu-bench bench/results-2026-12-06-s15/ab3.sh bench/results-2026-12-06-s15/float-sift.txt $D/sift-debian-100k 16,32,64,128 4 "--m 16 --ef-construction 200" "old|X=1|/work/wt-old/build/quiver-bench|/tmp/s15-old-sift" "new|X=1|/work/wt-s15/build/quiver-bench|/tmp/s15-new-sift"
echo ALLDONE >> bench/results-2026-12-06-s15/float-sift.txt
