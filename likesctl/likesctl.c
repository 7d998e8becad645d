/*
 * likesctl: the operator's command.
 *
 *   likesctl token USER_ID...   print a bearer token for each user id
 *   likesctl rebuild-redis      restore the counts in Redis after it lost its data
 *   likesctl verify             compare the counts in Redis and PostgreSQL
 *   likesctl lag                show how far the consumer groups are behind
 *   likesctl replay             rebuild PostgreSQL's likes from the topic `likes`
 *
 * Tokens are signed with LIKES_TOKEN_SECRET, exactly as the ingest service
 * signs them, so load tools can act as any number of users without signing
 * each one up.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "likesctl.h"
#include "log.h"
#include "token.h"

typedef struct command {
    const char *name;
    const char *usage;
    int needs_secret; /* only commands that sign tokens need the secret */
    int (*run)(const lk_config *cfg, int argc, char **argv);
} command;

/* Digits only, no sign and no leading zero: the id exactly as a token
 * spells it. */
static int parse_user_id(const char *text, int64_t *user_id)
{
    if (text[0] < '1' || text[0] > '9' || strspn(text, "0123456789") != strlen(text))
        return -1;

    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *user_id = value;
    return 0;
}

static int run_token(const lk_config *cfg, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "likesctl token: give at least one user id\n");
        return 2;
    }

    for (int i = 0; i < argc; i++) {
        int64_t user_id;
        char token[LK_TOKEN_MAX_LEN];
        if (parse_user_id(argv[i], &user_id) != 0 ||
            lk_token_mint(cfg->token_secret, user_id, token, sizeof(token)) != 0) {
            fprintf(stderr, "likesctl token: \"%s\" is not a positive user id\n", argv[i]);
            return 2;
        }
        printf("%s\n", token);
    }
    return 0;
}

static const command commands[] = {
    {"token", "token USER_ID...    print a bearer token for each user id", 1, run_token},
    {"rebuild-redis",
     "rebuild-redis       restore the counts in Redis from PostgreSQL and the deltas topic", 0,
     likesctl_rebuild_redis},
    {"verify",
     "verify [--wait SECONDS] [--all]\n"
     "                      compare every post's count in Redis and PostgreSQL;\n"
     "                      exit 1 if any differ",
     0, likesctl_verify},
    {"lag", "lag                 show each consumer group's lag per partition", 0, likesctl_lag},
    {"replay",
     "replay [--from-beginning | --from TIME] [--dry-run]\n"
     "                      rebuild PostgreSQL's likes from the topic likes (TIME: RFC 3339 or "
     "epoch ms)",
     0, likesctl_replay},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: likesctl COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %s\n", commands[i].usage);
    fprintf(out, "\nSettings come from the LIKES_* environment variables (see README.md).\n");
}

int main(int argc, char **argv)
{
    lk_log_init("likesctl");

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;

        lk_config cfg;
        char err[256];
        if (lk_config_load(&cfg, commands[i].needs_secret, err, sizeof(err)) != 0) {
            fprintf(stderr, "likesctl: %s\n", err);
            return 2;
        }
        return commands[i].run(&cfg, argc - 2, argv + 2);
    }

    fprintf(stderr, "likesctl: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
