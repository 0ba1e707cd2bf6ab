/*
 * tests/check_storage_alias.c -- collection aliases (storage/alias.c).
 *
 * "alias" suite:
 *   - create, rename, delete in one action list; a failing action leaves nothing applied;
 *   - an alias opens its collection (qv_collection_open, qv_alias_resolve);
 *   - an alias and a collection cannot share a name (either way round, or by a restore):
 *     QV_EEXIST;
 *   - unknown alias or collection: QV_ENOTFOUND; bad names: QV_EINVAL;
 *   - aliases survive a reopen; dropping a collection deletes its aliases;
 *   - a switch under a stream of opens through the alias, with the old collection
 *     dropped right after each switch, never gives QV_ENOTFOUND at the open.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quiver.h"
#include "tests/test_util.h"

static void make_coll(qv_db *db, const char *name, float base)
{
    qv_collection_config cfg = {0};
    qv_coll *c = NULL;
    uint64_t id = 1;
    float v[4] = {base, 0, 0, 0};
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_L2);
    QV_CK(qv_collection_create(db, name, &cfg, &c));
    QV_CK(qv_upsert(c, 1, &id, v, NULL));
    qv_collection_close(c);
}

/* The first component of point 1 of the collection name opens (its "base"). */
static float base_of(qv_db *db, const char *name)
{
    qv_coll *c = NULL;
    float v[4];
    QV_CK(qv_collection_open(db, name, &c));
    QV_CK(qv_get(c, 1, v, NULL));
    qv_collection_close(c);
    return v[0];
}

static size_t count_aliases(qv_db *db, const char *coll)
{
    qv_alias_info *a = NULL;
    size_t n = 0;
    QV_CK(qv_alias_list(db, coll, &a, &n));
    qv_free(a);
    return n;
}

START_TEST(test_actions)
{
    char *dir = make_tmpdir("qv-alias");
    qv_db *db = NULL;
    char buf[80];
    QV_CK(qv_db_open(dir, NULL, &db));
    make_coll(db, "v1", 1);
    make_coll(db, "v2", 2);

    qv_alias_action create[] = {{QV_ALIAS_CREATE, "prod", "v1"}, {QV_ALIAS_CREATE, "dev", "v2"}};
    QV_CK(qv_alias_update(db, 2, create));
    ck_assert_float_eq(base_of(db, "prod"), 1);
    ck_assert_float_eq(base_of(db, "dev"), 2);
    QV_CK(qv_alias_resolve(db, "prod", buf, sizeof buf));
    ck_assert_str_eq(buf, "v1");
    QV_CK(qv_alias_resolve(db, "v2", buf, sizeof buf));
    ck_assert_str_eq(buf, "v2");

    /* the info of a handle opened through an alias names the collection */
    qv_coll *c = NULL;
    qv_collection_info info;
    QV_CK(qv_collection_open(db, "prod", &c));
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_str_eq(info.name, "v1");
    qv_collection_close(c);

    /* the switch: delete + create in one list */
    qv_alias_action sw[] = {{QV_ALIAS_DELETE, "prod", NULL}, {QV_ALIAS_CREATE, "prod", "v2"}};
    QV_CK(qv_alias_update(db, 2, sw));
    ck_assert_float_eq(base_of(db, "prod"), 2);
    ck_assert_uint_eq(count_aliases(db, "v2"), 2);
    ck_assert_uint_eq(count_aliases(db, "v1"), 0);

    /* all or none: the second action fails, the first (a rename) is not applied */
    qv_alias_action bad[] = {{QV_ALIAS_RENAME, "dev", "staging"}, {QV_ALIAS_DELETE, "nosuch", NULL}};
    QV_CK_FAIL(qv_alias_update(db, 2, bad), QV_ENOTFOUND);
    ck_assert_msg(strstr(qv_last_error(), "nosuch") != NULL, "message: %s", qv_last_error());
    QV_CK(qv_alias_resolve(db, "dev", buf, sizeof buf));
    QV_CK_FAIL(qv_alias_resolve(db, "staging", buf, sizeof buf), QV_ENOTFOUND);

    qv_alias_action ren[] = {{QV_ALIAS_RENAME, "dev", "staging"}};
    QV_CK(qv_alias_update(db, 1, ren));
    ck_assert_float_eq(base_of(db, "staging"), 2);
    QV_CK_FAIL(qv_collection_open(db, "dev", &c), QV_ENOTFOUND);

    /* a restore cannot take an alias's name either */
    char bk[600];
    qv_restore_options ro;
    snprintf(bk, sizeof bk, "%s/v1.snapshot", dir);
    QV_CK(qv_backup_create(db, "v1", bk, NULL));
    qv_restore_options_init(&ro);
    ro.rename = "staging";
    QV_CK_FAIL(qv_backup_restore(db, bk, &ro, NULL), QV_EEXIST);
    ck_assert_msg(strstr(qv_last_error(), "alias") != NULL, "message: %s", qv_last_error());
    ck_assert_float_eq(base_of(db, "staging"), 2);

    /* name clashes, both ways */
    qv_alias_action clash[] = {{QV_ALIAS_CREATE, "v1", "v2"}};
    QV_CK_FAIL(qv_alias_update(db, 1, clash), QV_EEXIST);
    qv_alias_action clash2[] = {{QV_ALIAS_RENAME, "staging", "v1"}};
    QV_CK_FAIL(qv_alias_update(db, 1, clash2), QV_EEXIST);
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_L2);
    QV_CK_FAIL(qv_collection_create(db, "prod", &cfg, NULL), QV_EEXIST);
    ck_assert_msg(strstr(qv_last_error(), "alias") != NULL, "message: %s", qv_last_error());

    /* bad input */
    qv_alias_action nocoll[] = {{QV_ALIAS_CREATE, "x", "nosuch"}};
    QV_CK_FAIL(qv_alias_update(db, 1, nocoll), QV_ENOTFOUND);
    qv_alias_action badname[] = {{QV_ALIAS_CREATE, "a b", "v1"}};
    QV_CK_FAIL(qv_alias_update(db, 1, badname), QV_EINVAL);
    qv_alias_action nulltarget[] = {{QV_ALIAS_CREATE, "x", NULL}};
    QV_CK_FAIL(qv_alias_update(db, 1, nulltarget), QV_EINVAL);
    qv_alias_action badop[] = {{(qv_alias_op)9, "x", "v1"}};
    QV_CK_FAIL(qv_alias_update(db, 1, badop), QV_EINVAL);
    QV_CK(qv_alias_update(db, 0, NULL));

    /* durable: after a reopen */
    QV_CK(qv_db_close(db));
    QV_CK(qv_db_open(dir, NULL, &db));
    ck_assert_float_eq(base_of(db, "prod"), 2);
    ck_assert_float_eq(base_of(db, "staging"), 2);
    ck_assert_uint_eq(count_aliases(db, NULL), 2);

    /* a drop deletes the collection's aliases */
    QV_CK(qv_collection_drop(db, "v2"));
    ck_assert_uint_eq(count_aliases(db, NULL), 0);
    QV_CK_FAIL(qv_collection_open(db, "prod", &c), QV_ENOTFOUND);
    make_coll(db, "prod", 3);          /* the name is free again */
    ck_assert_float_eq(base_of(db, "prod"), 3);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

