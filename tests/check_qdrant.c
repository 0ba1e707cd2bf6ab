/*
 * tests/check_qdrant.c -- the Qdrant-compatible API of quiverd (--qdrant-listen).
 *
 * "qdrant" suite:
 *   - node: starts quiverd with both listeners and an API key file and runs
 *     tests/qdrant/test.mjs, which drives it through the official Qdrant JS client and
 *     checks the answers against brute force and the native API (skipped, with a message,
 *     when node or tests/qdrant/node_modules is missing: `npm ci --prefix tests/qdrant`);
 *   - durable_uuid: UUID ids survive a restart (their mapping lives in LMDB), with a tiny
 *     blocking HTTP client so that it needs nothing but quiverd;
 *   - errors: Qdrant-style error envelopes, 401 without a key, 501 for what is unsupported.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

#define KEY "qdrant-test-key"

typedef struct { pid_t pid; int port, qport; } qserver;

static pid_t running;                       /* started and not yet reaped */

static void teardown(void)
{
    if (running) {
        kill(running, SIGKILL);
        waitpid(running, NULL, 0);
        running = 0;
    }
}

/* Start quiverd on dir with both listeners and key file keys; read both ready lines. */
static void start(qserver *s, const char *dir, const char *keys)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s/quiverd", build_dir());
    ck_assert_msg(access(bin, X_OK) == 0, "%s is not built", bin);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    const char *argv[] = {bin, "--listen", "127.0.0.1:0", "--qdrant-listen", "127.0.0.1:0", "--data", dir,
                          "--threads", "2", "--log-level", "warn", "--api-key-file", keys, NULL};
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    running = pid;
    s->pid = pid;
    char buf[512];
    size_t got = 0;
    buf[0] = 0;
    while (!(strstr(buf, "qdrant api listening on ") && strchr(strstr(buf, "qdrant api listening on "), '\n'))) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        ck_assert_msg(poll(&p, 1, 120000) > 0, "quiverd printed no ready lines within 120 s");
        ssize_t r = read(fds[0], buf + got, sizeof buf - 1 - got);
        ck_assert_msg(r > 0, "quiverd exited before its ready lines");
        got += (size_t)r;
        buf[got] = 0;
    }
    close(fds[0]);
    const char *l1 = strstr(buf, "quiverd listening on "), *l2 = strstr(buf, "quiverd qdrant api listening on ");
    ck_assert_msg(l1 && l2, "ready lines: %s", buf);
    const char *c1 = strchr(l1, '\n');
    while (c1 > l1 && c1[-1] != ':') c1--;
    s->port = atoi(c1);
    s->qport = atoi(strrchr(l2, ':') + 1);
    ck_assert_int_gt(s->port, 0);
    ck_assert_int_gt(s->qport, 0);
}

static int stop(qserver *s)
{
    kill(s->pid, SIGTERM);
    int st = 0;
    ck_assert_int_eq(waitpid(s->pid, &st, 0), s->pid);
    running = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* One request with Connection: close; *status and the body (malloc'd) returned. */
static char *http(int port, const char *method, const char *path, const char *key, const char *body, int *status)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char head[1024];
    size_t bl = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", method, path,
                      key ? "api-key: " : "", key ? key : "", key ? "\r\n" : "", bl);
    ck_assert_int_eq(write(fd, head, (size_t)hl), hl);
    if (bl) ck_assert_int_eq(write(fd, body, bl), (ssize_t)bl);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    for (;;) {
        if (n + 1 == cap) { cap *= 2; out = realloc(out, cap); ck_assert_ptr_nonnull(out); }
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    out[n] = 0;
    close(fd);
    ck_assert_msg(sscanf(out, "HTTP/1.1 %d", status) == 1, "no HTTP answer: %s", out);
    char *b = strstr(out, "\r\n\r\n");
    char *res = strdup(b ? b + 4 : "");
    free(out);
    return res;
}

/* Expect status and a body containing want. */
static void expect(int port, const char *method, const char *path, const char *key, const char *body, int want_status,
                   const char *want)
{
    int st = 0;
    char *b = http(port, method, path, key, body, &st);
    ck_assert_msg(st == want_status && strstr(b, want), "%s %s -> %d %s (wanted %d with %s)", method, path, st, b,
                  want_status, want);
    free(b);
}

static char *write_keys(const char *dir)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/keys", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s rw\nreadonly-key ro\n", KEY);
    fclose(f);
    return path;
}

