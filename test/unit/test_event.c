/*
 * Like events and deltas: the exact JSON written, the round trip, and
 * every kind of input lk_event_decode and lk_delta_decode must refuse.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "event.h"

typedef struct refusal {
    const char *input;
    const char *err;
} refusal;

static const char msg_type[] = "\"type\" must be \"like\" or \"unlike\"";
static const char msg_user[] = "\"user_id\" must be a positive integer";
static const char msg_post[] = "\"post_id\" must be a positive integer";

/* Decodes every input of `cases` and expects -1 with the exact message. */
static void expect_event_refusals(const refusal *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char shown[200];
        check_quote(cases[i].input, shown, sizeof(shown));
        CHECK_CONTEXT("input %s", shown);

        lk_like_event ev;
        char err[256] = "";
        CHECK_INT_EQ(
            -1, lk_event_decode(cases[i].input, strlen(cases[i].input), &ev, err, sizeof(err)));
        CHECK_STR_EQ(cases[i].err, err);
    }
}

#define EXPECT_EVENT_REFUSALS(cases)                                                               \
    expect_event_refusals((cases), sizeof(cases) / sizeof(*(cases)))

static void test_encode_exact_like(void)
{
    lk_like_event ev = {
        .action = LK_ACTION_LIKE, .user_id = 17, .post_id = 3, .ts_ms = 1764864000123};
    char buf[LK_EVENT_MAX_LEN];

    CHECK_INT_EQ(59, lk_event_encode(&ev, buf, sizeof(buf)));
    CHECK_STR_EQ("{\"type\":\"like\",\"user_id\":17,\"post_id\":3,\"ts\":1764864000123}", buf);
}

static void test_encode_exact_unlike(void)
{
    lk_like_event ev = {.action = LK_ACTION_UNLIKE, .user_id = 4, .post_id = 12, .ts_ms = 0};
    char buf[LK_EVENT_MAX_LEN];

    CHECK_INT_EQ(49, lk_event_encode(&ev, buf, sizeof(buf)));
    CHECK_STR_EQ("{\"type\":\"unlike\",\"user_id\":4,\"post_id\":12,\"ts\":0}", buf);
}

static void test_encode_longest_fits(void)
{
    lk_like_event ev = {
        .action = LK_ACTION_UNLIKE, .user_id = INT64_MAX, .post_id = INT64_MAX, .ts_ms = INT64_MIN};
    char buf[LK_EVENT_MAX_LEN];

    CHECK_INT_EQ(103, lk_event_encode(&ev, buf, sizeof(buf)));
    CHECK_STR_EQ("{\"type\":\"unlike\",\"user_id\":9223372036854775807,"
                 "\"post_id\":9223372036854775807,\"ts\":-9223372036854775808}",
                 buf);
}

static void test_encode_buffer_too_small(void)
{
    lk_like_event ev = {
        .action = LK_ACTION_LIKE, .user_id = 17, .post_id = 3, .ts_ms = 1764864000123};
    char buf[LK_EVENT_MAX_LEN];

    /* 59 characters need 60 bytes with the NUL. */
    CHECK_INT_EQ(-1, lk_event_encode(&ev, buf, 59));
    CHECK_INT_EQ(-1, lk_event_encode(&ev, buf, 1));
    CHECK_INT_EQ(59, lk_event_encode(&ev, buf, 60));
}

static void test_encode_refuses_invalid_event(void)
{
    static const lk_like_event invalid[] = {
        {.action = 0, .user_id = 17, .post_id = 3},
        {.action = 3, .user_id = 17, .post_id = 3},
        {.action = LK_ACTION_LIKE, .user_id = 0, .post_id = 3},
        {.action = LK_ACTION_LIKE, .user_id = -17, .post_id = 3},
        {.action = LK_ACTION_LIKE, .user_id = 17, .post_id = 0},
        {.action = LK_ACTION_UNLIKE, .user_id = 17, .post_id = INT64_MIN},
    };
    char buf[LK_EVENT_MAX_LEN];

    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        CHECK_CONTEXT("event %zu", i);
        CHECK_INT_EQ(-1, lk_event_encode(&invalid[i], buf, sizeof(buf)));
    }
}