typedef struct {
    qv_db *db;
    int stop;
    long opens, failures;
    char last_error[200];
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        qv_coll *c = NULL;
        int rc = qv_collection_open(a->db, "live", &c);
        if (rc != QV_OK) {
            a->failures++;
            snprintf(a->last_error, sizeof a->last_error, "%s: %s", qv_strerror(rc), qv_last_error());
        }
        qv_collection_close(c);
        a->opens++;
    }
    return NULL;
}

START_TEST(test_switch_under_opens)
{
    char *dir = make_tmpdir("qv-alias-switch");
    qv_db *db = NULL;
    char name[32], old[32];
    reader_arg a = {0};
    pthread_t t;
    int rounds = sanitized() ? 10 : 40;
    QV_CK(qv_db_open(dir, NULL, &db));
    make_coll(db, "gen0", 0);
    qv_alias_action first[] = {{QV_ALIAS_CREATE, "live", "gen0"}};
    QV_CK(qv_alias_update(db, 1, first));
    a.db = db;
    ck_assert_int_eq(pthread_create(&t, NULL, reader, &a), 0);
    for (int i = 1; i <= rounds; i++) {
        snprintf(old, sizeof old, "gen%d", i - 1);
        snprintf(name, sizeof name, "gen%d", i);
        make_coll(db, name, (float)i);
        qv_alias_action sw[] = {{QV_ALIAS_DELETE, "live", NULL}, {QV_ALIAS_CREATE, "live", name}};
        QV_CK(qv_alias_update(db, 2, sw));
        QV_CK(qv_collection_drop(db, old));
    }
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    ck_assert_msg(a.failures == 0, "%ld of %ld opens failed, last: %s", a.failures, a.opens, a.last_error);
    ck_assert_float_eq(base_of(db, "live"), (float)rounds);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_alias_suite(void)
{
    Suite *s = suite_create("alias");
    TCase *tc = tcase_create("alias");
    tcase_add_test(tc, test_actions);
    tcase_add_test(tc, test_switch_under_opens);
    suite_add_tcase(s, tc);
    return s;
}
