/*
 * tests/fuzz/http_fuzz.c -- quiver-fuzz: mutated requests for every endpoint against a live
 * quiverd (built with ASan + UBSan by `make fuzz`), for a bounded time.
 *
 *   quiver-fuzz --quiverd BIN --endpoints FILE [--seconds 60] [--seed N] [--clients 2]
 *
 * The endpoints and their seed bodies come from FILE (tests/fuzz/endpoints.txt), so a route
 * added or moved is a line there, not a change here. Each request takes one endpoint, puts
 * a collection, id or field (sometimes an odd one) into its path, and mutates its body:
 * JSON-aware (replace a value with an interesting one, delete or add a member, grow an
 * array, nest a value, graft a part of another seed) and then, sometimes, byte-level (flip,
 * insert, delete, truncate, swap a number for an extreme literal). Several clients send at
 * once, so handlers also race each other (drop during search, payload updates during
 * deletes).
 *
 * It fails (exit 1, printing the request and the server's last words) on
 *   - a crash: the server exits or stops answering connections;
 *   - a sanitizer report in the server's stderr (ASan, UBSan, LSan at exit);
 *   - a 5xx other than 501 (the documented "not implemented"): a bad request is a 4xx;
 *   - a hang: no answer within 30 s, or no clean exit within 30 s of SIGTERM;
 *   - a non-zero exit status after SIGTERM.
 * The seed is printed; --seed N --clients 1 replays the first client's requests (the
 * server's state may differ without the other clients' requests in between).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/http_client.h"

#define ANSWER_MS 30000            /* longer than this is a hang */
#define MAX_BODY (256u << 10)      /* mutated bodies stay below this */
#define SETUP_EVERY 300            /* requests between re-runs of the setup lines */
#define MAX_CLIENTS 8

typedef struct {
    int qdrant, setup;
    char method[16], path[256];
    char *body;                    /* NULL: none */
    json_t *seed;                  /* parsed body, or NULL */
} endpoint;

static endpoint *eps;
static size_t neps;
static pid_t server = -1;
static int port, qport;
static char logpath[600];

static atomic_int failed;          /* set once; the first failure is reported */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static char report[8192];
static unsigned long statuses[6];  /* 0 (none), 1xx..5xx */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- small helpers --------------------------------------------------------------------- */

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static size_t pick(uint64_t *s, size_t n) { return n ? (size_t)(next(s) % n) : 0; }

static void fail(const char *method, const char *path, int qd, const char *body, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail(const char *method, const char *path, int qd, const char *body, const char *fmt, ...)
{
    pthread_mutex_lock(&report_lock);
    if (!failed) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(report, sizeof report, fmt, ap);
        va_end(ap);
        if (n > 0 && (size_t)n < sizeof report && method)
            snprintf(report + n, sizeof report - (size_t)n, "\n  request (%s API): %s %s\n  body: %.4000s",
                     qd ? "qdrant" : "native", method, path, body ? body : "(none)");
        atomic_store(&failed, 1);
    }
    pthread_mutex_unlock(&report_lock);
}

static int server_alive(void)
{
    int st;
    return server > 0 && waitpid(server, &st, WNOHANG) == 0;
}

/* ---- endpoints ------------------------------------------------------------------------- */