static void test_round_trip(void)
{
    static const lk_like_event events[] = {
        {.action = LK_ACTION_LIKE, .user_id = 17, .post_id = 3, .ts_ms = 1764864000123},
        {.action = LK_ACTION_UNLIKE, .user_id = 1, .post_id = 1, .ts_ms = 0},
        {.action = LK_ACTION_LIKE,
         .user_id = INT64_MAX - 1,
         .post_id = INT64_MAX - 1,
         .ts_ms = INT64_MIN},
    };

    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        CHECK_CONTEXT("event %zu", i);
        char buf[LK_EVENT_MAX_LEN];
        int len = lk_event_encode(&events[i], buf, sizeof(buf));
        CHECK(len > 0);

        lk_like_event back;
        char err[256] = "";
        CHECK_INT_EQ(0, lk_event_decode(buf, (size_t)len, &back, err, sizeof(err)));
        CHECK_STR_EQ("", err);
        CHECK_INT_EQ(events[i].action, back.action);
        CHECK_INT_EQ(events[i].user_id, back.user_id);
        CHECK_INT_EQ(events[i].post_id, back.post_id);
        CHECK_INT_EQ(events[i].ts_ms, back.ts_ms);
    }
}

static void test_decode_hand_written(void)
{
    /* Written by hand into kafka-console-producer: spaces, another member
     * order, no timestamp. */
    const char *text = " { \"post_id\" : 3 , \"type\" : \"unlike\" , \"user_id\" : 17 }\n";
    lk_like_event ev;
    char err[256] = "";

    CHECK_INT_EQ(0, lk_event_decode(text, strlen(text), &ev, err, sizeof(err)));
    CHECK_INT_EQ(LK_ACTION_UNLIKE, ev.action);
    CHECK_INT_EQ(17, ev.user_id);
    CHECK_INT_EQ(3, ev.post_id);
    CHECK_INT_EQ(0, ev.ts_ms);
}

static void test_decode_reads_only_len_bytes(void)
{
    /* A Kafka payload is not NUL-terminated: whatever follows is not ours. */
    const char *text = "{\"type\":\"like\",\"user_id\":17,\"post_id\":3}GARBAGE";
    lk_like_event ev;
    char err[256] = "";

    CHECK_INT_EQ(0, lk_event_decode(text, strlen(text) - strlen("GARBAGE"), &ev, err, sizeof(err)));
    CHECK_INT_EQ(17, ev.user_id);
    CHECK_INT_EQ(3, ev.post_id);
}

