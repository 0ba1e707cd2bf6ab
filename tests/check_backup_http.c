/*
 * tests/check_backup_http.c -- snapshots over HTTP (server/snapshots.c; issue 20).
 *
 * "backup_http" suite:
 *   - consistency: a snapshot taken on one quiverd while a client thread upserts batches
 *     of 10 points, restored into a fresh quiverd from the first one's download URL: the
 *     restored collection holds every batch acknowledged before the snapshot began and
 *     whole batches only, its index came from the snapshot (index_loaded 1), and its
 *     searches (exact and approximate) match the original's on the same points;
 *   - endpoints: create / list / download / delete on both APIs (Qdrant shapes there),
 *     the sidecar checksum equal to sha256sum's, upload (multipart with curl, and the raw
 *     file), file:// recover, the whole store, read-only keys, and the refusals: a
 *     flipped byte, a truncated file, a wrong checksum (400, collection unchanged), a
 *     file:// location outside the snapshots directory (403), bad names (404);
 *   - self_location: a recover from the server's own download URL (Qdrant clients are
 *     given that URL) on a quiverd with one worker thread. Before, the worker fetched
 *     from itself and waited for itself: the server answered nothing at all until the
 *     fetch timed out (600 s). Now such a URL names the local file (200 at once); another
 *     path on the server itself is a 400, a missing file a 404;
 *   - other_process: `quiver restore --replace` on the data directory of a running
 *     quiverd. Before, it replaced the collection under the server, which went on
 *     acknowledging upserts into the deleted data (gone after a restart). Now it is
 *     refused (exit 1, "open for writing in another process") and the collection is
 *     unchanged; restoring under a new name works (the server serves it), and so does the
 *     replace once the server has stopped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

#define KEY "backup-key"
#define DIM 8
#define BATCH 10

static void teardown(void)
{
    test_server_kill_all();
}

static char *req(int port, const char *method, const char *path, const char *body, int *status)
{
    char *out = NULL;
    *status = test_http(port, method, path, "api-key: " KEY "\r\n", body, 120000, &out);
    ck_assert_msg(*status, "no HTTP answer to %s %s", method, path);
    return out;
}

/* The JSON answer of a request that must answer want. */
static json_t *call(int port, const char *method, const char *path, const char *body, int want)
{
    int st;
    char *b = req(port, method, path, body, &st);
    ck_assert_msg(st == want, "%s %s -> %d %s (wanted %d)", method, path, st, b, want);
    json_error_t err;
    json_t *j = json_loads(b, 0, &err);
    ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, b);
    free(b);
    return j;
}

static void expect(int port, const char *method, const char *path, const char *body, int want, const char *has)
{
    int st;
    char *b = req(port, method, path, body, &st);
    ck_assert_msg(st == want && strstr(b, has), "%s %s -> %d %s (wanted %d with %s)", method, path, st, b, want, has);
    free(b);
}

static void start(test_server *s, const char *dir, const char *keys)
{
    test_server_start(s, dir, 1, (const char *const[]){"--api-key-file", keys, NULL});
}

static char *write_keys(const char *dir)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/keys", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s rw\nro-key ro\n", KEY);
    fclose(f);
    return path;
}

static void vec_json(char *buf, size_t len, uint64_t id)
{
    float v[DIM];
    fill_random(v, DIM, id * 31 + 7);
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < DIM; i++) n += (size_t)snprintf(buf + n, len - n, "%s%.6f", i ? "," : "", v[i]);
    snprintf(buf + n, len - n, "]");
}

static int64_t count_points(int qport, const char *coll, const char *filter)
{
    char path[128], body[256];
    snprintf(path, sizeof path, "/collections/%s/points/count", coll);
    snprintf(body, sizeof body, "{\"exact\":true%s%s}", filter ? ",\"filter\":" : "", filter ? filter : "");
    json_t *j = call(qport, "POST", path, body, 200);
    int64_t n = json_integer_value(json_object_get(json_object_get(j, "result"), "count"));
    json_decref(j);
    return n;
}

/* ---- consistency ------------------------------------------------------------------------ */