static int load_endpoints(const char *file)
{
    FILE *f = fopen(file, "r");
    char line[8192];
    if (!f) { fprintf(stderr, "quiver-fuzz: %s: %s\n", file, strerror(errno)); return -1; }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *tok[4] = {0};
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!line[0] || line[0] == '#') continue;
        endpoint e;
        memset(&e, 0, sizeof e);
        if (strncmp(p, "setup ", 6) == 0) { e.setup = 1; p += 6; }
        for (int i = 0; i < 3; i++) {             /* api, method, path; the rest is the body */
            while (*p == ' ') p++;
            tok[i] = p;
            while (*p && *p != ' ') p++;
            if (*p) *p++ = 0;
        }
        while (*p == ' ') p++;
        if (!tok[2] || !*tok[2] || (strcmp(tok[0], "native") && strcmp(tok[0], "qdrant"))) {
            fprintf(stderr, "quiver-fuzz: %s: bad line: %s\n", file, line);
            fclose(f);
            return -1;
        }
        e.qdrant = strcmp(tok[0], "qdrant") == 0;
        snprintf(e.method, sizeof e.method, "%s", tok[1]);
        snprintf(e.path, sizeof e.path, "%s", tok[2]);
        if (*p) {
            e.body = strdup(p);
            e.seed = json_loads(p, 0, NULL);
            if (!e.seed) fprintf(stderr, "quiver-fuzz: note: seed of %s %s is not JSON (sent as bytes)\n", e.method, e.path);
        }
        endpoint *t = realloc(eps, (neps + 1) * sizeof *t);
        if (!t) { fclose(f); return -1; }
        eps = t;
        eps[neps++] = e;
    }
    fclose(f);
    return neps ? 0 : -1;
}

/* ---- mutation ---------------------------------------------------------------------------- */

static const char *long_string(void)
{
    static char s[5001];
    if (!s[0]) memset(s, 'a', sizeof s - 1);
    return s;
}

/* A new value that handlers find hard. */
static json_t *interesting(uint64_t *r)
{
    switch (pick(r, 26)) {
    case 0: return json_integer(0);
    case 1: return json_integer(-1);
    case 2: return json_integer(1);
    case 3: return json_integer(1025);
    case 4: return json_integer(4294967296LL);
    case 5: return json_integer(9223372036854775807LL);
    case 6: return json_integer(INT64_MIN);
    case 7: return json_real(1e308);
    case 8: return json_real(-1e308);
    case 9: return json_real(1e-40);
    case 10: return json_real(5e-324);
    case 11: return json_real(0.5);
    case 12: return json_string("");
    case 13: return json_string(long_string());
    case 14: return json_string("6f1c0a2e-7d4b-4c1e-9a55-0123456789ab");
    case 15: return json_string("\xc3\xa9\xe2\x82\xac/../%00");
    case 16: return json_true();
    case 17: return json_false();
    case 18: return json_null();
    case 19: return json_array();
    case 20: return json_object();
    case 21: return json_pack("[f,f,f,f]", 1e-40, 0.0, 0.0, 0.0);
    case 22: return json_pack("[i,i,i,i]", 0, 0, 0, 0);
    case 23: return json_pack("[f,f,f,f]", 3e38, 3e38, 3e38, 3e38);
    case 24: return json_pack("[f,f,f]", 1.0, 2.0, 3.0);
    default: return json_pack("{s:[{s:s,s:i}]}", "must", "key", "lang", "match", 1);
    }
}

static const char *const keys[] = {
    "vector", "vectors", "k", "ef", "nprobe", "filter", "with_payload", "with_vector", "points", "ids", "payload",
    "must", "must_not", "should", "min_should", "key", "match", "range", "any", "except", "value", "gt", "gte",
    "lt", "lte", "is_null", "is_empty", "exists", "has_id", "nested", "limit", "offset", "query", "searches",
    "keys", "dim", "metric", "index", "type", "payload_index", "id", "batch", "score_threshold", "params",
    "hnsw_ef", "exact", "field_name", "field_schema", "size", "distance", "__qdrant_uuid", "a.b", "",
};

typedef struct {
    json_t *parent;                /* NULL: the root */
    const char *key;               /* member of an object parent */
    size_t index;                  /* element of an array parent */
    json_t *val;
} slot;

static void collect(json_t *parent, const char *key, size_t index, json_t *v, slot *out, size_t *n, size_t cap)
{
    if (*n >= cap) return;
    out[(*n)++] = (slot){parent, key, index, v};
    const char *k;
    json_t *c;
    size_t i;
    if (json_is_object(v)) json_object_foreach(v, k, c) collect(v, k, 0, c, out, n, cap);
    else if (json_is_array(v)) json_array_foreach(v, i, c) collect(v, NULL, i, c, out, n, cap);
}

