/*
 * tests/check_payload_races_http.c -- issue 25's payload races, reproduced over HTTP
 * against a live quiverd with 2 worker threads (Qdrant API), many times each.
 *
 * "payload_http" suite:
 *   - delete_not_undone: one client loops set payload on point X while another deletes X
 *     (?wait=true, 200); afterwards X must be 404. The old handler (qv_get, then qv_upsert
 *     of the vector read back) brought X back in most trials.
 *   - no_key_lost: two clients each set 150 distinct keys on one point (?wait=true, all
 *     200); the point must end with all 300. The old handler kept about 190 of them.
 * QV_RACE_TRIALS overrides the number of delete trials, QV_RACE_ROUNDS the rounds of the key
 * race (the check: 200 of each).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

#define TIMEOUT_MS 60000

static void put(int port, const char *method, const char *path, const char *body, int want)
{
    char *out = NULL;
    int st = test_http(port, method, path, NULL, body, TIMEOUT_MS, &out);
    ck_assert_msg(st == want, "%s %s -> %d %s (want %d)", method, path, st, out ? out : "", want);
    free(out);
}

/* The payload of point id as a parsed object; NULL when the point is absent (404). */
static json_t *get_payload(int port, uint64_t id)
{
    char path[96], *out = NULL;
    snprintf(path, sizeof path, "/collections/c/points/%llu", (unsigned long long)id);
    int st = test_http(port, "GET", path, NULL, NULL, TIMEOUT_MS, &out);
    ck_assert_msg(st == 200 || st == 404, "GET %s -> %d %s", path, st, out ? out : "");
    json_t *root = st == 200 ? json_loads(out, 0, NULL) : NULL, *p = NULL;
    if (root) p = json_incref(json_object_get(json_object_get(root, "result"), "payload"));
    ck_assert_msg(st == 404 || json_is_object(p), "GET %s: no payload in %s", path, out);
    json_decref(root);
    free(out);
    return p;
}

static void setup(test_server *s, char **dir)
{
    *dir = make_tmpdir("qv-prace");
    test_server_start(s, *dir, 1, NULL);
    put(s->qport, "PUT", "/collections/c", "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}", 200);
}

static void finish(test_server *s, char *dir)
{
    ck_assert_int_eq(test_server_stop(s), 0);
    rm_rf(dir);
    free(dir);
}

/* ---- bug 1 ------------------------------------------------------------------------------ */

typedef struct {
    int port;
    uint64_t id;
    int stop, sets;                /* atomics */
    int bad_status;                /* first status other than 200 / 404 */
} setter;

static void *set_loop(void *arg)
{
    setter *s = arg;
    char body[128];
    for (int i = 0; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); i++) {
        snprintf(body, sizeof body, "{\"payload\":{\"h\":%d},\"points\":[%llu]}", i, (unsigned long long)s->id);
        int st = test_http(s->port, "POST", "/collections/c/points/payload", NULL, body, TIMEOUT_MS, NULL);
        if (st == 404) break;                      /* the point is gone (listed ids must exist) */
        if (st != 200) { s->bad_status = st; break; }
        __atomic_add_fetch(&s->sets, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

START_TEST(test_delete_not_undone)
{
    test_server s;
    char *dir;
    setup(&s, &dir);
    int trials = getenv("QV_RACE_TRIALS") ? atoi(getenv("QV_RACE_TRIALS")) : sanitized() ? 20 : 60;
    int resurrected = 0;
    char body[192];
    for (int t = 0; t < trials; t++) {
        uint64_t id = 100 + (uint64_t)t;
        snprintf(body, sizeof body, "{\"points\":[{\"id\":%llu,\"vector\":[1,0,0,0],\"payload\":{\"v\":0}}]}",
                 (unsigned long long)id);
        put(s.qport, "PUT", "/collections/c/points?wait=true", body, 200);
        setter st = {s.qport, id, 0, 0, 0};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, set_loop, &st), 0);
        /* delete after 0, 1 or 2 updates went through, while more are in flight */
        while (__atomic_load_n(&st.sets, __ATOMIC_ACQUIRE) < t % 3) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        snprintf(body, sizeof body, "{\"points\":[%llu]}", (unsigned long long)id);
        put(s.qport, "POST", "/collections/c/points/delete?wait=true", body, 200);
        __atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        ck_assert_msg(st.bad_status == 0, "set payload answered %d", st.bad_status);
        json_t *p = get_payload(s.qport, id);
        if (p) {
            char *txt = json_dumps(p, JSON_COMPACT);
            fprintf(stderr, "payload_http: trial %d: point %llu deleted (200) but back: %s\n", t,
                    (unsigned long long)id, txt);
            free(txt);
            resurrected++;
        }
        json_decref(p);
    }
    if (getenv("QV_RACE_TRIALS")) fprintf(stderr, "payload_http: %d delete trials: %d undone\n", trials, resurrected);
    ck_assert_msg(resurrected == 0, "%d of %d acknowledged deletes undone", resurrected, trials);
    finish(&s, dir);
}
END_TEST

/* ---- bug 2 ------------------------------------------------------------------------------ */

typedef struct {
    int port;
    char prefix;
    int n;
    int bad_status;
    int id;                        /* the point */
} key_setter;

static void *set_keys(void *arg)
{
    key_setter *k = arg;
    char body[128];
    for (int i = 0; i < k->n; i++) {
        snprintf(body, sizeof body, "{\"payload\":{\"%c%d\":%d},\"points\":[%d]}", k->prefix, i, i, k->id);
        int st = test_http(k->port, "POST", "/collections/c/points/payload?wait=true", NULL, body, TIMEOUT_MS, NULL);
        if (st != 200) { k->bad_status = st; break; }
    }
    return NULL;
}

START_TEST(test_no_key_lost)
{
    test_server s;
    char *dir;
    setup(&s, &dir);
    int per = sanitized() ? 50 : 150, rounds = getenv("QV_RACE_ROUNDS") ? atoi(getenv("QV_RACE_ROUNDS")) : 1;
    size_t lost = 0;
    for (int round = 0; round < rounds; round++) {
        char body[160];
        int id = 1 + round;
        snprintf(body, sizeof body, "{\"points\":[{\"id\":%d,\"vector\":[1,0,0,0],\"payload\":{\"v\":0}}]}", id);
        put(s.qport, "PUT", "/collections/c/points?wait=true", body, 200);
        key_setter k[2] = {{s.qport, 'b', per, 0, id}, {s.qport, 'c', per, 0, id}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, set_keys, &k[i]), 0);
        for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++) ck_assert_msg(k[i].bad_status == 0, "client %d got %d", i, k[i].bad_status);
        json_t *p = get_payload(s.qport, (uint64_t)id);
        ck_assert_ptr_nonnull(p);
        lost += (size_t)(2 * per + 1) - json_object_size(p);
        json_decref(p);
    }
    if (rounds > 1) fprintf(stderr, "payload_http: %d rounds of 2 x %d keys: %zu lost\n", rounds, per, lost);
    ck_assert_msg(lost == 0, "%zu of %d keys lost", lost, 2 * per * rounds);
    finish(&s, dir);
}
END_TEST

Suite *qv_payload_http_suite(void)
{
    Suite *s = suite_create("payload_http");
    TCase *tc = tcase_create("races");
    tcase_add_checked_fixture(tc, NULL, test_server_kill_all);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_delete_not_undone);
    tcase_add_test(tc, test_no_key_lost);
    suite_add_tcase(s, tc);
    return s;
}
