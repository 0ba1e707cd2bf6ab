/*
 * server/jwt.c -- Qdrant-compatible JSON Web Tokens: HS256, signed with an API key.
 *
 * A token is "HEADER.PAYLOAD.SIGNATURE", each part base64url without padding. The header
 * must name alg HS256 (anything else, "none" above all, is refused before the signature
 * is looked at); the signature is HMAC-SHA256 over "HEADER.PAYLOAD" (OpenSSL's HMAC,
 * compared with CRYPTO_memcmp); the payload (jansson) holds the claims:
 *   exp      seconds since the epoch; the token is refused from then on
 *   sub      who the token is for (the audit log names it)
 *   access   "r" (read everything), "m" (manage: read and write everything), or a list
 *            of {"collection": NAME, "access": "r" | "rw"}: those collections only.
 *            Absent: "r".
 * A claim quiverd cannot enforce (Qdrant's value_exists) refuses the token rather than
 * being ignored. The caller (auth.c) tries the signature against every key.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "server/jwt.h"

#define MAX_TOKEN 8192

/* base64url (RFC 4648 section 5) without padding into out (room for len * 3 / 4);
 * -1 on a character outside the alphabet or an impossible length. */
static long b64url_decode(const char *in, size_t len, unsigned char *out)
{
    unsigned acc = 0;
    int bits = 0;
    long n = 0;
    if (len % 4 == 1) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
              : c >= '0' && c <= '9' ? c - '0' + 52 : c == '-' ? 62 : c == '_' ? 63 : -1;
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static json_t *decode_json(const char *part, size_t len)
{
    unsigned char *buf = malloc(len * 3 / 4 + 1);
    long n = buf ? b64url_decode(part, len, buf) : -1;
    json_t *j = n >= 0 ? json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(buf);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

int srv_jwt_shaped(const char *tok)
{
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    return d2 && !strchr(d2 + 1, '.');
}

int srv_jwt_decode(const char *tok, srv_jwt *t, const char **why)
{
    json_t *header = NULL, *alg = NULL;
    unsigned char sig[SRV_JWT_SIG + 3];
    memset(t, 0, sizeof *t);
    size_t len = strnlen(tok, MAX_TOKEN + 1);
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    size_t slen = d2 ? len - (size_t)(d2 + 1 - tok) : 0;         /* the signature's */
    if (len > MAX_TOKEN)
        *why = "the token is too long";
    else if (!srv_jwt_shaped(tok) || !(header = decode_json(tok, (size_t)(d1 - tok))))
        *why = "malformed token";
    else if (!json_is_string(alg = json_object_get(header, "alg")) || strcmp(json_string_value(alg), "HS256") != 0)
        *why = "the token's algorithm is not accepted (HS256 only)";
    else if (slen > 44 || b64url_decode(d2 + 1, slen, sig) != SRV_JWT_SIG)
        *why = "bad token signature";
    else if (!(t->claims = decode_json(d1 + 1, (size_t)(d2 - d1 - 1))))
        *why = "malformed token claims";
    else {
        memcpy(t->sig, sig, SRV_JWT_SIG);
        t->signed_part = tok;
        t->signed_len = (size_t)(d2 - tok);
    }
    json_decref(header);
    return t->claims ? 0 : -1;
}

int srv_jwt_signed_by(const srv_jwt *t, const void *key, size_t keylen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)t->signed_part, t->signed_len, mac, &maclen) ||
        maclen != SRV_JWT_SIG)
        return 0;
    return CRYPTO_memcmp(mac, t->sig, SRV_JWT_SIG) == 0;
}

static int access_level(const char *s, int collection)
{
    if (strcmp(s, "r") == 0) return SRV_ACCESS_RO;
    if (strcmp(s, collection ? "rw" : "m") == 0) return SRV_ACCESS_RW;
    return SRV_ACCESS_NONE;
}

int srv_jwt_claims(const srv_jwt *t, srv_auth *a, const char **why)
{
    json_t *exp = json_object_get(t->claims, "exp"), *access = json_object_get(t->claims, "access");
    json_t *sub = json_object_get(t->claims, "sub");
    if (exp && (!json_is_number(exp) || (double)time(NULL) >= json_number_value(exp))) {
        *why = json_is_number(exp) ? "the token has expired" : "the token's exp is not a number";
        return -1;
    }
    if (json_object_get(t->claims, "value_exists")) {
        *why = "value_exists claims are not supported by quiverd";
        return -1;
    }
    a->token_access = SRV_ACCESS_RO;
    if (json_is_string(access)) {
        if (!(a->token_access = access_level(json_string_value(access), 0))) {
            *why = "the token's access must be \"r\", \"m\" or a list of {collection, access}";
            return -1;
        }
    } else if (json_is_array(access)) {
        size_t n = json_array_size(access), i;
        json_t *g;
        if (n && !(a->token_grants = calloc(n, sizeof *a->token_grants))) {
            *why = "out of memory";
            return -1;
        }
        json_array_foreach(access, i, g) {
            const char *name = json_string_value(json_object_get(g, "collection"));
            const char *lvl = json_string_value(json_object_get(g, "access"));
            int level = lvl ? access_level(lvl, 1) : SRV_ACCESS_NONE;
            if (!json_is_object(g) || !name || strlen(name) > SRV_NAME_MAX || !level ||
                json_object_size(g) != 2) {
                *why = "each entry of the token's access list must be {\"collection\": NAME, \"access\": \"r\" | \"rw\"}";
                return -1;
            }
            strcpy(a->token_grants[i].name, name);
            a->token_grants[i].access = level;
        }
        a->token_access = SRV_ACCESS_RW;           /* each collection at its own level */
        a->ntoken_grants = n;
        a->token_restricted = 1;
    } else if (access) {
        *why = "the token's access must be \"r\", \"m\" or a list of {collection, access}";
        return -1;
    }
    if (json_is_string(sub)) {              /* it goes into log lines: printable ASCII only */
        snprintf(a->sub, sizeof a->sub, "%s", json_string_value(sub));
        for (char *p = a->sub; *p; p++)
            if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) *p = '?';
    }
    return 0;
}

void srv_jwt_release(srv_jwt *t)
{
    json_decref(t->claims);
    memset(t, 0, sizeof *t);
}
