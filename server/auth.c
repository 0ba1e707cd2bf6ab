/*
 * server/auth.c -- API keys and the access of a request.
 *
 * The key file holds one key per line, "KEY rw" or "KEY ro", optionally followed by a
 * comma-separated list of collections the key is limited to ("KEY ro docs,faq"); blank
 * lines and lines starting with '#' are skipped. A request presents an API key, or a
 * Qdrant-style token (jwt.c) signed with one of the keys, as "api-key: ..." or
 * "Authorization: Bearer ..." (pipeline.c finds it). A token can only narrow what its
 * signing key allows: a collection is open at the lowest level the key, the key's
 * collection list and the token's claims give it.
 *
 * Comparisons are constant time: every stored key is compared in full against the
 * presented one (no exit on the first differing byte, nor on the first matching key),
 * and a token's MAC is computed with every key and compared with CRYPTO_memcmp, so
 * response timing does not reveal a key prefix. Only the lengths of stored keys could
 * leak, which is acceptable for random keys.
 *
 * Keys are never logged: the audit log names a key by the first 8 hex digits of its
 * SHA-256 ("key:1a2b3c4d").
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "server/jwt.h"

#define SRV_MAX_KEY 256

typedef struct {
    char key[SRV_MAX_KEY + 1];
    size_t len;
    int access;
    srv_grant *grants;                /* NULL: every collection */
    size_t ngrants;
    char id[16];                      /* "key:" + 8 hex digits of its SHA-256 */
} srv_key;

struct srv_keys {
    srv_key *v;
    size_t n;
};

void srv_keys_free(srv_keys *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) free(k->v[i].grants);
    if (k->v) OPENSSL_cleanse(k->v, k->n * sizeof *k->v);   /* do not leave keys in freed heap */
    free(k->v);
    free(k);
}

/* "a,b,c" into key->grants at key->access. */
static int parse_grants(srv_key *key, char *list, char *err, size_t len, const char *path, unsigned lineno)
{
    size_t n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    if (!(key->grants = calloc(n, sizeof *key->grants))) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (qv_coll_name_check(name) != QV_OK) {
            snprintf(err, len, "%s:%u: '%s' is not a collection name", path, lineno, name);
            return -1;
        }
        strcpy(key->grants[key->ngrants].name, name);
        key->grants[key->ngrants++].access = key->access;
    }
    if (key->ngrants == 0) {
        snprintf(err, len, "%s:%u: empty collection list", path, lineno);
        return -1;
    }
    return 0;
}

int srv_keys_load(const char *path, srv_keys **out, char *err, size_t len)
{
    int rc = -1;
    srv_keys *k = NULL;
    char line[4096];
    unsigned lineno = 0;
    FILE *f = fopen(path, "r");
    *out = NULL;
    if (!f) {
        snprintf(err, len, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!(k = calloc(1, sizeof *k))) {
        snprintf(err, len, "out of memory");
        goto cleanup;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t l = strlen(line);
        if (l == sizeof line - 1 && line[l - 1] != '\n') {
            snprintf(err, len, "%s:%u: line too long", path, lineno);
            goto cleanup;
        }
        char *save = NULL, *key = strtok_r(line, " \t\r\n", &save);
        if (!key || key[0] == '#') continue;
        char *mode = strtok_r(NULL, " \t\r\n", &save);
        char *colls = mode ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        char *extra = colls ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!mode || extra || (strcmp(mode, "rw") != 0 && strcmp(mode, "ro") != 0)) {
            snprintf(err, len, "%s:%u: expected 'KEY rw|ro [COLLECTION,...]'", path, lineno);
            goto cleanup;
        }
        size_t kl = strlen(key);
        if (kl > SRV_MAX_KEY) {
            snprintf(err, len, "%s:%u: key longer than %d bytes", path, lineno, SRV_MAX_KEY);
            goto cleanup;
        }
        srv_key *nv = realloc(k->v, (k->n + 1) * sizeof *nv);
        if (!nv) {
            snprintf(err, len, "out of memory");
            goto cleanup;
        }
        k->v = nv;
        srv_key *s = &k->v[k->n++];
        memset(s, 0, sizeof *s);
        memcpy(s->key, key, kl);
        s->len = kl;
        s->access = mode[1] == 'w' ? SRV_ACCESS_RW : SRV_ACCESS_RO;
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)key, kl, md);
        snprintf(s->id, sizeof s->id, "key:%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
        if (colls && parse_grants(s, colls, err, len, path, lineno) != 0) goto cleanup;
    }
    if (ferror(f)) {
        snprintf(err, len, "%s: read error", path);
        goto cleanup;
    }
    if (k->n == 0) {
        snprintf(err, len, "%s: no keys", path);
        goto cleanup;
    }
    *out = k;
    k = NULL;
    rc = 0;
