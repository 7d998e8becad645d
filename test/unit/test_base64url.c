/* Tests of lib/base64url.c, with the vectors of RFC 4648, section 10. */
#include "base64url.h"
#include "check.h"

static const struct {
    const char *bytes;
    const char *text;
} vectors[] = {
    {"", ""},
    {"f", "Zg"},
    {"fo", "Zm8"},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg"},
    {"fooba", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy"},
    /* The two characters base64url changes: + and / become - and _. */
    {"\xfb\xff", "-_8"},
};

static void test_encode(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        CHECK_CONTEXT("vector %zu", i);
        char out[16];
        lk_base64url_encode((const unsigned char *)vectors[i].bytes, strlen(vectors[i].bytes), out);
        CHECK_STR_EQ(vectors[i].text, out);
    }
}

static void test_decode(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        CHECK_CONTEXT("vector %zu", i);
        unsigned char out[16];
        int len = lk_base64url_decode(vectors[i].text, strlen(vectors[i].text), out);
        CHECK_INT_EQ((int)strlen(vectors[i].bytes), len);
        out[len] = '\0';
        CHECK_STR_EQ(vectors[i].bytes, (const char *)out);
    }
}

static void test_decode_refuses(void)
{
    static const char *const refused[] = {"Zm9vY", "Zm+v", "Zm/v", "Zm9v=", "Zm 9"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CHECK_CONTEXT("input %s", refused[i]);
        unsigned char out[16];
        CHECK_INT_EQ(-1, lk_base64url_decode(refused[i], strlen(refused[i]), out));
    }
}

int main(void)
{
    static const check_case cases[] = {
        {"encodes the RFC 4648 vectors without padding", test_encode},
        {"decodes them back", test_decode},
        {"refuses padding, lengths no encoding has, and other alphabets", test_decode_refuses},
    };
    return CHECK_RUN(cases);
}