START_TEST(test_node_client)
{
    if (system("node --version >/dev/null 2>&1") != 0) {
        test_skip(TEST_SKIP_MISSING, "qdrant: node not found: official client test");
        return;
    }
    if (access("tests/qdrant/node_modules/@qdrant/js-client-rest/package.json", R_OK) != 0) {
        test_skip(TEST_SKIP_MISSING, "qdrant: tests/qdrant/node_modules missing (npm ci --prefix tests/qdrant): "
                                     "official client test");
        return;
    }
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    qserver s;
    start(&s, data, write_keys(dir));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "node tests/qdrant/test.mjs %d %d %s", s.qport, s.port, KEY);
    int rc = system(cmd);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s failed (status %d)", cmd, rc);
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_durable_uuid)
{
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    const char *keys = write_keys(dir);
    const char *u = "6f1c0a2e-7d4b-4c1e-9a55-0123456789ab";
    qserver s;
    start(&s, data, keys);
    expect(s.qport, "PUT", "/collections/d", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}", 200, "\"result\":true");
    expect(s.qport, "PUT", "/collections/d/points?wait=true", KEY,
           "{\"points\":[{\"id\":\"6F1C0A2E-7D4B-4C1E-9A55-0123456789AB\",\"vector\":[1,2],"
           "\"payload\":{\"a\":1,\"ts\":1732694400.123,\"p\":0.1}},"
           "{\"id\":7,\"vector\":[2,1]}]}", 200, "\"status\":\"completed\"");
    ck_assert_int_eq(stop(&s), 0);
    start(&s, data, keys);
    char path[128];
    snprintf(path, sizeof path, "/collections/d/points/%s", u);
    expect(s.qport, "GET", path, KEY, NULL, 200, "\"id\":\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"");
    /* payload numbers come back with every digit (replies once cut them to 9) */
    expect(s.qport, "GET", path, KEY, NULL, 200, "\"payload\":{\"a\":1,\"ts\":1732694400.123,\"p\":0.1}");
    expect(s.qport, "POST", "/collections/d/points/search", KEY, "{\"vector\":[0,1],\"limit\":1,\"with_payload\":true}",
           200, "\"ts\":1732694400.123,");
    expect(s.qport, "POST", "/collections/d/points/search", KEY, "{\"vector\":[1,0],\"limit\":2}", 200,
           "[{\"id\":7,\"version\":0,\"score\":2.0");
    expect(s.qport, "POST", "/collections/d/points/search", KEY, "{\"vector\":[0,1],\"limit\":1}", 200,
           "\"id\":\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"");
    expect(s.qport, "POST", "/collections/d/points/count", KEY,
           "{\"filter\":{\"must\":[{\"has_id\":[\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"]}]}}", 200, "\"count\":1");
    /* the same UUID again replaces the point, it does not add one */
    expect(s.qport, "PUT", "/collections/d/points", KEY,
           "{\"points\":[{\"id\":\"6f1c0a2e7d4b4c1e9a550123456789ab\",\"vector\":[0,1]}]}", 200, "completed");
    expect(s.qport, "POST", "/collections/d/points/count", KEY, "{}", 200, "\"count\":2");
    expect(s.qport, "POST", "/collections/d/points/delete", KEY, "{\"points\":[\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"]}", 200, "completed");
    expect(s.qport, "GET", path, KEY, NULL, 404, "\"status\":{\"error\":");
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_errors)
{
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    qserver s;
    start(&s, data, write_keys(dir));
    expect(s.qport, "GET", "/", NULL, NULL, 200, "\"version\":");
    expect(s.qport, "GET", "/collections", NULL, NULL, 401, "\"status\":{\"error\":\"Unauthorized");
    expect(s.qport, "GET", "/collections", "wrong", NULL, 401, "\"time\":");
    expect(s.qport, "GET", "/collections", "readonly-key", NULL, 200, "\"result\":{\"collections\":[]},\"status\":\"ok\"");
    expect(s.qport, "PUT", "/collections/e", "readonly-key", "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}", 403, "read-only");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"v\":{\"size\":2,\"distance\":\"Dot\"}}}", 400, "named vectors");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Manhattan\"}}", 400, "Manhattan");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Euclid\"}}", 200, "true");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Euclid\"}}", 409, "already exists");
    expect(s.qport, "GET", "/collections/e/exists", KEY, NULL, 200, "{\"exists\":true}");
    expect(s.qport, "GET", "/collections/nope/exists", KEY, NULL, 200, "{\"exists\":false}");
    expect(s.qport, "GET", "/collections/nope", KEY, NULL, 404, "doesn't exist");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":-1,\"vector\":[1,2]}]}", 400, "unsigned");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":\"not-a-uuid\",\"vector\":[1,2]}]}", 400, "UUID");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":1,\"vector\":[1,2,3]}]}", 400, "dimension");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":1,\"vector\":{\"v\":[1,2]}}]}", 400, "named vectors");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":1,\"vector\":[1,2]},{\"id\":1,\"vector\":[3,4]}]}", 200, "completed");
    expect(s.qport, "GET", "/collections/e/points/1", KEY, NULL, 200, "\"vector\":[3.0,4.0]");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{\"vector\":[3,4],\"filter\":{\"must\":[{\"key\":\"t\",\"match\":{\"text\":\"a\"}}]}}", 400, "full-text");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{\"vector\":[3,4],\"filter\":{\"should\":[{\"has_id\":[1]}]}}", 400, "has_id");
    expect(s.qport, "POST", "/collections/e/points/query", KEY, "{\"prefetch\":[{\"query\":[1,2]}],\"query\":{\"fusion\":\"rrf\"}}", 400, "prefetch");
    expect(s.qport, "POST", "/collections/e/points/query", KEY, "{\"query\":[3,4],\"using\":\"img\"}", 400, "named vectors");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{\"vector\":[3,4],\"limit\":1}", 200, "\"score\":0.0");
    expect(s.qport, "POST", "/collections/e/points/recommend", KEY, "{}", 501, "recommend is not supported");
    expect(s.qport, "GET", "/collections/e/snapshots", KEY, NULL, 501, "snapshots are not supported");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{not json", 400, "Format error");
    expect(s.qport, "DELETE", "/collections/e/points/search", KEY, NULL, 405, "not allowed");
    expect(s.qport, "GET", "/nothing/here", KEY, NULL, 404, "\"status\":{\"error\":");
    expect(s.qport, "DELETE", "/collections/e", KEY, NULL, 200, "\"result\":true");
    expect(s.port, "GET", "/collections", KEY, NULL, 200, "\"collections\":[]");   /* the native view agrees */
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_qdrant_suite(void)
{
    Suite *s = suite_create("qdrant");
    TCase *t = tcase_create("api");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_errors);
    tcase_add_test(t, test_durable_uuid);
    tcase_add_test(t, test_node_client);
    suite_add_tcase(s, t);
    return s;
}