static void test_decode_refuses_missing_fields(void)
{
    static const refusal cases[] = {
        {"{}", msg_type},
        {"{\"user_id\":17,\"post_id\":3}", msg_type},
        {"{\"type\":\"like\",\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":17}", msg_post},
        {"{\"type\":\"like\",\"user\":17,\"post\":3}", msg_user},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_string_ids(void)
{
    static const refusal cases[] = {
        {"{\"type\":\"like\",\"user_id\":\"17\",\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":\"3\"}", msg_post},
        {"{\"type\":\"like\",\"user_id\":\"\",\"post_id\":3}", msg_user},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_other_id_types(void)
{
    static const refusal cases[] = {
        {"{\"type\":\"like\",\"user_id\":17.0,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":17.5,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":1e1,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3.0}", msg_post},
        {"{\"type\":\"like\",\"user_id\":true,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":null,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":[17],\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":{\"id\":3}}", msg_post},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_non_positive_ids(void)
{
    static const refusal cases[] = {
        {"{\"type\":\"like\",\"user_id\":0,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":-0,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":-17,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":0}", msg_post},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":-3}", msg_post},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_huge_numbers(void)
{
    /* json-c saturates integers it cannot hold at INT64_MAX (INT64_MIN
     * below), so INT64_MAX itself stands for "too large" and is refused. */
    static const refusal cases[] = {
        {"{\"type\":\"like\",\"user_id\":99999999999999999999,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":18446744073709551615,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":9223372036854775808,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":-99999999999999999999,\"post_id\":3}", msg_user},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":100000000000000000000000000000}", msg_post},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":1e400}", msg_post},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_accepts_largest_id(void)
{
    const char *text = "{\"type\":\"like\",\"user_id\":9223372036854775806,\"post_id\":3}";
    lk_like_event ev;
    char err[256] = "";

    CHECK_INT_EQ(0, lk_event_decode(text, strlen(text), &ev, err, sizeof(err)));
    CHECK_INT_EQ(INT64_MAX - 1, ev.user_id);
}

static void test_decode_refuses_unknown_type(void)
{
    static const refusal cases[] = {
        {"{\"type\":\"share\",\"user_id\":17,\"post_id\":3}", msg_type},
        {"{\"type\":\"LIKE\",\"user_id\":17,\"post_id\":3}", msg_type},
        {"{\"type\":\"like \",\"user_id\":17,\"post_id\":3}", msg_type},
        {"{\"type\":\"\",\"user_id\":17,\"post_id\":3}", msg_type},
        {"{\"type\":1,\"user_id\":17,\"post_id\":3}", msg_type},
        {"{\"type\":[\"like\"],\"user_id\":17,\"post_id\":3}", msg_type},
        {"{\"type\":null,\"user_id\":17,\"post_id\":3}", msg_type},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_type_with_nul(void)
{
    /* "like\u0000" is a string of five characters, not "like"; escaped NUL
     * is refused by the parser itself, as json-c would cut names there. */
    static const refusal cases[] = {
        {"{\"type\":\"like\\u0000\",\"user_id\":17,\"post_id\":3}",
         "invalid utf-8 string at byte 13"},
        {"{\"type\":\"unlike\\u0000x\",\"user_id\":17,\"post_id\":3}",
         "invalid utf-8 string at byte 15"},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_non_objects(void)
{
    static const refusal cases[] = {
        {"[{\"type\":\"like\",\"user_id\":17,\"post_id\":3}]", "an event must be a JSON object"},
        {"[]", "an event must be a JSON object"},
        {"\"like\" ", "an event must be a JSON object"},
        {"17 ", "an event must be a JSON object"},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_trailing_garbage(void)
{
    static const refusal cases[] = {
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3}x", "unexpected character at byte 40"},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3} x", "unexpected character at byte 41"},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3}{}", "unexpected character at byte 40"},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3},", "unexpected character at byte 40"},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_truncated(void)
{
    static const refusal cases[] = {
        {"", "unexpected end of document"},
        {"   ", "unexpected end of document"},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3", "unexpected end of document"},
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":", "unexpected end of document"},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

static void test_decode_refuses_invalid_utf8(void)
{
    static const refusal cases[] = {
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3,\"note\":\"\xff\"}",
         "invalid utf-8 string at byte 48"},
        /* The lead byte 0xc3 at 51 is followed by the quote at 52, no
         * continuation byte: json-c points at the quote. */
        {"{\"type\":\"like\",\"user_id\":17,\"post_id\":3,\"note\":\"caf\xc3\"}",
         "invalid utf-8 string at byte 51"},
        /* "lik" and an e acute in Latin-1: 0xe9 at 12 announces three bytes,
         * and the quote at 13 is not one of them. */
        {"{\"type\":\"lik\xe9\",\"user_id\":17,\"post_id\":3}", "invalid utf-8 string at byte 12"},
    };
    EXPECT_EVENT_REFUSALS(cases);
}

/* Builds an event whose member "x" nests `depth` - 1 arrays, so that the
 * whole document is `depth` levels deep. */
static void nested_event(int depth, char *out, size_t outlen)
{
    size_t used =
        (size_t)snprintf(out, outlen, "{\"type\":\"like\",\"user_id\":17,\"post_id\":3,\"x\":");
    for (int i = 1; i < depth; i++)
        out[used++] = '[';
    for (int i = 1; i < depth; i++)
        out[used++] = ']';
    snprintf(out + used, outlen - used, "}");
}

static void test_decode_nesting_depth(void)
{
    char text[256];
    lk_like_event ev;
    char err[256] = "";

    CHECK_CONTEXT("depth 16");
    nested_event(16, text, sizeof(text));
    CHECK_INT_EQ(0, lk_event_decode(text, strlen(text), &ev, err, sizeof(err)));

    /* The prefix up to "x": is 44 bytes, so the 16th bracket, the one
     * that opens level 17, is byte 44 + 15 = 59. */
    CHECK_CONTEXT("depth 17");
    nested_event(17, text, sizeof(text));
    CHECK_INT_EQ(-1, lk_event_decode(text, strlen(text), &ev, err, sizeof(err)));
    CHECK_STR_EQ("nesting too deep at byte 59", err);

    CHECK_CONTEXT("depth 100");
    nested_event(100, text, sizeof(text));
    CHECK_INT_EQ(-1, lk_event_decode(text, strlen(text), &ev, err, sizeof(err)));
    CHECK_STR_EQ("nesting too deep at byte 59", err);
}

static void test_event_key(void)
{
    char buf[32];

    CHECK_INT_EQ(1, lk_event_key(3, buf, sizeof(buf)));
    CHECK_STR_EQ("3", buf);
    CHECK_INT_EQ(19, lk_event_key(INT64_MAX, buf, sizeof(buf)));
    CHECK_STR_EQ("9223372036854775807", buf);
}

static void test_delta_encode_exact(void)
{
    int64_t liked[] = {17, 18};
    int64_t unliked[] = {4};
    lk_delta delta = {
        .post_id = 3, .liked = liked, .liked_count = 2, .unliked = unliked, .unliked_count = 1};
    size_t len = 0;

    char *text = lk_delta_encode(&delta, &len);
    CHECK(text != NULL);
    CHECK_STR_EQ("{\"post_id\":3,\"liked\":[17,18],\"unliked\":[4]}", text);
    CHECK_INT_EQ(43, len);
    free(text);
}

static void test_delta_encode_empty_lists(void)
{
    lk_delta delta = {.post_id = 9223372036854775806};
    size_t len = 0;

    char *text = lk_delta_encode(&delta, &len);
    CHECK(text != NULL);
    CHECK_STR_EQ("{\"post_id\":9223372036854775806,\"liked\":[],\"unliked\":[]}", text);
    CHECK_INT_EQ(55, len);
    free(text);
}

static void check_delta_round_trip(const lk_delta *delta, lk_delta *back)
{
    size_t len = 0;
    char *text = lk_delta_encode(delta, &len);
    CHECK(text != NULL);

    char err[256] = "";
    int rc = lk_delta_decode(text, len, back, err, sizeof(err));
    free(text);
    CHECK_INT_EQ(0, rc);
    CHECK_STR_EQ("", err);

    CHECK_INT_EQ(delta->post_id, back->post_id);
    CHECK_INT_EQ(delta->liked_count, back->liked_count);
    CHECK_INT_EQ(delta->unliked_count, back->unliked_count);
    for (size_t i = 0; i < delta->liked_count; i++)
        CHECK_INT_EQ(delta->liked[i], back->liked[i]);
    for (size_t i = 0; i < delta->unliked_count; i++)
        CHECK_INT_EQ(delta->unliked[i], back->unliked[i]);
}

static void test_delta_round_trip(void)
{
    int64_t liked[] = {17, 18, 1, INT64_MAX - 1};
    int64_t unliked[] = {4, 5};
    lk_delta delta = {
        .post_id = 3, .liked = liked, .liked_count = 4, .unliked = unliked, .unliked_count = 2};
    lk_delta back = {0};

    check_delta_round_trip(&delta, &back);
    lk_delta_clear(&back);
}

static void test_delta_round_trip_empty(void)
{
    lk_delta delta = {.post_id = 8};
    lk_delta back = {0};

    check_delta_round_trip(&delta, &back);
    lk_delta_clear(&back);
}

static void test_delta_decode_refusals(void)
{
    static const refusal cases[] = {
        {"[]", "a delta must be a JSON object"},
        {"{\"liked\":[],\"unliked\":[]}", "\"post_id\" must be a positive integer"},
        {"{\"post_id\":\"3\",\"liked\":[],\"unliked\":[]}",
         "\"post_id\" must be a positive integer"},
        {"{\"post_id\":0,\"liked\":[],\"unliked\":[]}", "\"post_id\" must be a positive integer"},
        {"{\"post_id\":3,\"unliked\":[]}", "\"liked\" must be an array of user ids"},
        {"{\"post_id\":3,\"liked\":17,\"unliked\":[]}", "\"liked\" must be an array of user ids"},
        {"{\"post_id\":3,\"liked\":[]}", "\"unliked\" must be an array of user ids"},
        {"{\"post_id\":3,\"liked\":[17],\"unliked\":null}",
         "\"unliked\" must be an array of user ids"},
        {"{\"post_id\":3,\"liked\":[17,\"18\"],\"unliked\":[]}",
         "\"liked\"[1] must be a positive integer"},
        {"{\"post_id\":3,\"liked\":[0],\"unliked\":[]}", "\"liked\"[0] must be a positive integer"},
        {"{\"post_id\":3,\"liked\":[17],\"unliked\":[4,-5]}",
         "\"unliked\"[1] must be a positive integer"},
        {"{\"post_id\":3,\"liked\":[17],\"unliked\":[4.5]}",
         "\"unliked\"[0] must be a positive integer"},
        {"{\"post_id\":3,\"liked\":[99999999999999999999],\"unliked\":[]}",
         "\"liked\"[0] must be a positive integer"},
        {"{\"post_id\":3,\"liked\":[[17]],\"unliked\":[]}",
         "\"liked\"[0] must be a positive integer"},
        {"{\"post_id\":3,\"liked\":[],\"unliked\":[]} x", "unexpected character at byte 38"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char shown[200];
        check_quote(cases[i].input, shown, sizeof(shown));
        CHECK_CONTEXT("input %s", shown);

        /* Garbage in `out` beforehand: a refusal must leave nothing to free. */
        lk_delta out = {.post_id = 77, .liked_count = 5, .unliked_count = 6};
        char err[256] = "";
        CHECK_INT_EQ(
            -1, lk_delta_decode(cases[i].input, strlen(cases[i].input), &out, err, sizeof(err)));
        CHECK_STR_EQ(cases[i].err, err);
        CHECK(out.liked == NULL);
        CHECK(out.unliked == NULL);
        CHECK_INT_EQ(0, out.liked_count);
        CHECK_INT_EQ(0, out.unliked_count);
    }
}

static void test_delta_clear(void)
{
    const char *text = "{\"post_id\":3,\"liked\":[17,18],\"unliked\":[4]}";
    lk_delta delta;
    char err[256] = "";

    CHECK_INT_EQ(0, lk_delta_decode(text, strlen(text), &delta, err, sizeof(err)));
    CHECK_INT_EQ(2, delta.liked_count);
    CHECK_INT_EQ(1, delta.unliked_count);

    lk_delta_clear(&delta);
    CHECK_INT_EQ(0, delta.post_id);
    CHECK(delta.liked == NULL);
    CHECK_INT_EQ(0, delta.liked_count);
    CHECK(delta.unliked == NULL);
    CHECK_INT_EQ(0, delta.unliked_count);

    /* Clearing twice, or a delta that was never filled, is harmless. */
    lk_delta_clear(&delta);
    lk_delta empty = {0};
    lk_delta_clear(&empty);
}

int main(void)
{
    static const check_case cases[] = {
        {"encode writes the exact text of a like", test_encode_exact_like},
        {"encode writes the exact text of an unlike", test_encode_exact_unlike},
        {"the longest event fits LK_EVENT_MAX_LEN", test_encode_longest_fits},
        {"encode refuses a buffer too small", test_encode_buffer_too_small},
        {"encode refuses an invalid event", test_encode_refuses_invalid_event},
        {"decode reads back what encode wrote", test_round_trip},
        {"decode reads a hand-written event without ts", test_decode_hand_written},
        {"decode reads only len bytes", test_decode_reads_only_len_bytes},
        {"decode refuses missing fields", test_decode_refuses_missing_fields},
        {"decode refuses string ids", test_decode_refuses_string_ids},
        {"decode refuses float, boolean, null and compound ids",
         test_decode_refuses_other_id_types},
        {"decode refuses zero and negative ids", test_decode_refuses_non_positive_ids},
        {"decode refuses huge numbers", test_decode_refuses_huge_numbers},
        {"decode accepts INT64_MAX - 1 as an id", test_decode_accepts_largest_id},
        {"decode refuses an unknown type", test_decode_refuses_unknown_type},
        {"decode refuses a type with an embedded NUL", test_decode_refuses_type_with_nul},
        {"decode refuses arrays and other non-objects", test_decode_refuses_non_objects},
        {"decode refuses trailing garbage", test_decode_refuses_trailing_garbage},
        {"decode refuses a truncated document", test_decode_refuses_truncated},
        {"decode refuses invalid UTF-8", test_decode_refuses_invalid_utf8},
        {"decode accepts depth 16 and refuses deeper", test_decode_nesting_depth},
        {"the message key is the decimal post id", test_event_key},
        {"delta encode writes the exact text", test_delta_encode_exact},
        {"delta encode writes empty lists", test_delta_encode_empty_lists},
        {"delta decode reads back what encode wrote", test_delta_round_trip},
        {"delta decode reads back empty lists", test_delta_round_trip_empty},
        {"delta decode refuses invalid deltas and leaves nothing to free",
         test_delta_decode_refusals},
        {"lk_delta_clear frees and zeroes", test_delta_clear},
    };
    return CHECK_RUN(cases);
}