typedef struct {
    int port;
    atomic_long acked;
    atomic_int stop, failed;
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *w = arg;
    char *body = malloc(1 << 16);
    for (long b = 0; body && !atomic_load(&w->stop); b++) {
        size_t n = (size_t)snprintf(body, 64, "{\"points\":[");
        for (int j = 0; j < BATCH; j++) {
            char v[256];
            uint64_t id = (uint64_t)b * BATCH + (uint64_t)j;
            vec_json(v, sizeof v, id);
            n += (size_t)snprintf(body + n, (1 << 16) - n, "%s{\"id\":%llu,\"vector\":%s,\"payload\":{\"b\":%ld}}",
                                  j ? "," : "", (unsigned long long)id, v, b);
        }
        snprintf(body + n, (1 << 16) - n, "]}");
        char *out = NULL;
        int st = test_http(w->port, "PUT", "/collections/live/points", "api-key: " KEY "\r\n", body, 60000, &out);
        free(out);
        if (st != 200) {
            atomic_store(&w->failed, st ? st : -1);
            break;
        }
        atomic_store(&w->acked, b + 1);
    }
    free(body);
    return NULL;
}

/* The ids of a native search's hits, as text. */
static void search_ids(int port, const char *coll, uint64_t q, int exact, char *out, size_t len)
{
    char path[128], body[512], v[256];
    vec_json(v, sizeof v, 1000000 + q);
    snprintf(path, sizeof path, "/collections/%s/search", coll);
    snprintf(body, sizeof body, "{\"vector\":%s,\"k\":10,\"ef\":64%s}", v, exact ? ",\"exact\":true" : "");
    json_t *j = call(port, "POST", path, body, 200), *h;
    size_t i, n = 0;
    out[0] = 0;
    json_array_foreach(json_object_get(j, "hits"), i, h)
        n += (size_t)snprintf(out + n, len - n, "%lld,", (long long)json_integer_value(json_object_get(h, "id")));
    json_decref(j);
}

