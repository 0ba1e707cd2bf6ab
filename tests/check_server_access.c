/*
 * tests/check_server_access.c -- who may do what (issue 19), on both listeners.
 *
 * "access" suite: quiverd with both listeners and a key file holding a read-write key,
 * a read-only key and a read-write key limited to collection "docs". Tokens are made
 * here the way Qdrant's are (HS256 over base64url JSON, OpenSSL's HMAC) and each case
 * is asked of the native and the Qdrant listener:
 *   - valid "r" and "m" tokens; a token limited to one collection; a key limited to one;
 *   - an expired token, a bad signature, alg "none": 401 with a JSON error;
 *   - the wrong collection: 403; listings show only the collections a caller may see.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

#define ADMIN "admin-key-0123456789"
#define READER "reader-key-0123456789"
#define DOCS "docs-key-0123456789"

static void teardown(void)
{
    test_server_kill_all();
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[j++] = a[v >> 18 & 63];
        out[j++] = a[v >> 12 & 63];
        if (i + 1 < n) out[j++] = a[v >> 6 & 63];
        if (i + 2 < n) out[j++] = a[v & 63];
    }
    out[j] = 0;
}

/* A token with header {"alg":alg,"typ":"JWT"} and claims, signed with key (none: no
 * signature). Returns a static buffer. */
static const char *token(const char *alg, const char *claims, const char *key)
{
    static char tok[4096];
    char header[64], part[2048];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    b64url((const unsigned char *)header, strlen(header), tok);
    strcat(tok, ".");
    b64url((const unsigned char *)claims, strlen(claims), part);
    strcat(tok, part);
    if (key) {
        ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)tok, strlen(tok), mac, &maclen));
        b64url(mac, maclen, part);
    } else {
        part[0] = 0;
    }
    strcat(tok, ".");
    strcat(tok, part);
    return tok;
}

typedef struct { int port, qdrant; } lst;

/* One request with credential cred (NULL: none) as Bearer on the native listener and as
 * api-key on Qdrant's; returns the status and checks that a 4xx has a JSON error. */
static int ask(lst l, const char *method, const char *what, const char *cred, const char *body, char **out)
{
    char path[256], hdr[4600] = "";
    if (strcmp(what, "list") == 0) snprintf(path, sizeof path, "/collections");
    else if (strncmp(what, "get:", 4) == 0) snprintf(path, sizeof path, "/collections/%s", what + 4);
    else snprintf(path, sizeof path, "/collections/%s/points", what + 4);     /* "put:NAME" */
    if (cred) snprintf(hdr, sizeof hdr, l.qdrant ? "api-key: %s\r\n" : "Authorization: Bearer %s\r\n", cred);
    char *reply = NULL;
    int st = test_http(l.port, method, path, hdr, body, 10000, &reply);
    if (st >= 400) {
        json_t *j = json_loads(reply, 0, NULL);
        ck_assert_msg(j && (l.qdrant ? json_is_string(json_object_get(json_object_get(j, "status"), "error"))
                                     : json_is_object(json_object_get(j, "error"))),
                      "%s %s: %d without a JSON error: %s", method, path, st, reply);
        json_decref(j);
    }
    if (out) *out = reply;
    else free(reply);
    return st;
}

#define UPSERT "{\"points\":[{\"id\":7,\"vector\":[1,2]}]}"

/* The names a listing shows, comma-joined, into buf. */
static void listed(lst l, const char *cred, char *buf, size_t len)
{
    char *reply = NULL;
    ck_assert_int_eq(ask(l, "GET", "list", cred, NULL, &reply), 200);
    json_t *j = json_loads(reply, 0, NULL), *arr = json_object_get(l.qdrant ? json_object_get(j, "result") : j, "collections"), *c;
    size_t i;
    ck_assert_msg(json_is_array(arr), "listing: %s", reply);
    buf[0] = 0;
    json_array_foreach(arr, i, c) {
        if (buf[0]) strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, json_string_value(json_object_get(c, "name")), len - strlen(buf) - 1);
    }
    json_decref(j);
    free(reply);
}

