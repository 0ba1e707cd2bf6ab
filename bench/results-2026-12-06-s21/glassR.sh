#!/bin/sh
S=/work/shared/data/sift-debian-100k
E="16,18,20,22,23,24,25,26,27,28,30,32,36,40,48,56,64,72,80,96"
P=$HOME/.cache/quiver-peers/build
O=/work/notes/s21/glassR.txt
/work/helpers/cpu-bench sh -c "
echo '# glass R sweep on sift' 
echo '# round 1'
echo '## quiver --m 24 sq4 u8 os2'
/work/notes/s21/qb-main --data $S --index hnsw --m 24 --ef-construction 400 --quant sq4 --vec-type u8 --oversampling 2 --index-cache /tmp/s15-sift --ef $E --threads 1 --runs 5 2>/dev/null | grep ^quiver
for R in 32 48 64; do echo \"## glass SQ8U R\$R\"; $P/glass_bench --data $S --metric l2 --search-quant SQ8U --R \$R --repeats 5 --ef $E 2>/dev/null; done
" > $O 2>&1
echo DONE >> $O
