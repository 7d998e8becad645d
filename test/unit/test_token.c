/*
 * Bearer tokens: the exact token for a secret and a user id, and every
 * altered token refused.
 *
 * The expected signatures were computed outside the code under test, as
 * unpadded base64url of HMAC-SHA256 over "likes-token-v1:<user id>":
 *
 *   printf 'likes-token-v1:17' \
 *     | openssl dgst -sha256 -hmac 'test-secret-for-unit-tests-0123456789' -binary \
 *     | base64 | tr '+/' '-_' | tr -d '='
 *
 * and checked once more with Python's hmac and base64.urlsafe_b64encode.
 */
#include <string.h>

#include "check.h"
#include "token.h"

#define SECRET       "test-secret-for-unit-tests-0123456789"
#define OTHER_SECRET "other-secret-for-unit-tests-0123456789"

/* HMAC-SHA256 in hex: 6e13f859f4bfabd29c27cc13ce783e400bbdca5fcbd58c021268fc8a19d38496 */
#define TOKEN_17    "17.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY"
#define TOKEN_1     "1.IKF6hiO0l_wupqi-oCz3p_SgUeFI2VnUDoBVfzH-vsg"
#define TOKEN_MAX   "9223372036854775807.HWuVFjnQ54miiEaGng0ZfjmQUSoxkwv_hAyHktR-YQM"
#define TOKEN_10E18 "1000000000000000000.mXuJyipg1V-J2GIBlPEyuro5a2Z5V2KcyjCNJeQo_M0"
/* The token of user 17 under OTHER_SECRET. */
#define TOKEN_17_OTHER "17.5sPGikDZPUXM81Q3-KnoY07KjLdA2-gSalAbUsomfuo"

/* Expects `token` refused under SECRET, leaving the user id untouched. */
static void expect_refused(const char *token, size_t len)
{
    char shown[200];
    check_quote(token, shown, sizeof(shown));
    CHECK_CONTEXT("token %s", shown);

    int64_t user_id = 42;
    CHECK_INT_EQ(-1, lk_token_verify(SECRET, token, len, &user_id));
    CHECK_INT_EQ(42, user_id);
}

#define EXPECT_REFUSED(token) expect_refused((token), strlen(token))

static void test_mint_exact(void)
{
    char token[LK_TOKEN_MAX_LEN];

    CHECK_INT_EQ(0, lk_token_mint(SECRET, 17, token, sizeof(token)));
    CHECK_STR_EQ(TOKEN_17, token);
    CHECK_INT_EQ(0, lk_token_mint(SECRET, 1, token, sizeof(token)));
    CHECK_STR_EQ(TOKEN_1, token);
    CHECK_INT_EQ(0, lk_token_mint(OTHER_SECRET, 17, token, sizeof(token)));
    CHECK_STR_EQ(TOKEN_17_OTHER, token);
}

static void test_mint_largest_fits(void)
{
    char token[LK_TOKEN_MAX_LEN];

    CHECK_INT_EQ(0, lk_token_mint(SECRET, INT64_MAX, token, sizeof(token)));
    CHECK_STR_EQ(TOKEN_MAX, token);
    CHECK_INT_EQ(0, lk_token_mint(SECRET, 1000000000000000000, token, sizeof(token)));
    CHECK_STR_EQ(TOKEN_10E18, token);
}

static void test_mint_refuses_non_positive(void)
{
    char token[LK_TOKEN_MAX_LEN];

    CHECK_INT_EQ(-1, lk_token_mint(SECRET, 0, token, sizeof(token)));
    CHECK_INT_EQ(-1, lk_token_mint(SECRET, -17, token, sizeof(token)));
    CHECK_INT_EQ(-1, lk_token_mint(SECRET, INT64_MIN, token, sizeof(token)));
}

static void test_mint_buffer_too_small(void)
{
    char token[LK_TOKEN_MAX_LEN];

    /* "17." and 43 characters of signature: 46, and 47 with the NUL. */
    CHECK_INT_EQ(-1, lk_token_mint(SECRET, 17, token, 46));
    CHECK_INT_EQ(-1, lk_token_mint(SECRET, 17, token, 1));
    CHECK_INT_EQ(0, lk_token_mint(SECRET, 17, token, 47));
    CHECK_STR_EQ(TOKEN_17, token);
}

static void test_verify_ok(void)
{
    int64_t user_id = 0;

    CHECK_INT_EQ(0, lk_token_verify(SECRET, TOKEN_17, strlen(TOKEN_17), &user_id));
    CHECK_INT_EQ(17, user_id);
    CHECK_INT_EQ(0, lk_token_verify(SECRET, TOKEN_1, strlen(TOKEN_1), &user_id));
    CHECK_INT_EQ(1, user_id);
}

static void test_verify_reads_only_len_bytes(void)
{
    /* An Authorization header is not NUL-terminated where the token ends. */
    const char *header = TOKEN_17 "\r\nHost: 127.0.0.1";
    int64_t user_id = 0;

    CHECK_INT_EQ(0, lk_token_verify(SECRET, header, strlen(TOKEN_17), &user_id));
    CHECK_INT_EQ(17, user_id);
}

