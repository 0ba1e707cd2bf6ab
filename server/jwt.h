/*
 * server/jwt.h -- Qdrant-compatible JSON Web Tokens (jwt.c), for auth.c.
 */
#ifndef QV_SERVER_JWT_H
#define QV_SERVER_JWT_H

#include "server/server.h"

#define SRV_JWT_SIG 32                /* HMAC-SHA256 */

typedef struct {
    const char *signed_part;          /* "HEADER.PAYLOAD" inside the token (borrowed) */
    size_t signed_len;
    unsigned char sig[SRV_JWT_SIG];
    json_t *claims;                   /* owned */
} srv_jwt;

/** 1 when tok has the shape of a JWT (three parts joined by dots). */
int  srv_jwt_shaped(const char *tok);
/** Split and decode tok (borrowed for t's life); refuses every algorithm but HS256.
 *  0, or -1 with *why (t needs no release then). */
int  srv_jwt_decode(const char *tok, srv_jwt *t, const char **why);
/** 1 when t's signature is HMAC-SHA256 with key (constant time in the MAC). */
int  srv_jwt_signed_by(const srv_jwt *t, const void *key, size_t keylen);
/** Check exp and read access and sub into a's token_* fields and sub. 0, or -1 with *why
 *  (a's token_grants may be allocated either way: srv_auth_release frees them). */
int  srv_jwt_claims(const srv_jwt *t, srv_auth *a, const char **why);
void srv_jwt_release(srv_jwt *t);

#endif