/* Put nv where s is (steals nv); the root is replaced through *root. */
static void place(json_t **root, const slot *s, json_t *nv)
{
    if (!nv) return;
    if (!s->parent) {
        json_decref(*root);
        *root = nv;
    } else if (s->key) {
        json_object_set_new(s->parent, s->key, nv);
    } else {
        json_array_set_new(s->parent, s->index, nv);
    }
}

static void mutate_json(json_t **root, uint64_t *r)
{
    slot sl[512];
    size_t n = 0;
    collect(NULL, NULL, 0, *root, sl, &n, 512);
    if (!n) return;
    slot s = sl[pick(r, n)];
    switch (pick(r, 7)) {
    case 0:
    case 1: place(root, &s, interesting(r)); break;
    case 2:                                          /* delete */
        if (s.parent && s.key) json_object_del(s.parent, s.key);
        else if (s.parent) json_array_remove(s.parent, s.index);
        break;
    case 3:                                          /* add a member / element */
        if (json_is_object(s.val)) json_object_set_new(s.val, keys[pick(r, sizeof keys / sizeof keys[0])], interesting(r));
        else if (json_is_array(s.val)) json_array_append_new(s.val, interesting(r));
        else place(root, &s, interesting(r));
        break;
    case 4:                                          /* grow an array */
        if (json_is_array(s.val) && json_array_size(s.val)) {
            size_t times = 1 + pick(r, 60), m = json_array_size(s.val);
            for (size_t i = 0; i < times * m && json_array_size(s.val) < 5000; i++)
                json_array_append_new(s.val, json_deep_copy(json_array_get(s.val, i % m)));
        }
        break;
    case 5:                                          /* nest */
        place(root, &s, pick(r, 2) ? json_pack("[O]", s.val) : json_pack("{s:[O]}", "must", s.val));
        break;
    default: {                                       /* graft a part of another seed */
        const endpoint *o = &eps[pick(r, neps)];
        if (!o->seed) break;
        slot ol[256];
        size_t on = 0;
        collect(NULL, NULL, 0, o->seed, ol, &on, 256);
        if (on) place(root, &s, json_deep_copy(ol[pick(r, on)].val));
        break;
    }
    }
}

static const char *const literals[] = {
    "18446744073709551616", "9223372036854775808", "-9223372036854775809", "1e999", "-1e999", "-0", "0.0",
    "1e-400", "00", "1.", ".5", "1e", "NaN", "Infinity", "2e-45", "340282366920938463463374607431768211456",
};

/* Byte-level changes to text (len bytes, room for cap): returns the new length. */
static size_t mutate_bytes(char *t, size_t len, size_t cap, uint64_t *r)
{
    static const char chars[] = "{}[]\":,0123456789-.eE \\u\t\xff\x80";
    size_t at = pick(r, len + 1);
    switch (pick(r, 6)) {
    case 0:                                          /* flip a byte (never to NUL) */
        if (len) { t[at % len] ^= (char)(1u << pick(r, 7)); if (!t[at % len]) t[at % len] = '~'; }
        break;
    case 1:                                          /* insert a byte */
        if (len + 1 < cap) {
            memmove(t + at + 1, t + at, len - at);
            t[at] = chars[pick(r, sizeof chars - 1)];
            len++;
        }
        break;
    case 2: {                                        /* delete a range */
        size_t k = at < len ? 1 + pick(r, len - at) : 0;
        memmove(t + at, t + at + k, len - at - k);
        len -= k;
        break;
    }
    case 3: len = at; break;                         /* truncate */
    case 4: {                                        /* a number becomes an extreme literal */
        size_t i = at;
        while (i < len && !(t[i] >= '0' && t[i] <= '9')) i++;
        if (i >= len) break;
        size_t j = i;
        while (j < len && ((t[j] >= '0' && t[j] <= '9') || t[j] == '.' || t[j] == 'e' || t[j] == '-')) j++;
        const char *lit = literals[pick(r, sizeof literals / sizeof literals[0])];
        size_t ll = strlen(lit);
        if (len - (j - i) + ll >= cap) break;
        memmove(t + i + ll, t + j, len - j);
        memcpy(t + i, lit, ll);
        len = len - (j - i) + ll;
        break;
    }
    default: {                                       /* duplicate a range */
        size_t k = at < len ? 1 + pick(r, len - at) : 0;
        if (len + k >= cap) break;
        memmove(t + at + k, t + at, len - at);
        len += k;
        break;
    }
    }
    t[len] = 0;
    return len;
}