static void test_verify_round_trip_large_ids(void)
{
    /* Every id lk_token_mint accepts must verify, up to INT64_MAX. */
    static const int64_t ids[] = {999999999999999999, 1000000000000000000, INT64_MAX};

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        CHECK_CONTEXT("user id %" PRId64, ids[i]);

        char token[LK_TOKEN_MAX_LEN];
        CHECK_INT_EQ(0, lk_token_mint(SECRET, ids[i], token, sizeof(token)));

        int64_t user_id = 0;
        CHECK_INT_EQ(0, lk_token_verify(SECRET, token, strlen(token), &user_id));
        CHECK_INT_EQ(ids[i], user_id);
    }
}

static void test_tampered_signature(void)
{
    /* One character changed at the start, in the middle, at the end. */
    EXPECT_REFUSED("17.ahP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("17.bhP4WfS_q9KcJ8wTzng-QAu8yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("17.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJZ");
    /* The same bytes in standard base64 ('_' as '/', '-' as '+'). */
    EXPECT_REFUSED("17.bhP4WfS/q9KcJ8wTzng+QAu9yl/L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("17.BHP4WFS_Q9KCJ8WTZNG-QAU9YL_L1YWCEMJ8IHNTHJY");
}

static void test_tampered_user_id(void)
{
    /* The signature of 17 under another user id. */
    EXPECT_REFUSED("18.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("1.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("170.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("71.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
}

static void test_other_spellings_of_the_id(void)
{
    /* One user has exactly one token: no leading zero, sign or space. */
    EXPECT_REFUSED("017.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("0017.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("+17.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED(" 17.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("17 .bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("0.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("-17.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
}

static void test_id_past_int64_max(void)
{
    /* No overflow into a small or negative id, whatever the signature:
     * 18446744073709551633 is 2^64 + 17, which a wrapping parser would
     * read as 17 and accept with the signature of 17. */
    EXPECT_REFUSED("9223372036854775808.HWuVFjnQ54miiEaGng0ZfjmQUSoxkwv_hAyHktR-YQM");
    EXPECT_REFUSED("18446744073709551633.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("99999999999999999999999.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
}

static void test_extra_characters(void)
{
    EXPECT_REFUSED(TOKEN_17 "x");
    EXPECT_REFUSED(TOKEN_17 "=");
    EXPECT_REFUSED(TOKEN_17 " ");
    EXPECT_REFUSED(TOKEN_17 "\n");
    EXPECT_REFUSED(TOKEN_17 "." TOKEN_17);
    EXPECT_REFUSED("17..bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("Bearer " TOKEN_17);
}

static void test_truncated(void)
{
    EXPECT_REFUSED("17.bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJ");
    EXPECT_REFUSED("17.");
    EXPECT_REFUSED("17");
    EXPECT_REFUSED(".bhP4WfS_q9KcJ8wTzng-QAu9yl_L1YwCEmj8ihnThJY");
    EXPECT_REFUSED("");
    /* The whole token, but `len` one short. */
    expect_refused(TOKEN_17, strlen(TOKEN_17) - 1);
}

static void test_wrong_secret(void)
{
    int64_t user_id = 42;

    CHECK_INT_EQ(-1, lk_token_verify(OTHER_SECRET, TOKEN_17, strlen(TOKEN_17), &user_id));
    CHECK_INT_EQ(42, user_id);
    CHECK_INT_EQ(-1, lk_token_verify(SECRET, TOKEN_17_OTHER, strlen(TOKEN_17_OTHER), &user_id));
    CHECK_INT_EQ(42, user_id);
    CHECK_INT_EQ(0,
                 lk_token_verify(OTHER_SECRET, TOKEN_17_OTHER, strlen(TOKEN_17_OTHER), &user_id));
    CHECK_INT_EQ(17, user_id);
}

int main(void)
{
    static const check_case cases[] = {
        {"mint writes the exact token", test_mint_exact},
        {"mint writes 19-digit ids, INT64_MAX within LK_TOKEN_MAX_LEN", test_mint_largest_fits},
        {"mint refuses a user id that is not positive", test_mint_refuses_non_positive},
        {"mint refuses a buffer too small", test_mint_buffer_too_small},
        {"verify accepts a minted token", test_verify_ok},
        {"verify reads only len bytes", test_verify_reads_only_len_bytes},
        {"verify accepts the token of every id mint accepts", test_verify_round_trip_large_ids},
        {"verify refuses a tampered signature", test_tampered_signature},
        {"verify refuses a tampered user id", test_tampered_user_id},
        {"verify refuses a leading zero, sign or space", test_other_spellings_of_the_id},
        {"verify refuses an id past INT64_MAX", test_id_past_int64_max},
        {"verify refuses extra characters", test_extra_characters},
        {"verify refuses a truncated token", test_truncated},
        {"verify refuses a token of another secret", test_wrong_secret},
    };
    return CHECK_RUN(cases);
}
