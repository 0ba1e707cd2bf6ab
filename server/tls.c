/*
 * server/tls.c -- TLS for quiverd's listeners: OpenSSL through libevent's bufferevents.
 *
 * One SSL_CTX serves every worker and both listeners. TLS 1.2 is the oldest version
 * accepted and TLS 1.3 is preferred (OpenSSL picks the highest both sides speak); the
 * TLS 1.2 suites are ECDHE with AES-GCM or ChaCha20-Poly1305 only (forward secrecy,
 * AEAD), chosen by the server's order; compression and renegotiation are off. ALPN
 * answers http/1.1, the only protocol quiverd speaks.
 *
 * SIGHUP reloads the certificate and key (main.c calls srv_tls_reload): a new SSL_CTX is
 * built from the same files and swapped in under a mutex; connections already open keep
 * the old one (each SSL holds a reference to its SSL_CTX), new ones get the new one. A
 * reload that fails (a missing file, a key that does not match) keeps the old context.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/server.h"

#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES  "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct srv_tls {
    char *cert, *key;
    pthread_mutex_t lock;           /* guards ctx */
    SSL_CTX *ctx;
};

/* The first OpenSSL error queued, as text (the queue is cleared). */
static void ssl_error(char *err, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, len, "%s: %s", what, buf);
    ERR_clear_error();
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof http11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(const char *cert, const char *key, char *err, size_t len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_error(err, len, "SSL_CTX_new");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) ||
        !SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) || !SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384")) {
        ssl_error(err, len, "TLS settings");
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_error(err, len, cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ssl_error(err, len, key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error(err, len, "the key does not match the certificate");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int srv_tls_new(const char *cert, const char *key, srv_tls **out, char *err, size_t len)
{
    srv_tls *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t || !(t->cert = strdup(cert)) || !(t->key = strdup(key))) {
        snprintf(err, len, "out of memory");
    } else if ((t->ctx = make_ctx(cert, key, err, len))) {
        pthread_mutex_init(&t->lock, NULL);
        *out = t;
        return 0;
    }
    if (t) {
        free(t->cert);
        free(t->key);
    }
    free(t);
    return -1;
}

int srv_tls_reload(srv_tls *t, char *err, size_t len)
{
    SSL_CTX *fresh = make_ctx(t->cert, t->key, err, len), *old;
    if (!fresh) return -1;
    pthread_mutex_lock(&t->lock);
    old = t->ctx;
    t->ctx = fresh;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old);                  /* open connections hold their own references */
    return 0;
}

struct bufferevent *srv_tls_bufferevent(srv_tls *t, struct event_base *base)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (!ssl) {
        ERR_clear_error();
        return NULL;
    }
    /* BEV_OPT_CLOSE_ON_FREE: libevent frees the SSL (and closes the socket) only with it;
     * the close happens when the bufferevent is finalized, after evhttp's shutdown() */
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                             BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* a client that closes without close_notify (most do) is not an error */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

void srv_tls_free(srv_tls *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->lock);
    free(t->cert);
    free(t->key);
    free(t);
}
