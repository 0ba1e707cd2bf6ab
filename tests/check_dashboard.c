/*
 * tests/check_dashboard.c -- quiverd's web dashboard (GET /dashboard).
 *
 * "dashboard" suite:
 *   - files: the page and its files are served with their Content-Type and a
 *     Content-Security-Policy, without a key even when keys are required (the API calls
 *     are not); unknown files are 404, and nothing but GET/HEAD;
 *   - scroll: the native point listing the page's point browser pages through;
 *   - browser: tests/dashboard/test.mjs drives the page in headless chromium through
 *     puppeteer-core (collections table, config, points, searches, live charts, recall
 *     probe) and saves screenshots under <build>/dashboard/. Skipped, with a message, when
 *     node, chromium or tests/dashboard/node_modules is missing (make node-deps).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

#define KEY "dashboard-test-key"

static void teardown(void)
{
    test_server_kill_all();
}

static const char *write_keys(const char *dir)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/keys", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s rw\n", KEY);
    fclose(f);
    return path;
}

/* A quiverd with a key file on a fresh directory (dir returned, malloc'd). */
static char *start(test_server *s)
{
    char *dir = make_tmpdir("qv-dash");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    test_server_start(s, data, 0, (const char *const[]){"--api-key-file", write_keys(dir), NULL});
    return dir;
}

static void finish(test_server *s, char *dir)
{
    ck_assert_int_eq(test_server_stop(s), 0);
    rm_rf(dir);
    free(dir);
}

/* Status and body (malloc'd) of one request, with the key when key is set. */
static char *req(int port, const char *method, const char *path, int key, const char *body, int *status)
{
    char *out = NULL;
    *status = test_http(port, method, path, key ? "Authorization: Bearer " KEY "\r\n" : NULL, body, 60000, &out);
    ck_assert_msg(*status, "no HTTP answer to %s %s", method, path);
    return out;
}

static void expect(int port, const char *method, const char *path, int key, const char *body, int want_status,
                   const char *want)
{
    int st;
    char *b = req(port, method, path, key, body, &st);
    ck_assert_msg(st == want_status && strstr(b ? b : "", want), "%s %s -> %d %s (wanted %d with %s)", method, path,
                  st, b, want_status, want);
    free(b);
}

/* The headers of a GET, through curl (one of make deps' packages; the test client
 * returns bodies only). */
static char *headers_of(int port, const char *path)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "curl -s -D - -o /dev/null http://127.0.0.1:%d%s", port, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    pclose(p);
    return buf;
}

START_TEST(test_files)
{
    test_server s;
    char *dir = start(&s);
    /* the page and its files need no key; the API does */
    expect(s.port, "GET", "/dashboard", 0, NULL, 200, "<title>Quiver dashboard</title>");
    expect(s.port, "GET", "/dashboard/", 0, NULL, 200, "<title>Quiver dashboard</title>");
    expect(s.port, "GET", "/dashboard/index.html", 0, NULL, 200, "/dashboard/app.js");
    expect(s.port, "GET", "/dashboard/app.js", 0, NULL, 200, "sessionStorage");
    expect(s.port, "GET", "/dashboard/chart.js", 0, NULL, 200, "function drawChart");
    expect(s.port, "GET", "/dashboard/style.css", 0, NULL, 200, ":root");
    expect(s.port, "GET", "/collections", 0, NULL, 401, "unauthorized");
    expect(s.port, "GET", "/dashboard/nothing.js", 0, NULL, 404, "not_found");
    expect(s.port, "GET", "/dashboard/a/b", 0, NULL, 404, "not_found");
    expect(s.port, "GET", "/dashboardx", 1, NULL, 404, "not_found");
    expect(s.port, "POST", "/dashboard", 1, "{}", 405, "method_not_allowed");
    const char *h = headers_of(s.port, "/dashboard/app.js");
    ck_assert_msg(strstr(h, "Content-Type: text/javascript; charset=utf-8"), "%s", h);
    ck_assert_msg(strstr(h, "Content-Security-Policy: default-src 'self'"), "%s", h);
    h = headers_of(s.port, "/dashboard");
    ck_assert_msg(strstr(h, "HTTP/1.1 200") && strstr(h, "Content-Type: text/html; charset=utf-8"), "%s", h);
    h = headers_of(s.port, "/dashboard/style.css");
    ck_assert_msg(strstr(h, "Content-Type: text/css; charset=utf-8"), "%s", h);
    finish(&s, dir);
}
END_TEST