/* The body to send for e (malloc'd, or NULL for none). */
static char *make_body(const endpoint *e, uint64_t *r)
{
    char *text = NULL;
    if (!e->seed && !e->body) return pick(r, 5) ? NULL : strdup(pick(r, 2) ? "{}" : "\x01garbage");
    if (e->seed && pick(r, 10)) {
        json_t *root = json_deep_copy(e->seed);
        for (size_t m = 1 + pick(r, 4); m--;) mutate_json(&root, r);
        text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(root);
    } else if (e->body) {
        text = strdup(e->body);
    }
    if (!text || strlen(text) >= MAX_BODY) {     /* grown too far: the seed, or nothing */
        free(text);
        return pick(r, 4) ? strdup(e->body) : NULL;
    }
    if (!pick(r, 5)) {                               /* and sometimes bytes */
        size_t len = strlen(text), cap = len + 4096;
        char *t = realloc(text, cap);
        if (!t) return text;
        text = t;
        for (size_t m = 1 + pick(r, 3); m--;) len = mutate_bytes(text, len, cap, r);
    }
    return text;
}

/* The path of e with its placeholders filled. */
static void make_path(const endpoint *e, uint64_t *r, char *out, size_t len)
{
    static const char *const odd[] = {"nope", "a%2Fb", "%2e%2e", "fz%00", "%ZZ", "%C3%A9", "x.y", ".hidden",
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "-"};
    static const char *const ids[] = {"1", "2", "3", "0", "7", "18446744073709551615", "9223372036854775807", "-1",
                                      "abc", "6f1c0a2e-7d4b-4c1e-9a55-0123456789ab", "1e3", "%20", "0x10"};
    static const char *const fields[] = {"lang", "year", "a.b", "%22a.b%22", "n", "x%2Fy", "a..b"};
    const char *p = e->path;
    size_t n = 0;
    while (*p && n + 1 < len) {
        const char *fill = NULL;
        size_t skip = 0;
        if (!strncmp(p, "{c}", 3)) {
            skip = 3;
            fill = pick(r, 12) == 0 ? odd[pick(r, sizeof odd / sizeof odd[0])]
                   : e->qdrant ? (pick(r, 5) ? "fq" : "fz") : (pick(r, 4) ? "fz" : "fv");
        } else if (!strncmp(p, "{id}", 4)) {
            skip = 4;
            fill = ids[pick(r, sizeof ids / sizeof ids[0])];
        } else if (!strncmp(p, "{field}", 7)) {
            skip = 7;
            fill = fields[pick(r, sizeof fields / sizeof fields[0])];
        }
        if (fill) {
            n += (size_t)snprintf(out + n, len - n, "%s", fill);
            if (n >= len) n = len - 1;
            p += skip;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- sending ------------------------------------------------------------------------------ */

/* Send one request; 0 when it was answered acceptably, else the failure is recorded. */
static int send_one(int qd, const char *method, const char *path, const char *body)
{
    double t0 = now_s();
    int st = test_http(qd ? qport : port, method, path, NULL, body, ANSWER_MS, NULL);
    double took = now_s() - t0;
    pthread_mutex_lock(&stats_lock);
    statuses[st >= 100 && st < 600 ? st / 100 : 0]++;
    pthread_mutex_unlock(&stats_lock);
    if (st == 0) {
        for (int i = 0; i < 300 && server_alive(); i++) {   /* a crashing server takes a moment */
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        if (!server_alive()) fail(method, path, qd, body, "quiverd died (crash or sanitizer abort)");
        else if (took * 1000 >= ANSWER_MS - 100) fail(method, path, qd, body, "no answer within %d s (hang)", ANSWER_MS / 1000);
        else fail(method, path, qd, body, "the connection closed (or was refused) without an HTTP answer");
        return -1;
    }
    if (st >= 500 && st != 501) {
        fail(method, path, qd, body, "answered %d (a 5xx other than the documented 501)", st);
        return -1;
    }
    return 0;
}

static void run_setup(void)
{
    for (size_t i = 0; i < neps && !atomic_load(&failed); i++)
        if (eps[i].setup) send_one(eps[i].qdrant, eps[i].method, eps[i].path, eps[i].body);
}

typedef struct {
    uint64_t seed;
    double deadline;
    unsigned long sent;
} client;

static void *fuzz_loop(void *arg)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"};
    client *c = arg;
    uint64_t r = c->seed | 1;
    char path[512];
    while (!atomic_load(&failed) && now_s() < c->deadline) {
        const endpoint *e = &eps[pick(&r, neps)];
        const char *method = pick(&r, 25) ? e->method : methods[pick(&r, sizeof methods / sizeof methods[0])];
        make_path(e, &r, path, sizeof path);
        char *body = make_body(e, &r);
        send_one(e->qdrant, method, path, body);
        free(body);
        if (++c->sent % SETUP_EVERY == 0) run_setup();
    }
    return NULL;
}

/* ---- the server ---------------------------------------------------------------------------- */

static int port_after(const char *buf, const char *prefix)
{
    const char *l = strstr(buf, prefix), *nl = l ? strchr(l, '\n') : NULL, *c = nl;
    if (!nl) return 0;
    while (c > l && c[-1] != ':') c--;
    return atoi(c);
}

static int start_server(const char *bin, const char *dir)
{
    char data[600];
    int fds[2];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(logpath, sizeof logpath, "%s/quiverd.stderr", dir);
    if (pipe(fds) != 0) return -1;
    server = fork();
    if (server < 0) return -1;
    if (server == 0) {
        int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fds[1], 1);
        if (lfd >= 0) dup2(lfd, 2);
        close(fds[0]);
        close(fds[1]);
        setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0", 0);
        setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1", 0);
        execl(bin, bin, "--listen", "127.0.0.1:0", "--qdrant-listen", "127.0.0.1:0", "--data", data, "--threads", "2",
              "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[1024];
    size_t got = 0;
    buf[0] = 0;
    while (!port_after(buf, "qdrant api listening on ")) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 120000) <= 0 || (n = read(fds[0], buf + got, sizeof buf - 1 - got)) <= 0) {
            close(fds[0]);
            return -1;
        }
        got += (size_t)n;
        buf[got] = 0;
    }
    close(fds[0]);
    port = port_after(buf, "quiverd listening on ");
    qport = port_after(buf, "qdrant api listening on ");
    return port > 0 && qport > 0 ? 0 : -1;
}

/* SIGTERM, then wait up to 30 s; the exit status, or -1 for a hang (then killed). */
static int stop_server(void)
{
    int st = 0;
    kill(server, SIGTERM);
    for (int i = 0; i < 3000; i++) {
        pid_t w = waitpid(server, &st, WNOHANG);
        if (w == server) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (w < 0) return -2;                          /* already reaped: it died */
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    kill(server, SIGKILL);
    waitpid(server, &st, 0);
    return -1;
}

/* 1 when the server's stderr holds a sanitizer report; its tail goes to stderr anyway. */
static int scan_log(int show)
{
    FILE *f = fopen(logpath, "r");
    char line[2048], tail[40][256];
    int bad = 0, n = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "ERROR: LeakSanitizer") ||
            strstr(line, "runtime error:") || strstr(line, "WARNING: ThreadSanitizer"))
            bad = 1;
        snprintf(tail[n++ % 40], sizeof tail[0], "%.250s", line);
    }
    fclose(f);
    if (show || bad) {
        fprintf(stderr, "quiver-fuzz: last lines of quiverd's stderr:\n");
        for (int i = n > 40 ? n - 40 : 0; i < n; i++) fprintf(stderr, "  %s", tail[i % 40]);
    }
    return bad;
}