START_TEST(test_consistency)
{
    char *dir = make_tmpdir("qv-bkhttp");
    char a_dir[600], b_dir[600], path[512], loc[1024];
    snprintf(a_dir, sizeof a_dir, "%s/a", dir);
    snprintf(b_dir, sizeof b_dir, "%s/b", dir);
    const char *keys = write_keys(dir);
    test_server a, b;
    start(&a, a_dir, keys);
    json_decref(call(a.port, "PUT", "/collections/live",
                     "{\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"m\":8,\"ef_construction\":64},"
                     "\"payload_index\":{\"b\":\"integer\"}}", 201));
    writer_arg w = {a.port, 0, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writer, &w), 0);
    while (atomic_load(&w.acked) < 40 && !atomic_load(&w.failed)) usleep(2000);
    long before = atomic_load(&w.acked);
    json_t *snap = call(a.port, "POST", "/collections/live/snapshots", NULL, 201);
    long after = atomic_load(&w.acked);
    while (atomic_load(&w.acked) < after + 5 && !atomic_load(&w.failed)) usleep(2000);
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    ck_assert_int_eq(atomic_load(&w.failed), 0);
    long total = atomic_load(&w.acked);
    const char *name = json_string_value(json_object_get(snap, "name"));
    ck_assert_ptr_nonnull(name);

    /* a fresh server restores it from the first one's download URL */
    start(&b, b_dir, keys);
    snprintf(loc, sizeof loc, "{\"location\":\"http://127.0.0.1:%d/collections/live/snapshots/%s\",\"api_key\":\"%s\","
             "\"checksum\":\"%s\"}", a.port, name, KEY, json_string_value(json_object_get(snap, "checksum")));
    json_t *rec = call(b.port, "PUT", "/collections/live/snapshots/recover", loc, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "index_loaded")), 1);   /* no graph build */
    json_decref(rec);
    int64_t n = count_points(b.qport, "live", NULL);
    ck_assert_msg(n % BATCH == 0, "a partial batch: %lld points", (long long)n);
    long nb = (long)(n / BATCH);
    ck_assert_msg(nb >= before && nb <= total, "restored %ld batches; %ld acknowledged before the snapshot, %ld in all",
                  nb, before, total);
    for (long bi = 0; bi < nb + 2 && bi < total; bi++) {
        char f[96];
        snprintf(f, sizeof f, "{\"must\":[{\"key\":\"b\",\"match\":{\"value\":%ld}}]}", bi);
        ck_assert_int_eq(count_points(b.qport, "live", f), bi < nb ? BATCH : 0);
    }
    for (long id = 0; id < n; id += 7) {
        snprintf(path, sizeof path, "/collections/live/points/%ld", id);
        json_t *pa = call(a.port, "GET", path, NULL, 200), *pb = call(b.port, "GET", path, NULL, 200);
        ck_assert_msg(json_equal(pa, pb), "point %ld differs", id);
        json_decref(pa);
        json_decref(pb);
    }
    /* searches match the original's on the same points */
    char del[64];
    snprintf(del, sizeof del, "{\"must\":[{\"key\":\"b\",\"range\":{\"gte\":%ld}}]}", nb);
    char dbody[128];
    snprintf(dbody, sizeof dbody, "{\"filter\":%s}", del);
    json_decref(call(a.qport, "POST", "/collections/live/points/delete?wait=true", dbody, 200));
    ck_assert_int_eq(count_points(a.qport, "live", NULL), n);
    int same = 0;
    for (uint64_t q = 0; q < 20; q++) {
        char ia[512], ib[512];
        search_ids(a.port, "live", q, 1, ia, sizeof ia);
        search_ids(b.port, "live", q, 1, ib, sizeof ib);
        ck_assert_str_eq(ia, ib);
        search_ids(a.port, "live", q, 0, ia, sizeof ia);
        search_ids(b.port, "live", q, 0, ib, sizeof ib);
        same += strcmp(ia, ib) == 0;
    }
    ck_assert_msg(same >= 18, "approximate searches: %d of 20 the same", same);
    json_decref(snap);
    ck_assert_int_eq(test_server_stop(&a), 0);
    ck_assert_int_eq(test_server_stop(&b), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- the endpoints ---------------------------------------------------------------------- */

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void flip_copy(const char *from, const char *to, long cut, long flip)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert(in && out);
    int ch;
    for (long i = 0; (ch = fgetc(in)) != EOF && (cut < 0 || i < cut); i++) fputc(i == flip ? ch ^ 1 : ch, out);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

START_TEST(test_endpoints)
{
    if (run("curl --version >/dev/null 2>&1") != 0) {
        test_skip(TEST_SKIP_MISSING, "backup_http: curl not found: upload test");
        return;
    }
    char *dir = make_tmpdir("qv-bkhttp");
    char data[600], snaps[600], path[1024], cmd[4096], file[700], bad[700], body[1200];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(snaps, sizeof snaps, "%s/snaps", dir);
    snprintf(file, sizeof file, "%s/dl.snapshot", dir);
    snprintf(bad, sizeof bad, "%s/bad.snapshot", dir);
    test_server s;
    test_server_start(&s, data, 1, (const char *const[]){"--api-key-file", write_keys(dir), "--snapshots", snaps, NULL});
    json_decref(call(s.port, "PUT", "/collections/c", "{\"dim\":2,\"metric\":\"l2\",\"index\":{\"type\":\"flat\"}}", 201));
    json_decref(call(s.port, "PUT", "/collections/c/points",
                     "{\"points\":[{\"id\":1,\"vector\":[1,0],\"payload\":{\"x\":1}},{\"id\":2,\"vector\":[0,1]}]}", 200));

    /* native: create, list, download */
    json_t *d = call(s.port, "POST", "/collections/c/snapshots", NULL, 201);
    const char *name = json_string_value(json_object_get(d, "name"));
    const char *sum = json_string_value(json_object_get(d, "checksum"));
    ck_assert_ptr_nonnull(strstr(name, "c-"));
    ck_assert_uint_eq(strlen(sum), 64);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "points")), 2);
    json_t *l = call(s.port, "GET", "/collections/c/snapshots", NULL, 200);
    json_t *first = json_array_get(json_object_get(l, "snapshots"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(first, "name")), name);
    ck_assert_str_eq(json_string_value(json_object_get(first, "checksum")), sum);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "size")), json_integer_value(json_object_get(d, "size")));
    json_decref(l);
    snprintf(cmd, sizeof cmd, "curl -sf -H 'api-key: ro-key' -o '%s' http://127.0.0.1:%d/collections/c/snapshots/%s",
             file, s.port, name);
    ck_assert_int_eq(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "cd '%s/c' && sha256sum -c --status '%s.sha256' && echo '%s  %s' | sha256sum -c --status",
             snaps, name, sum, file);
    ck_assert_msg(run(cmd) == 0, "sidecar or download does not match sha256sum");
    /* Qdrant: create, list (Qdrant's envelope) */
    expect(s.qport, "POST", "/collections/c/snapshots?wait=true", NULL, 200, "\"result\":{\"name\":\"c-");
    expect(s.qport, "GET", "/collections/c/snapshots", NULL, 200, "\"checksum\":\"");
    expect(s.qport, "POST", "/collections/none/snapshots", NULL, 404, "doesn't exist");
    /* read-only keys read but do not write */
    int st;
    char *out = NULL;
    snprintf(path, sizeof path, "/collections/c/snapshots/%s", name);
    st = test_http(s.port, "POST", "/collections/c/snapshots", "api-key: ro-key\r\n", NULL, 60000, &out);
    ck_assert_int_eq(st, 403);
    free(out);
    st = test_http(s.port, "DELETE", path, "api-key: ro-key\r\n", NULL, 60000, &out);
    ck_assert_int_eq(st, 403);
    free(out);
    st = test_http(s.port, "GET", "/collections/c/snapshots", "api-key: ro-key\r\n", NULL, 60000, &out);
    ck_assert_int_eq(st, 200);
    free(out);

    /* change the collection, then bring the snapshot back: upload (multipart) */
    json_decref(call(s.port, "PUT", "/collections/c/points", "{\"points\":[{\"id\":3,\"vector\":[1,1]}]}", 200));
    snprintf(cmd, sizeof cmd, "curl -sf -H 'api-key: %s' -F 'snapshot=@%s' "
             "'http://127.0.0.1:%d/collections/c/snapshots/upload?priority=snapshot&checksum=%s' >/dev/null",
             KEY, file, s.qport, sum);
    ck_assert_int_eq(run(cmd), 0);
    ck_assert_int_eq(count_points(s.qport, "c", NULL), 2);
    expect(s.port, "GET", "/collections/c/points/1", NULL, 200, "\"payload\":{\"x\":1}");
    /* the raw file as the body, into a new name */
    snprintf(cmd, sizeof cmd, "curl -sf -H 'api-key: %s' -H 'Content-Type: application/octet-stream' --data-binary '@%s' "
             "http://127.0.0.1:%d/collections/c2/snapshots/upload >/dev/null", KEY, file, s.port);
    ck_assert_int_eq(run(cmd), 0);
    ck_assert_int_eq(count_points(s.qport, "c2", NULL), 2);

    /* refusals leave the collection as it is */
    json_decref(call(s.port, "PUT", "/collections/c/points", "{\"points\":[{\"id\":3,\"vector\":[1,1]}]}", 200));
    struct stat stt;
    ck_assert_int_eq(stat(file, &stt), 0);
    long size = (long)stt.st_size;
    for (int k = 0; k < 3; k++) {
        if (k == 0) flip_copy(file, bad, -1, size / 2);
        if (k == 1) flip_copy(file, bad, size - 10, -1);
        const char *check = k == 2 ? "&checksum=00000000000000000000000000000000000000000000000000000000000000ff" : "";
        snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' -H 'api-key: %s' -F 'snapshot=@%s' "
                 "'http://127.0.0.1:%d/collections/c/snapshots/upload?wait=true%s' | grep -qx 400", KEY,
                 k == 2 ? file : bad, s.qport, check);
        ck_assert_msg(run(cmd) == 0, "a damaged upload (case %d) was not refused with 400", k);
        ck_assert_int_eq(count_points(s.qport, "c", NULL), 3);
    }
    /* the message names the upload, not the temporary file it was kept in */
    snprintf(cmd, sizeof cmd, "curl -s -H 'api-key: %s' -F 'snapshot=@%s' http://127.0.0.1:%d/collections/c/snapshots/upload "
             "| grep -q '\"invalid_snapshot\",\"message\":\"the upload: frame at offset'", KEY, bad, s.port);
    ck_assert_msg(run(cmd) == 0, "the refusal of a truncated upload does not say so");
    snprintf(body, sizeof body, "{\"location\":\"file://%s/c/%s\",\"checksum\":\"%s\"}", snaps, name,
             "1111111111111111111111111111111111111111111111111111111111111111");
    expect(s.port, "PUT", "/collections/c/snapshots/recover", body, 400, "not the expected");
    ck_assert_int_eq(count_points(s.qport, "c", NULL), 3);
    snprintf(body, sizeof body, "{\"location\":\"file://%s\"}", file);       /* outside the directory */
    expect(s.port, "PUT", "/collections/c/snapshots/recover", body, 403, "inside the snapshots directory");
    expect(s.port, "PUT", "/collections/c/snapshots/recover", "{\"location\":\"ftp://x/y\"}", 400, "file://");
    expect(s.port, "PUT", "/collections/c/snapshots/recover", "{\"location\":5}", 400, "location");
    expect(s.port, "GET", "/collections/c/snapshots/..%2Fkeys", NULL, 404, "no snapshot");
    expect(s.port, "GET", "/collections/c/snapshots/nope.snapshot", NULL, 404, "no snapshot");
    expect(s.port, "DELETE", "/collections/c/snapshots/nope.snapshot", NULL, 404, "no snapshot");
    /* file:// recover (Qdrant), the sound file */
    snprintf(body, sizeof body, "{\"location\":\"file://%s/c/%s\",\"checksum\":\"%s\"}", snaps, name, sum);
    expect(s.qport, "PUT", "/collections/c/snapshots/recover?wait=true", body, 200, "\"result\":true");
    ck_assert_int_eq(count_points(s.qport, "c", NULL), 2);

    /* the whole store: create (Qdrant), list, recover everything (native), delete */
    json_t *full = call(s.qport, "POST", "/snapshots", NULL, 200);
    const char *fname = json_string_value(json_object_get(json_object_get(full, "result"), "name"));
    ck_assert_ptr_nonnull(strstr(fname, "full-snapshot-"));
    /* the first of its kind: no -k suffix, whatever names the collections' snapshots took */
    ck_assert_uint_eq(strlen(fname), strlen("full-snapshot-2026-01-01-00-00-00.snapshot"));
    expect(s.port, "GET", "/snapshots", NULL, 200, fname);
    json_decref(call(s.port, "DELETE", "/collections/c2", NULL, 200));
    snprintf(body, sizeof body, "{\"location\":\"file://%s/%s\"}", snaps, fname);
    json_t *rec = call(s.port, "PUT", "/snapshots/recover", body, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "collections")), 2);
    json_decref(rec);
    ck_assert_int_eq(count_points(s.qport, "c2", NULL), 2);
    /* a file of two collections cannot go into one */
    expect(s.port, "PUT", "/collections/c/snapshots/recover", body, 400, "holds 2 collections");
    snprintf(path, sizeof path, "/snapshots/%s", fname);
    expect(s.qport, "DELETE", path, NULL, 200, "\"result\":true");
    expect(s.qport, "GET", path, NULL, 404, "no snapshot");
    snprintf(path, sizeof path, "/collections/c/snapshots/%s", name);
    expect(s.port, "DELETE", path, NULL, 200, "\"deleted\":true");
    snprintf(cmd, sizeof cmd, "test ! -e '%s/c/%s' && test ! -e '%s/c/%s.sha256'", snaps, name, snaps, name);
    ck_assert_int_eq(run(cmd), 0);
    json_decref(full);
    json_decref(d);
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- a location on the server itself -------------------------------------------------- */

