/*
 * tests/check_server_tls.c -- quiverd over TLS (issue 19), with a throwaway self-signed
 * certificate that openssl(1) makes at test time, and OpenSSL as the client.
 *
 * "tls" suite:
 *   - both listeners answer over TLS 1.3, and over TLS 1.2 with a modern suite;
 *   - TLS 1.0 and 1.1, a suite without forward secrecy or AEAD, and plain HTTP are refused
 *     (the client is set to security level 0, so a refusal is the server's);
 *   - SIGHUP loads a new certificate for new connections; a reload that fails keeps the
 *     old one.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

#define KEY "tls-test-key-42"

static void teardown(void)
{
    test_server_kill_all();
}

/* A self-signed P-256 certificate for CN cn (and 127.0.0.1) at dir/cert.pem, dir/key.pem. */
static int make_cert(const char *dir, const char *cn)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout %s/key.pem "
             "-out %s/cert.pem -subj /CN=%s -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             dir, dir, cn);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct {
    int min, max;                  /* protocol versions the client offers (0: library's) */
    const char *ciphers;           /* TLS 1.2 suites the client offers (NULL: default) */
    const char *headers;           /* extra header lines */
    int version;                   /* out: negotiated */
    char cn[64];                   /* out: the server certificate's common name */
    char cipher[64];
} tls_try;

/* GET path over TLS to port; the HTTP status, or -1 when the handshake failed, 0 when no
 * reply came, -2 when the client library cannot offer t->ciphers. */
static int tls_get(int port, const char *path, tls_try *t)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    SSL_CTX_set_security_level(ctx, 0);          /* offer old things: refusals are the server's */
    if (t->min) SSL_CTX_set_min_proto_version(ctx, t->min);
    if (t->max) SSL_CTX_set_max_proto_version(ctx, t->max);
    if (SSL_CTX_set_cipher_list(ctx, t->ciphers ? t->ciphers : "DEFAULT:@SECLEVEL=0") != 1) {
        SSL_CTX_free(ctx);                       /* this OpenSSL cannot offer them at all */
        ERR_clear_error();
        return -2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
        t->version = SSL_version(ssl);
        snprintf(t->cipher, sizeof t->cipher, "%s", SSL_get_cipher_name(ssl));
        X509 *cert = SSL_get1_peer_certificate(ssl);
        t->cn[0] = 0;
        if (cert) X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, t->cn, sizeof t->cn);
        X509_free(cert);
        char req[1024], buf[4096];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n", path,
                         t->headers ? t->headers : "");
        ck_assert_int_eq(SSL_write(ssl, req, n), n);
        int got = 0, r;
        while (got < (int)sizeof buf - 1 && (r = SSL_read(ssl, buf + got, (int)sizeof buf - 1 - got)) > 0) got += r;
        buf[got] = 0;
        status = 0;
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = 0;
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return status;
}

START_TEST(test_tls_protocols_and_reload)
{
    char *dir = make_tmpdir("qv-tls"), path[4096], keys[4096], cert[4096], key[4096];
    if (make_cert(dir, "quiver-one") != 0) {
        test_skip(TEST_SKIP_MISSING, "tls: openssl(1) cannot make a certificate (apt-get install openssl)");
        rm_rf(dir);
        free(dir);
        return;
    }
    snprintf(path, sizeof path, "%s/db", dir);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    FILE *f = fopen(keys, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, KEY " rw\n");
    fclose(f);
    test_server s;
    test_server_start(&s, path, 1, (const char *const[]){"--tls-cert", cert, "--tls-key", key, "--api-key-file", keys, NULL});
    int ports[2] = {s.port, s.qport};
    for (int i = 0; i < 2; i++) {
        tls_try t = {0};
        ck_assert_int_eq(tls_get(ports[i], "/healthz", &t), 200);
        ck_assert_int_eq(t.version, TLS1_3_VERSION);                 /* 1.3 preferred */
        ck_assert_str_eq(t.cn, "quiver-one");
        t = (tls_try){.headers = "api-key: " KEY "\r\n"};
        ck_assert_int_eq(tls_get(ports[i], "/collections", &t), 200);
        t = (tls_try){0};
        ck_assert_int_eq(tls_get(ports[i], "/collections", &t), 401);  /* keys over TLS as over HTTP */
        t = (tls_try){.max = TLS1_2_VERSION};
        ck_assert_int_eq(tls_get(ports[i], "/healthz", &t), 200);
        ck_assert_int_eq(t.version, TLS1_2_VERSION);
        ck_assert_msg(strstr(t.cipher, "ECDHE") && (strstr(t.cipher, "GCM") || strstr(t.cipher, "CHACHA")),
                      "TLS 1.2 suite %s", t.cipher);
        for (int v = TLS1_VERSION; v <= TLS1_1_VERSION; v++) {       /* TLS 1.0 and 1.1: refused */
            t = (tls_try){.min = v, .max = v};
            ck_assert_msg(tls_get(ports[i], "/healthz", &t) == -1, "TLS version %x accepted", v);
        }
        /* no forward secrecy, CBC, RC4/3DES: refused */
        const char *weak[] = {"AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-SHA384",
                              "DES-CBC3-SHA", "RC4-SHA", "NULL-SHA"};
        int offered = 0;
        for (size_t w = 0; w < sizeof weak / sizeof weak[0]; w++) {
            t = (tls_try){.max = TLS1_2_VERSION, .ciphers = weak[w]};
            int st = tls_get(ports[i], "/healthz", &t);
            ck_assert_msg(st == -1 || st == -2, "weak suite %s accepted", weak[w]);
            offered += st == -1;
        }
        ck_assert_int_ge(offered, 4);
        ck_assert_int_ne(test_http(ports[i], "GET", "/healthz", NULL, NULL, 5000, NULL), 200);   /* plain HTTP */
    }
    /* SIGHUP: a new certificate for new connections */
    ck_assert_int_eq(make_cert(dir, "quiver-two"), 0);
    kill(s.pid, SIGHUP);
    tls_try t = {0};
    for (int tries = 0; tries < 100; tries++) {
        ck_assert_int_eq(tls_get(s.port, "/healthz", &t), 200);
        if (strcmp(t.cn, "quiver-two") == 0) break;
        usleep(50000);
    }
    ck_assert_str_eq(t.cn, "quiver-two");
    /* a reload that fails keeps the certificate it has */
    f = fopen(key, "w");
    fputs("not a key\n", f);
    fclose(f);
    kill(s.pid, SIGHUP);
    usleep(300000);
    t = (tls_try){0};
    ck_assert_int_eq(tls_get(s.qport, "/healthz", &t), 200);
    ck_assert_str_eq(t.cn, "quiver-two");
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* --tls-cert without --tls-key, or files that do not load: exit at startup. */
START_TEST(test_tls_bad_options)
{
    char *dir = make_tmpdir("qv-tls"), cmd[8192];
    snprintf(cmd, sizeof cmd, "%s/quiverd --data %s/db --listen 127.0.0.1:0 --tls-cert %s/none.pem 2>/dev/null",
             build_dir(), dir, dir);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "%s/quiverd --data %s/db --listen 127.0.0.1:0 --tls-cert %s/none.pem --tls-key %s/none.pem 2>/dev/null",
             build_dir(), dir, dir, dir);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_server_tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_tls_protocols_and_reload);
    tcase_add_test(tc, test_tls_bad_options);
    suite_add_tcase(s, tc);
    return s;
}
