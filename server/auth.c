/*
 * server/auth.c -- API keys for quiverd.
 *
 * The key file holds one key per line, "KEY rw" or "KEY ro"; blank lines and lines
 * starting with '#' are skipped. A request presents its key as "Authorization: Bearer
 * KEY" or "api-key: KEY" (http.c extracts it).
 *
 * Comparison is constant time in the key bytes: every stored key is compared in full
 * against the presented one (no early exit on the first differing byte, and no early
 * exit on the first matching key), so response timing does not reveal a key prefix.
 * Only the lengths of stored keys could leak, which is acceptable for random keys.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define SRV_MAX_KEY 256

typedef struct {
    char key[SRV_MAX_KEY + 1];
    size_t len;
    int access;
} srv_key;

struct srv_keys {
    srv_key *v;
    size_t n;
};

void srv_keys_free(srv_keys *k)
{
    if (!k) return;
    if (k->v) memset(k->v, 0, k->n * sizeof *k->v);   /* do not leave keys in freed heap */
    free(k->v);
    free(k);
}

int srv_keys_load(const char *path, srv_keys **out, char *err, size_t len)
{
    int rc = -1;
    srv_keys *k = NULL;
    char line[1024];
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
        char *extra = mode ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!mode || extra || (strcmp(mode, "rw") != 0 && strcmp(mode, "ro") != 0)) {
            snprintf(err, len, "%s:%u: expected 'KEY rw' or 'KEY ro'", path, lineno);
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
        memset(&k->v[k->n], 0, sizeof k->v[k->n]);
        memcpy(k->v[k->n].key, key, kl);
        k->v[k->n].len = kl;
        k->v[k->n].access = mode[1] == 'w' ? SRV_ACCESS_RW : SRV_ACCESS_RO;
        k->n++;
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
    memset(line, 0, sizeof line);
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

int srv_keys_check(const srv_keys *k, const char *presented)
{
    if (!k || !presented) return SRV_ACCESS_NONE;
    size_t plen = strnlen(presented, SRV_MAX_KEY + 1);
    if (plen == 0 || plen > SRV_MAX_KEY) return SRV_ACCESS_NONE;
    int access = SRV_ACCESS_NONE;
    for (size_t i = 0; i < k->n; i++) {
        unsigned d = ct_diff(&k->v[i], presented, plen);
        /* branch-free select: mask is all ones when d == 0 */
        int mask = -(int)(d == 0);
        int cand = k->v[i].access & mask;
        access = cand > access ? cand : access;
    }
    return access;
}
