#include <stdio.h>
#include <quiver.h>

int main(int argc, char **argv)
{
    const uint64_t ids[3] = {1, 2, 3};
    const float vecs[3 * 4] = {1, 0, 0, 0,   0, 1, 0, 0,   0.9f, 0.1f, 0, 0}, query[4] = {1, 0.05f, 0, 0};
    const char *payloads[3] = {"{\"title\":\"east\"}", "{\"title\":\"north\"}", NULL};
    qv_db *db = NULL; qv_coll *c = NULL; qv_collection_config cfg = {0};
    qv_search_params sp; qv_hit hits[2]; size_t n = 0; int rc;

    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, 4, QV_METRIC_COSINE);
    if ((rc = qv_db_open(argc > 1 ? argv[1] : "./quiver-data", NULL, &db)) != QV_OK) goto done;
    if ((rc = qv_collection_create(db, "docs", &cfg, &c)) == QV_EEXIST) rc = qv_collection_open(db, "docs", &c);
    if (rc != QV_OK || (rc = qv_upsert(c, 3, ids, vecs, payloads)) != QV_OK) goto done;
    qv_search_params_init(&sp, 2);
    if ((rc = qv_search(c, query, &sp, hits, &n)) != QV_OK) goto done;
    for (size_t i = 0; i < n; i++) printf("id %llu score %.3f\n", (unsigned long long)hits[i].id, hits[i].score);
done:
    if (rc != QV_OK) fprintf(stderr, "%s: %s\n", qv_strerror(rc), qv_last_error());
    if (qv_db_close(db) != QV_OK && rc == QV_OK) rc = QV_EIO;
    return rc == QV_OK ? 0 : 1;
}
