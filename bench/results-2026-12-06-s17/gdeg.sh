Q=$HOME/.cache/quiver-data
G=/tmp/s17-symqg-use.graph
run() { # name env m explore efs
  env $2 /work/notes/s16/qb-nbrg --data $Q/debian-use-512 --index hnsw --m $3 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore $4 --ef $5 --threads 1 --runs 3 2>&1 | grep -E '^quiver|PSTATS' | awk -v n="$1 x$4" '{ if ($0 ~ /PSTATS/) printf " [exp %s rows %s]\n", $5, $7; else printf "%s ef %s rec %s qps %s; ", n, $4, $7, $8}'
}
run base X=1 12 1 10
for d in 16 20 24; do for cfg in "0.75 10" "1 10" "0.5 12"; do set -- $cfg
 run "symg$d" "QV_GRAPH=$G QV_GDEG=$d" 12 $1 $2
done; done