cleanup:
    OPENSSL_cleanse(line, sizeof line);
    srv_keys_free(k);
    if (f) fclose(f);
    return rc;
}

/* Compare the presented key with one stored key over the stored key's full buffer. */
static unsigned ct_diff(const srv_key *s, const char *p, size_t plen)
{
    volatile unsigned diff = (unsigned)(plen != s->len);
    for (size_t i = 0; i < SRV_MAX_KEY; i++) {
        unsigned char a = (unsigned char)s->key[i];          /* zero-padded */
        unsigned char b = i < plen ? (unsigned char)p[i] : 0;
        diff |= (unsigned)(a ^ b);
    }
    return diff;
}

/* The index of the key presented, or with a token t the key whose HMAC signs it, or -1.
 * Every key is tried in full, with no early exit. */
static long find_key(const srv_keys *k, const char *presented, const srv_jwt *t)
{
    size_t plen = strnlen(presented, SRV_MAX_KEY + 1);
    long found = -1;
    if (!t && (plen == 0 || plen > SRV_MAX_KEY)) return -1;
    for (size_t i = 0; i < k->n; i++) {
        int match = t ? srv_jwt_signed_by(t, k->v[i].key, k->v[i].len) : ct_diff(&k->v[i], presented, plen) == 0;
        long mask = -(long)match;                                  /* all ones on a match */
        found = (found & ~mask) | ((long)i & mask);
    }
    return found;
}

void srv_auth_all(srv_auth *a)
{
    memset(a, 0, sizeof *a);
    a->access = a->token_access = SRV_ACCESS_RW;
    snprintf(a->who, sizeof a->who, "anonymous");
}

void srv_auth_check(const srv_keys *k, const char *presented, srv_auth *a)
{
    srv_jwt t = {0};
    const char *why = NULL;
    memset(a, 0, sizeof *a);
    a->why = "a valid API key or token is required (api-key: KEY or Authorization: Bearer KEY)";
    if (!k || !presented) return;
    long i = find_key(k, presented, NULL);
    int token = i < 0 && srv_jwt_shaped(presented);
    if (token) {
        if (srv_jwt_decode(presented, &t, &why) != 0) {
            a->why = why;
            return;
        }
        if ((i = find_key(k, presented, &t)) < 0) a->why = "bad token signature";
        else if (srv_jwt_claims(&t, a, &why) != 0) {
            a->why = why;
            i = -1;
        }
        srv_jwt_release(&t);
    }
    if (i < 0) return;
    const srv_key *s = &k->v[i];
    a->why = NULL;
    a->access = s->access;
    a->key_grants = s->grants;
    a->nkey_grants = s->ngrants;
    a->key_restricted = s->grants != NULL;
    if (!token) a->token_access = SRV_ACCESS_RW;
    if (token) snprintf(a->who, sizeof a->who, "token:%s(%s)", a->sub[0] ? a->sub : "-", s->id);
    else snprintf(a->who, sizeof a->who, "%s", s->id);
}

void srv_auth_release(srv_auth *a)
{
    free(a->token_grants);
    a->token_grants = NULL;
}

static int grant_of(const srv_grant *g, size_t n, const char *name)
{
    int access = SRV_ACCESS_NONE;
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0 && g[i].access > access) access = g[i].access;
    return access;
}

int srv_auth_coll(const srv_auth *a, const char *name)
{
    int access = a->access < a->token_access ? a->access : a->token_access;
    if (a->key_restricted) {
        int g = grant_of(a->key_grants, a->nkey_grants, name);
        if (g < access) access = g;
    }
    if (a->token_restricted) {
        int g = grant_of(a->token_grants, a->ntoken_grants, name);
        if (g < access) access = g;
    }
    return access;
}