START_TEST(test_self_location)
{
    char *dir = make_tmpdir("qv-bkhttp");
    char data[600], body[1200], url[600];
    snprintf(data, sizeof data, "%s/data", dir);
    test_server s;
    test_server_start(&s, data, 1, (const char *const[]){"--api-key-file", write_keys(dir), "--threads", "1", NULL});
    json_decref(call(s.port, "PUT", "/collections/c", "{\"dim\":2,\"metric\":\"l2\",\"index\":{\"type\":\"flat\"}}", 201));
    json_decref(call(s.port, "PUT", "/collections/c/points", "{\"points\":[{\"id\":1,\"vector\":[1,0]}]}", 200));
    json_t *d = call(s.port, "POST", "/collections/c/snapshots", NULL, 201);
    const char *name = json_string_value(json_object_get(d, "name"));
    json_t *f = call(s.port, "POST", "/snapshots", NULL, 201);
    const char *fname = json_string_value(json_object_get(f, "name"));
    /* both listeners, both kinds of download URL, "localhost" and 127.0.0.1 */
    const struct { int to, in; const char *host, *coll; } cases[] = {
        {s.port, s.port, "127.0.0.1", "c"}, {s.qport, s.qport, "localhost", "c"}, {s.qport, s.port, "localhost", "c"},
        {s.port, s.qport, "127.0.0.1", NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].coll) snprintf(url, sizeof url, "http://%s:%d/collections/c/snapshots/%s", cases[i].host, cases[i].in, name);
        else snprintf(url, sizeof url, "http://%s:%d/snapshots/%s", cases[i].host, cases[i].in, fname);
        snprintf(body, sizeof body, "{\"location\":\"%s\",\"api_key\":\"%s\"}", url, KEY);
        char *out = NULL;
        int st = test_http(cases[i].to, "PUT", cases[i].coll ? "/collections/r/snapshots/recover" : "/snapshots/recover",
                           "api-key: " KEY "\r\n", body, 20000, &out);
        ck_assert_msg(st == 200, "case %zu: recover from %s -> %d %s (0: no answer in 20 s)", i, url, st, out ? out : "");
        free(out);
    }
    ck_assert_int_eq(count_points(s.qport, "r", NULL), 1);
    snprintf(body, sizeof body, "{\"location\":\"http://127.0.0.1:%d/collections/c/snapshots/no.snapshot\"}", s.port);
    expect(s.port, "PUT", "/collections/r/snapshots/recover", body, 404, "no such snapshot on this server");
    snprintf(body, sizeof body, "{\"location\":\"http://127.0.0.1:%d/collections\"}", s.qport);
    expect(s.port, "PUT", "/collections/r/snapshots/recover", body, 400, "is this server");
    expect(s.port, "GET", "/healthz", NULL, 200, "ok");
    json_decref(d);
    json_decref(f);
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- a restore from another process ----------------------------------------------------- */

