d=$1; ef=$2; shift 2
echo "# $(date -u +%FT%TZ) data=$d ef=$ef"
for args in "$@"; do echo "## quiver $args"; build/quiver-bench --data $d --index hnsw $args --ef $ef --threads 1 --runs 3 --index-cache /tmp/walk15-cache 2>/dev/null | grep -E '^quiver'; done
echo "# end $(date -u +%FT%TZ)"