START_TEST(test_scroll)
{
    test_server s;
    char *dir = start(&s);
    expect(s.port, "PUT", "/collections/sc", 1, "{\"dim\":2,\"metric\":\"l2\",\"payload_index\":{\"lang\":\"keyword\"}}", 201, "\"sc\"");
    expect(s.port, "PUT", "/collections/sc/points", 1,
           "{\"points\":[{\"id\":3,\"vector\":[1,2],\"payload\":{\"lang\":\"en\"}},{\"id\":10,\"vector\":[3,4]},"
           "{\"id\":7,\"vector\":[5,6],\"payload\":{\"lang\":\"de\"}},{\"id\":1,\"vector\":[7,8],\"payload\":{\"lang\":\"en\"}}]}",
           200, "\"upserted\":4");
    /* pages in id order, each saying where the next begins */
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"limit\":2}", 200,
           "{\"points\":[{\"id\":1,\"payload\":{\"lang\":\"en\"}},{\"id\":3,\"payload\":{\"lang\":\"en\"}}],"
           "\"next_offset\":7,\"total\":4}");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"limit\":2,\"offset\":7}", 200,
           "{\"points\":[{\"id\":7,\"payload\":{\"lang\":\"de\"}},{\"id\":10,\"payload\":null}],\"next_offset\":null,\"total\":4}");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"offset\":8,\"with_payload\":false,\"with_vector\":true}",
           200, "{\"points\":[{\"id\":10,\"vector\":[3.0,4.0]}],\"next_offset\":null,\"total\":4}");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"offset\":11}", 200,
           "{\"points\":[],\"next_offset\":null,\"total\":4}");
    /* a filter: total counts the points that pass */
    expect(s.port, "POST", "/collections/sc/points/scroll", 1,
           "{\"filter\":{\"must\":[{\"key\":\"lang\",\"match\":\"en\"}]},\"limit\":1}", 200,
           "{\"points\":[{\"id\":1,\"payload\":{\"lang\":\"en\"}}],\"next_offset\":3,\"total\":2}");
    /* no body: the first 10 */
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, NULL, 200, "\"next_offset\":null,\"total\":4}");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"limit\":0}", 400, "'limit' must be in 1..10000");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"limit\":10001}", 400, "invalid_argument");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"offset\":-1}", 400, "invalid_argument");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"page\":2}", 400, "unknown_field");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"filter\":{\"must\":[{\"key\":\"lang\"}]}}", 400,
           "bad_filter");
    expect(s.port, "POST", "/collections/sc/points/scroll", 1, "{\"limit\":", 400, "invalid_json");
    expect(s.port, "POST", "/collections/none/points/scroll", 1, "{}", 404, "not_found");
    expect(s.port, "POST", "/collections/sc/points/scroll", 0, "{}", 401, "unauthorized");
    finish(&s, dir);
}
END_TEST

START_TEST(test_browser)
{
    if (system("node --version >/dev/null 2>&1") != 0) {
        test_skip(TEST_SKIP_MISSING, "dashboard: node not found: browser test");
        return;
    }
    const char *chromium = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
    if (access(chromium, X_OK) != 0) {
        test_skip(TEST_SKIP_MISSING, "dashboard: %s not found (apt-get install chromium): browser test", chromium);
        return;
    }
    if (access("tests/dashboard/node_modules/puppeteer-core/package.json", R_OK) != 0) {
        test_skip(TEST_SKIP_MISSING, "dashboard: tests/dashboard/node_modules missing (make node-deps): browser test");
        return;
    }
    test_server s;
    char *dir = start(&s);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "node tests/dashboard/test.mjs %d %s %s/dashboard %s", s.port, KEY, build_dir(), chromium);
    int rc = system(cmd);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s failed (status %d)", cmd, rc);
    finish(&s, dir);
}
END_TEST

Suite *qv_dashboard_suite(void)
{
    Suite *s = suite_create("dashboard");
    TCase *t = tcase_create("dashboard");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 180);
    tcase_add_test(t, test_files);
    tcase_add_test(t, test_scroll);
    tcase_add_test(t, test_browser);
    suite_add_tcase(s, t);
    return s;
}