START_TEST(test_tokens_and_limited_keys)
{
    char *dir = make_tmpdir("qv-access"), keys[4096], data[4096], names[256];
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(data, sizeof data, "%s/db", dir);
    FILE *f = fopen(keys, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# admin, reader, and a key for docs alone\n" ADMIN " rw\n" READER " ro\n" DOCS " rw docs\n");
    fclose(f);
    test_server s;
    test_server_start(&s, data, 1, (const char *const[]){"--api-key-file", keys, NULL});
    lst both[2] = {{s.port, 0}, {s.qport, 1}};
    ck_assert_int_eq(ask(both[0], "PUT", "get:docs", ADMIN, "{\"dim\":2}", NULL), 201);
    ck_assert_int_eq(ask(both[0], "PUT", "get:other", ADMIN, "{\"dim\":2}", NULL), 201);

    char r_tok[4096], m_tok[4096], docs_tok[4096], expired[4096], forged[4096], none[4096], ro_signed[4096];
    long later = (long)time(NULL) + 3600;
    char claims[256];
    snprintf(claims, sizeof claims, "{\"access\":\"r\",\"exp\":%ld}", later);
    strcpy(r_tok, token("HS256", claims, ADMIN));
    strcpy(m_tok, token("HS256", "{\"access\":\"m\",\"sub\":\"alice\"}", ADMIN));
    strcpy(docs_tok, token("HS256", "{\"access\":[{\"collection\":\"docs\",\"access\":\"rw\"}]}", ADMIN));
    snprintf(claims, sizeof claims, "{\"access\":\"m\",\"exp\":%ld}", (long)time(NULL) - 10);
    strcpy(expired, token("HS256", claims, ADMIN));
    strcpy(forged, token("HS256", "{\"access\":\"m\"}", "not-the-server-key"));
    strcpy(none, token("none", "{\"access\":\"m\"}", NULL));
    strcpy(ro_signed, token("HS256", "{\"access\":\"m\"}", READER));   /* a token cannot exceed its key */

    for (int i = 0; i < 2; i++) {
        lst l = both[i];
        /* valid "r": reads everything, writes nothing */
        ck_assert_int_eq(ask(l, "GET", "get:docs", r_tok, NULL, NULL), 200);
        ck_assert_int_eq(ask(l, "GET", "get:other", r_tok, NULL, NULL), 200);
        ck_assert_int_eq(ask(l, "PUT", "put:docs", r_tok, UPSERT, NULL), 403);
        listed(l, r_tok, names, sizeof names);
        ck_assert_str_eq(names, "docs,other");
        /* valid "m": reads and writes everything */
        ck_assert_int_eq(ask(l, "PUT", "put:docs", m_tok, UPSERT, NULL), 200);
        ck_assert_int_eq(ask(l, "PUT", "put:other", m_tok, UPSERT, NULL), 200);
        /* limited to docs: the wrong collection is 403, and the listing shows docs alone */
        ck_assert_int_eq(ask(l, "PUT", "put:docs", docs_tok, UPSERT, NULL), 200);
        ck_assert_int_eq(ask(l, "GET", "get:docs", docs_tok, NULL, NULL), 200);
        ck_assert_int_eq(ask(l, "GET", "get:other", docs_tok, NULL, NULL), 403);
        ck_assert_int_eq(ask(l, "PUT", "put:other", docs_tok, UPSERT, NULL), 403);
        listed(l, docs_tok, names, sizeof names);
        ck_assert_str_eq(names, "docs");
        /* the key file's limit works the same way */
        ck_assert_int_eq(ask(l, "PUT", "put:docs", DOCS, UPSERT, NULL), 200);
        ck_assert_int_eq(ask(l, "GET", "get:other", DOCS, NULL, NULL), 403);
        ck_assert_int_eq(ask(l, "PUT", "get:other", DOCS, "{\"dim\":2}", NULL), 403);     /* create */
        listed(l, DOCS, names, sizeof names);
        ck_assert_str_eq(names, "docs");
        /* expired, forged, alg none: 401 */
        ck_assert_int_eq(ask(l, "GET", "get:docs", expired, NULL, NULL), 401);
        ck_assert_int_eq(ask(l, "GET", "get:docs", forged, NULL, NULL), 401);
        ck_assert_int_eq(ask(l, "GET", "get:docs", none, NULL, NULL), 401);
        ck_assert_int_eq(ask(l, "GET", "list", none, NULL, NULL), 401);
        /* a token signed by the read-only key reads, and writes nothing, whatever it claims */
        ck_assert_int_eq(ask(l, "GET", "get:docs", ro_signed, NULL, NULL), 200);
        ck_assert_int_eq(ask(l, "PUT", "put:docs", ro_signed, UPSERT, NULL), 403);
        /* the plain keys as before */
        ck_assert_int_eq(ask(l, "PUT", "put:docs", READER, UPSERT, NULL), 403);
        ck_assert_int_eq(ask(l, "PUT", "put:docs", ADMIN, UPSERT, NULL), 200);
        ck_assert_int_eq(ask(l, "GET", "get:docs", NULL, NULL, NULL), 401);
    }
    /* metrics name every collection: not for a caller limited to some */
    ck_assert_int_eq(test_http(s.port, "GET", "/metrics", "api-key: " DOCS "\r\n", NULL, 10000, NULL), 403);
    ck_assert_int_eq(test_http(s.port, "GET", "/metrics", "api-key: " READER "\r\n", NULL, 10000, NULL), 200);
    /* whole-store snapshots hold every collection: not for a caller limited to some
     * (a collection's own snapshots follow its access) */
    ck_assert_int_eq(test_http(s.port, "POST", "/snapshots", "api-key: " DOCS "\r\n", "{}", 10000, NULL), 403);
    ck_assert_int_eq(test_http(s.port, "GET", "/snapshots", "api-key: " DOCS "\r\n", NULL, 10000, NULL), 403);
    ck_assert_int_eq(test_http(s.port, "PUT", "/snapshots/recover", "api-key: " DOCS "\r\n", "{\"location\":\"x\"}", 10000, NULL), 403);
    ck_assert_int_eq(test_http(s.port, "GET", "/snapshots", "api-key: " READER "\r\n", NULL, 10000, NULL), 200);
    ck_assert_int_eq(test_http(s.port, "GET", "/collections/other/snapshots", "api-key: " DOCS "\r\n", NULL, 10000, NULL), 403);
    ck_assert_int_eq(test_http(s.port, "GET", "/collections/docs/snapshots", "api-key: " DOCS "\r\n", NULL, 10000, NULL), 200);
    /* nor may it restore another collection's snapshot into its own (a file:// location in
     * the snapshots directory, or this server's download URL): that would read `other` */
    char *reply = NULL, body[8192];
    ck_assert_int_eq(test_http(s.port, "POST", "/collections/other/snapshots", "api-key: " ADMIN "\r\n", "{}", 10000, &reply), 201);
    const char *nm = strstr(reply, "\"name\":\"");
    ck_assert_ptr_nonnull(nm);
    nm += 8;
    int nl = (int)strcspn(nm, "\"");
    snprintf(body, sizeof body, "{\"location\":\"file://%s/backups/other/%.*s\"}", data, nl, nm);
    ck_assert_int_eq(test_http(s.port, "PUT", "/collections/docs/snapshots/recover", "api-key: " DOCS "\r\n", body, 10000, NULL), 403);
    snprintf(body, sizeof body, "{\"location\":\"http://127.0.0.1:%d/collections/other/snapshots/%.*s\"}", s.port, nl, nm);
    ck_assert_int_eq(test_http(s.port, "PUT", "/collections/docs/snapshots/recover", "api-key: " DOCS "\r\n", body, 10000, NULL), 403);
    free(reply);
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* Malformed tokens and key files are refused with a reason, never a crash. */
START_TEST(test_bad_tokens_and_key_files)
{
    char *dir = make_tmpdir("qv-access"), keys[4096], data[4096];
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(data, sizeof data, "%s/db", dir);
    FILE *f = fopen(keys, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, ADMIN " rw\n");
    fclose(f);
    test_server s;
    test_server_start(&s, data, 1, (const char *const[]){"--api-key-file", keys, NULL});
    lst l = {s.port, 0};
    ck_assert_int_eq(ask(l, "PUT", "get:docs", ADMIN, "{\"dim\":2}", NULL), 201);
    const char *raw[] = {"a.b.c", "..", "e30.e30.", "!!!.e30.abc", "e30.e30.e30.e30"};
    static const char *const bad[][2] = {
        {"HS256", "{\"access\":\"x\"}"}, {"HS256", "{\"access\":7}"},
        {"HS256", "{\"access\":[{\"collection\":\"docs\"}]}"},
        {"HS256", "{\"access\":[{\"collection\":\"docs\",\"access\":\"rw\",\"x\":1}]}"},
        {"HS256", "{\"access\":[{\"collection\":\"docs\",\"access\":\"m\"}]}"},
        {"HS256", "{\"access\":\"m\",\"exp\":\"never\"}"}, {"HS256", "{\"access\":\"m\",\"value_exists\":{}}"},
        {"HS512", "{\"access\":\"m\"}"}, {"hs256", "{\"access\":\"m\"}"}, {"HS256", "[1]"}, {"HS256", "{\"access\":"},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
        ck_assert_msg(ask(l, "GET", "get:docs", raw[i], NULL, NULL) == 401, "token '%s' accepted", raw[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ask(l, "GET", "get:docs", token(bad[i][0], bad[i][1], ADMIN), NULL, NULL) == 401,
                      "token %s %s accepted", bad[i][0], bad[i][1]);
    /* the same claims, well formed, pass: the refusals above are the claims' */
    ck_assert_int_eq(ask(l, "GET", "get:docs", token("HS256", "{\"access\":[{\"collection\":\"docs\",\"access\":\"r\"}]}", ADMIN), NULL, NULL), 200);
    ck_assert_int_eq(test_server_stop(&s), 0);
    /* a key file with a bad collection list stops quiverd at startup */
    f = fopen(keys, "w");
    fprintf(f, ADMIN " rw docs,/bad\n");
    fclose(f);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "%s/quiverd --listen 127.0.0.1:0 --data %s --api-key-file %s 2>/dev/null", build_dir(), data, keys);
    int st = system(cmd);
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_server_access_suite(void)
{
    Suite *s = suite_create("access");
    TCase *tc = tcase_create("tokens");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_tokens_and_limited_keys);
    tcase_add_test(tc, test_bad_tokens_and_key_files);
    suite_add_tcase(s, tc);
    return s;
}