static void rm_tree(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "quiver-fuzz: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    const char *bin = NULL, *file = NULL;
    double seconds = 60;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    int nclients = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiverd") && i + 1 < argc) bin = argv[++i];
        else if (!strcmp(argv[i], "--endpoints") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--clients") && i + 1 < argc) nclients = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: quiver-fuzz --quiverd BIN --endpoints FILE [--seconds N] [--seed N] [--clients N]\n");
            return 2;
        }
    }
    if (!bin || !file || nclients < 1 || nclients > MAX_CLIENTS || !(seconds > 0)) {
        fprintf(stderr, "quiver-fuzz: --quiverd and --endpoints are required (clients 1..%d, seconds > 0)\n", MAX_CLIENTS);
        return 2;
    }
    if (load_endpoints(file) != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/quiver-fuzz.XXXXXX";
    if (!mkdtemp(dir)) { perror("quiver-fuzz: mkdtemp"); return 2; }
    printf("quiver-fuzz: %zu endpoints from %s, %d clients, %.0f s, seed %llu\n", neps, file, nclients, seconds,
           (unsigned long long)seed);
    fflush(stdout);
    if (start_server(bin, dir) != 0) {
        fprintf(stderr, "quiver-fuzz: %s did not start\n", bin);
        scan_log(1);
        rm_tree(dir);
        return 1;
    }
    run_setup();
    client cl[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    double deadline = now_s() + seconds;
    for (int i = 0; i < nclients; i++) {
        cl[i] = (client){seed + (uint64_t)i * 0x9E3779B97F4A7C15ull, deadline, 0};
        pthread_create(&th[i], NULL, fuzz_loop, &cl[i]);
    }
    unsigned long sent = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(th[i], NULL);
        sent += cl[i].sent;
    }
    int alive = server_alive();
    if (!alive && !atomic_load(&failed)) fail(NULL, NULL, 0, NULL, "quiverd died (crash or sanitizer abort)");
    int rc = alive ? stop_server() : -2;
    if (rc == -1) fail(NULL, NULL, 0, NULL, "quiverd did not exit within 30 s of SIGTERM (hang)");
    else if (rc > 0) fail(NULL, NULL, 0, NULL, "quiverd exited with status %d after SIGTERM (a leak or sanitizer report?)", rc);
    int bad_log = scan_log(atomic_load(&failed));
    if (bad_log) fail(NULL, NULL, 0, NULL, "a sanitizer report in quiverd's stderr");
    unsigned long total = 0;
    for (int i = 0; i < 6; i++) total += statuses[i];
    printf("quiver-fuzz: %lu requests (%lu mutated): %lu 2xx, %lu 4xx, %lu 5xx, %lu without answer\n", total, sent,
           statuses[2], statuses[4], statuses[5], statuses[0]);
    rm_tree(dir);
    for (size_t i = 0; i < neps; i++) {
        free(eps[i].body);
        json_decref(eps[i].seed);
    }
    free(eps);
    if (atomic_load(&failed)) {
        fprintf(stderr, "quiver-fuzz: FAIL: %s\n  (seed %llu)\n", report, (unsigned long long)seed);
        return 1;
    }
    printf("quiver-fuzz: ok\n");
    return 0;
}
