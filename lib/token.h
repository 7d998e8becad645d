/*
 * Stateless bearer tokens: "<user id>.<signature>", where the signature is
 * HMAC-SHA256 over a versioned label and the user id, keyed with the server
 * secret, in unpadded base64url. Anyone holding the secret can mint a token
 * for any user id offline (likesctl token), which is what load tools need.
 */
#ifndef LK_TOKEN_H
#define LK_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Room for any token, terminating NUL included. */
#define LK_TOKEN_MAX_LEN 80

/* Writes the token of `user_id` into `out`. Returns 0, or -1 when the user
 * id is not positive or `outlen` is too small. */
int lk_token_mint(const char *secret, int64_t user_id, char *out, size_t outlen);

/* Checks `token` (`len` bytes, not necessarily NUL-terminated) in constant
 * time for the signature. Returns 0 and the user id, or -1. */
int lk_token_verify(const char *secret, const char *token, size_t len, int64_t *user_id);

#endif
