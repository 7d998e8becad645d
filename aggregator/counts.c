#include "counts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Refuses to run while likesctl rebuild-redis works (likes:maintenance), or
 * when Redis lacks likes:state: a Redis that lost its data must be rebuilt
 * from PostgreSQL first, or the counts would start again from zero.
 *
 * ARGV[1] is the topic; then five values per entry: partition, offset,
 * post id, user id, 1 for like or 0 for unlike, sorted by partition and
 * offset. Returns the touched posts and their new counts, flattened, and
 * publishes them as [[post, count], ...] on the channel likes:counts, where
 * every ingest process listens to push them to its live subscribers. Lua
 * numbers are doubles, exact for offsets up to 2^53. */
static const char apply_script[] =
    "if redis.call('EXISTS', 'likes:maintenance') == 1 then\n"
    "  return redis.error_reply('MAINTENANCE counts are being rebuilt')\n"
    "end\n"
    "if redis.call('EXISTS', 'likes:state') == 0 then\n"
    "  return redis.error_reply('NOSTATE redis holds no pipeline state')\n"
    "end\n"
    "local topic = ARGV[1]\n"
    "local applied = {}\n"
    "local advanced = {}\n"
    "local touched = {}\n"
    "local touched_order = {}\n"
    "for i = 2, #ARGV, 5 do\n"
    "  local partition = ARGV[i]\n"
    "  local offset = tonumber(ARGV[i + 1])\n"
    "  local post = ARGV[i + 2]\n"
    "  if applied[partition] == nil then\n"
    "    local guard = redis.call('GET', 'likes:applied:' .. topic .. ':' .. partition)\n"
    "    applied[partition] = tonumber(guard or '-1')\n"
    "  end\n"
    "  if offset > applied[partition] then\n"
    "    local users = 'likes:post:' .. post .. ':users'\n"
    "    local changed\n"
    "    if ARGV[i + 4] == '1' then\n"
    "      changed = redis.call('SADD', users, ARGV[i + 3])\n"
    "    else\n"
    "      changed = redis.call('SREM', users, ARGV[i + 3])\n"
    "    end\n"
    "    if changed == 1 and not touched[post] then\n"
    "      touched[post] = true\n"
    "      table.insert(touched_order, post)\n"
    "    end\n"
    "    applied[partition] = offset\n"
    "    advanced[partition] = ARGV[i + 1]\n"
    "  end\n"
    "end\n"
    "for partition, offset in pairs(advanced) do\n"
    "  redis.call('SET', 'likes:applied:' .. topic .. ':' .. partition, offset)\n"
    "end\n"
    "local result = {}\n"
    "local published = {}\n"
    "for _, post in ipairs(touched_order) do\n"
    "  local count = redis.call('SCARD', 'likes:post:' .. post .. ':users')\n"
    "  redis.call('SET', 'likes:post:' .. post .. ':count', count)\n"
    "  table.insert(result, post)\n"
    "  table.insert(result, count)\n"
    "  table.insert(published, {tonumber(post), count})\n"
    "end\n"
    "if #published > 0 then\n"
    "  redis.call('PUBLISH', 'likes:counts', cjson.encode(published))\n"
    "end\n"
    "return result\n";

/* Entries per script call: large enough to amortise the round trip, small
 * enough that one call never holds Redis for long. */
#define CHUNK_ENTRIES  2000
#define ARGS_PER_ENTRY 5
#define LEADING_ARGS   4 /* EVALSHA, the digest, no keys, the topic */
#define MAX_ARGS       (LEADING_ARGS + CHUNK_ENTRIES * ARGS_PER_ENTRY)
#define NUMBER_LEN     24

struct counts {
    lk_redis *redis;
    char *topic;
    char script_sha[41];
    /* Argument vectors reused across calls. */
    const char *argv[MAX_ARGS];
    size_t argv_len[MAX_ARGS];
    char numbers[CHUNK_ENTRIES * ARGS_PER_ENTRY][NUMBER_LEN];
};

counts *counts_new(lk_redis *redis, const char *topic)
{
    counts *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;

    c->topic = strdup(topic);
    if (c->topic == NULL) {
        free(c);
        return NULL;
    }
    c->redis = redis;
    return c;
}

void counts_free(counts *c)
{
    if (c == NULL)
        return;
    free(c->topic);
    free(c);
}

/* Loads the script and remembers its digest, once per connection at most:
 * a restarted Redis forgets its scripts, and then EVALSHA answers
 * NOSCRIPT. */