START_TEST(test_other_process)
{
    char *dir = make_tmpdir("qv-bkhttp");
    char data[600], snaps[600], cmd[4096], file[1200];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(snaps, sizeof snaps, "%s/snaps", dir);
    test_server s;
    test_server_start(&s, data, 1, (const char *const[]){"--api-key-file", write_keys(dir), "--snapshots", snaps, NULL});
    json_decref(call(s.port, "PUT", "/collections/c", "{\"dim\":2,\"metric\":\"l2\",\"index\":{\"type\":\"flat\"}}", 201));
    json_decref(call(s.port, "PUT", "/collections/c/points", "{\"points\":[{\"id\":1,\"vector\":[1,0]}]}", 200));
    json_t *d = call(s.port, "POST", "/collections/c/snapshots", NULL, 201);
    snprintf(file, sizeof file, "%s/c/%s", snaps, json_string_value(json_object_get(d, "name")));
    json_decref(call(s.port, "PUT", "/collections/c/points", "{\"points\":[{\"id\":2,\"vector\":[0,1]}]}", 200));
    snprintf(cmd, sizeof cmd, "%s/quiver restore '%s' '%s' --replace 2>&1 | grep -q 'open for writing in another process'"
             " && ! %s/quiver restore '%s' '%s' --replace 2>/dev/null", build_dir(), data, file, build_dir(), data, file);
    ck_assert_msg(run(cmd) == 0, "a replacing restore under a running quiverd was not refused");
    json_decref(call(s.port, "PUT", "/collections/c/points", "{\"points\":[{\"id\":3,\"vector\":[1,1]}]}", 200));
    ck_assert_int_eq(count_points(s.qport, "c", NULL), 3);
    snprintf(cmd, sizeof cmd, "%s/quiver restore '%s' '%s' --as c2 >/dev/null 2>&1", build_dir(), data, file);
    ck_assert_int_eq(run(cmd), 0);
    ck_assert_int_eq(count_points(s.qport, "c2", NULL), 1);
    ck_assert_int_eq(test_server_stop(&s), 0);
    /* every acknowledged write survived */
    snprintf(cmd, sizeof cmd, "%s/quiver info '%s' c | grep -q 'points 3,'", build_dir(), data);
    ck_assert_int_eq(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/quiver restore '%s' '%s' --replace >/dev/null 2>&1 && %s/quiver info '%s' c | "
             "grep -q 'points 1,'", build_dir(), data, file, build_dir(), data);
    ck_assert_int_eq(run(cmd), 0);
    json_decref(d);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_backup_http_suite(void)
{
    Suite *s = suite_create("backup_http");
    TCase *tc = tcase_create("backup_http");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_consistency);
    tcase_add_test(tc, test_endpoints);
    tcase_add_test(tc, test_self_location);
    tcase_add_test(tc, test_other_process);
    suite_add_tcase(s, tc);
    return s;
}
