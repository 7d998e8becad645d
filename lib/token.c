#include "token.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "base64url.h"

/* A label in the signed text lets a future token format never be mistaken
 * for this one, even under the same secret. */
#define TOKEN_LABEL "likes-token-v1:"

/* 32 bytes of HMAC-SHA256 in unpadded base64url. */
#define SIGNATURE_LEN 43

static int sign(const char *secret, int64_t user_id, char signature[SIGNATURE_LEN + 1])
{
    char message[64];
    int message_len = snprintf(message, sizeof(message), TOKEN_LABEL "%" PRId64, user_id);

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)message,
             (size_t)message_len, mac, &mac_len) == NULL ||
        mac_len != 32)
        return -1;

    lk_base64url_encode(mac, mac_len, signature);
    return 0;
}

int lk_token_mint(const char *secret, int64_t user_id, char *out, size_t outlen)
{
    char signature[SIGNATURE_LEN + 1];
    if (user_id <= 0 || sign(secret, user_id, signature) != 0)
        return -1;

    int len = snprintf(out, outlen, "%" PRId64 ".%s", user_id, signature);
    return len > 0 && (size_t)len < outlen ? 0 : -1;
}

/* Parses the decimal user id before the dot, digits only, no sign, no
 * leading zero, so that one user has exactly one valid token. */
static int parse_user_id(const char *text, size_t len, int64_t *user_id)
{
    if (len == 0 || len > 19 || text[0] == '0')
        return -1;

    int64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        int digit = text[i] - '0';
        if (value > (INT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    *user_id = value;
    return 0;
}

int lk_token_verify(const char *secret, const char *token, size_t len, int64_t *user_id)
{
    const char *dot = memchr(token, '.', len);
    if (dot == NULL)
        return -1;

    size_t id_len = (size_t)(dot - token);
    size_t signature_len = len - id_len - 1;
    int64_t claimed;
    if (signature_len != SIGNATURE_LEN || parse_user_id(token, id_len, &claimed) != 0)
        return -1;

    char expected[SIGNATURE_LEN + 1];
    if (sign(secret, claimed, expected) != 0)
        return -1;
    if (CRYPTO_memcmp(expected, dot + 1, SIGNATURE_LEN) != 0)
        return -1;

    *user_id = claimed;
    return 0;
}