static counts_result load_script(counts *c, char *why, size_t whylen)
{
    redisReply *reply = lk_redis_command(c->redis, "SCRIPT LOAD %s", apply_script);
    if (reply == NULL) {
        snprintf(why, whylen, "redis unreachable");
        return COUNTS_FAILED;
    }

    counts_result rc = COUNTS_FAILED;
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(c->script_sha, reply->str, 41);
        rc = COUNTS_APPLIED;
    } else {
        snprintf(why, whylen, "SCRIPT LOAD answered %s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "something unexpected");
    }
    freeReplyObject(reply);
    return rc;
}

static void set_number(counts *c, size_t arg, size_t slot, int64_t value)
{
    int len = snprintf(c->numbers[slot], NUMBER_LEN, "%" PRId64, value);
    c->argv[arg] = c->numbers[slot];
    c->argv_len[arg] = (size_t)len;
}

/* Fills the argument vector for one chunk; returns the argument count. */
static int build_args(counts *c, const lk_pair *entries, size_t n)
{
    c->argv[0] = "EVALSHA";
    c->argv_len[0] = 7;
    c->argv[1] = c->script_sha;
    c->argv_len[1] = 40;
    c->argv[2] = "0";
    c->argv_len[2] = 1;
    c->argv[3] = c->topic;
    c->argv_len[3] = strlen(c->topic);

    size_t arg = LEADING_ARGS, slot = 0;
    for (size_t i = 0; i < n; i++) {
        set_number(c, arg++, slot++, entries[i].partition);
        set_number(c, arg++, slot++, entries[i].offset);
        set_number(c, arg++, slot++, entries[i].post_id);
        set_number(c, arg++, slot++, entries[i].user_id);
        c->argv[arg] = entries[i].action == LK_ACTION_LIKE ? "1" : "0";
        c->argv_len[arg++] = 1;
    }
    return (int)arg;
}

static counts_result classify_error(counts *c, const char *error)
{
    if (strncmp(error, "NOSCRIPT", 8) == 0)
        c->script_sha[0] = '\0';
    if (strncmp(error, "MAINTENANCE", 11) == 0)
        return COUNTS_MAINTENANCE;
    if (strncmp(error, "NOSTATE", 7) == 0)
        return COUNTS_NO_STATE;
    return COUNTS_FAILED;
}

static counts_result run_chunk(counts *c, const lk_pair *entries, size_t n, size_t *changed_posts,
                               char *why, size_t whylen)
{
    if (c->script_sha[0] == '\0' && load_script(c, why, whylen) != COUNTS_APPLIED)
        return COUNTS_FAILED;

    redisContext *context = lk_redis_get(c->redis);
    if (context == NULL) {
        snprintf(why, whylen, "redis unreachable");
        return COUNTS_FAILED;
    }

    int argc = build_args(c, entries, n);
    redisReply *reply = redisCommandArgv(context, argc, c->argv, c->argv_len);
    if (reply == NULL) {
        snprintf(why, whylen, "%s", context->errstr[0] ? context->errstr : "connection lost");
        lk_redis_broken(c->redis, why);
        c->script_sha[0] = '\0';
        return COUNTS_FAILED;
    }

    counts_result rc = COUNTS_APPLIED;
    if (reply->type == REDIS_REPLY_ARRAY) {
        *changed_posts += reply->elements / 2;
    } else {
        snprintf(why, whylen, "%s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "an unexpected reply");
        rc = classify_error(c, why);
    }
    freeReplyObject(reply);
    return rc;
}

counts_result counts_apply(counts *c, const lk_pair *entries, size_t n, size_t *changed_posts,
                           char *why, size_t whylen)
{
    *changed_posts = 0;

    for (size_t start = 0; start < n; start += CHUNK_ENTRIES) {
        size_t chunk = n - start < CHUNK_ENTRIES ? n - start : CHUNK_ENTRIES;
        counts_result rc = run_chunk(c, entries + start, chunk, changed_posts, why, whylen);
        if (rc != COUNTS_APPLIED)
            return rc;
    }
    return COUNTS_APPLIED;
}

int counts_adopt_state(counts *c)
{
    redisReply *reply = lk_redis_command(c->redis, "SET likes:state %s NX", "new");
    int ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

int counts_has_applied_offsets(counts *c)
{
    /* SCAN, not KEYS: this walks the keyspace in small steps and never
     * blocks Redis, and it runs only when the state marker is missing. */
    char cursor[32] = "0";
    do {
        redisReply *reply =
            lk_redis_command(c->redis, "SCAN %s MATCH likes:applied:* COUNT 1000", cursor);
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            freeReplyObject(reply);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
        int found = reply->element[1]->elements > 0;
        freeReplyObject(reply);
        if (found)
            return 1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}
