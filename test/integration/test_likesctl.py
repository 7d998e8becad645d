"""The operator's commands against the real stack: likesctl verify, lag and
replay, with the exact lines and exit statuses an operator relies on."""

import os
import pty
import random
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import check_equal, main, test  # noqa: E402
import likes_client as lc  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
PHOTOS = os.path.join(ROOT, "test", "data", "images")
LIKESCTL = os.path.join(os.environ.get("LIKES_BIN_DIR", os.path.join(ROOT, "build", "bin")),
                        "likesctl")
SERVICES = os.path.join(ROOT, "scripts", "services.sh")
PARTITIONS = int(os.environ.get("LIKES_KAFKA_PARTITIONS", "6"))
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

api = lc.Api()
author = api.create_user("likesctl tester")


def likesctl(*args, env=None, timeout=120):
    """Runs likesctl; returns (exit status, stdout, stderr). Fails on any
    sanitizer report, whatever the status."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    done = subprocess.run([LIKESCTL] + list(args), capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    for report in SANITIZER_REPORTS:
        if report in done.stderr:
            raise AssertionError("likesctl %s: sanitizer report: %s" % (" ".join(args),
                                                                       done.stderr[-3000:]))
    return done.returncode, done.stdout, done.stderr


def new_post():
    reply = api.create_post(author["token"], os.path.join(PHOTOS, "coffee.png"), "likesctl test")
    check_equal(201, reply.status, "status of POST /v1/posts (%s)" % reply.body[:200])
    return reply.json()["id"]


def tokens_for(count):
    """Tokens for `count` user ids no other test uses."""
    first = tokens_for.next_id
    tokens_for.next_id += count
    return lc.mint_tokens(range(first, first + count), LIKESCTL)


tokens_for.next_id = 3_000_000_000 + random.randrange(1_000_000) * 1000


def act(conn, token, post_id, liked):
    reply = conn.like(token, post_id) if liked else conn.unlike(token, post_id)
    check_equal(202, reply.status, "status of a %s (%s)" % ("like" if liked else "unlike",
                                                             reply.body[:200]))


def drive(posts, tokens, actions_per_user, truth, seed):
    """Each user acts on random posts, one action after the other, so that
    the last acknowledged action is the truth."""
    rng = random.Random(seed)
    plans = [(item, [(rng.choice(posts), rng.random() < 0.65) for _ in range(actions_per_user)])
             for item in tokens.items()]

    def run(conn, plan):
        (user_id, token), actions = plan
        for post_id, liked in actions:
            act(conn, token, post_id, liked)
            truth.record(user_id, post_id, liked)

    lc.run_parallel(plans, run, threads=16)


def expect_counts(expected, timeout=90):
    redis, pg = lc.wait_for_counts(expected, timeout)
    check_equal(expected, redis, "counts in redis")
    check_equal(expected, pg, "counts in postgres")


def post_count():
    return int(lc.psql("select count(*) from posts")[0][0])


def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_command(*args):
    redis = lc.Redis()
    try:
        return redis.command(*args)
    finally:
        redis.close()


def services(action, name):
    subprocess.run([SERVICES, action, name], check=True, capture_output=True)


def wait_until_drained():
    code, out, err = likesctl("verify", "--wait", "90")
    check_equal(0, code, "verify --wait 90 before the test (%s%s)" % (out[-1000:], err[-1000:]))


def summary(checked, differing):
    return "verify: %d post%s checked, %d differ%s\n" % (
        checked, "" if checked == 1 else "s", differing, "s" if differing == 1 else "")


# --- verify ----------------------------------------------------------------


@test
def verify_on_an_agreeing_stack_exits_0_with_the_exact_summary():
    wait_until_drained()
    code, out, err = likesctl("verify")
    check_equal(0, code, "exit status (%s)" % err)
    check_equal(summary(post_count(), 0), out, "output")


@test
def verify_names_a_post_whose_redis_count_was_overwritten_with_both_values():
    post = new_post()
    for token in tokens_for(3).values():
        act(api, token, post, True)
    expect_counts({post: 3})

    redis_command("SET", "likes:post:%d:count" % post, "999")
    try:
        code, out, err = likesctl("verify")
    finally:
        redis_command("SET", "likes:post:%d:count" % post, "3")
    check_equal(1, code, "exit status (%s)" % err)
    check_equal("post %d: redis count 999 != postgres count 3\n"
                "post %d: redis count 999 != redis set size 3\n" % (post, post)
                + summary(post_count(), 1), out, "output")

    code, out, _ = likesctl("verify")
    check_equal((0, summary(post_count(), 0)), (code, out), "exit status and output once restored")


@test
def verify_names_a_postgres_counter_that_drifted_from_its_rows():
    post = new_post()
    for token in tokens_for(2).values():
        act(api, token, post, True)
    expect_counts({post: 2})

    lc.psql("update post_counters set like_count = 7 where post_id = %d" % post)
    try:
        code, out, err = likesctl("verify")
    finally:
        lc.psql("update post_counters set like_count = 2 where post_id = %d" % post)
    check_equal(1, code, "exit status (%s)" % err)
    check_equal("post %d: redis count 2 != postgres count 7\n"
                "post %d: postgres count 7 != postgres rows 2\n" % (post, post)
                + summary(post_count(), 1), out, "output")


@test
def verify_wait_retries_until_the_stores_agree_or_the_time_is_up():
    post = new_post()
    act(api, list(tokens_for(1).values())[0], post, True)
    expect_counts({post: 1})
    key = "likes:post:%d:count" % post

    # Still wrong when the time is up: 1, after about the time given.
    redis_command("SET", key, "5")
    started = time.time()
    code, out, _ = likesctl("verify", "--wait", "2")
    elapsed = time.time() - started
    check_equal(1, code, "exit status of a wait that runs out")
    check_equal(summary(post_count(), 1), out.splitlines(True)[-1], "summary")
    if not 1.9 <= elapsed < 10:
        raise AssertionError("verify --wait 2 took %.1f s" % elapsed)

    # Put right while it waits: 0, well before the time is up.
    result = {}

    def run():
        result["done"] = likesctl("verify", "--wait", "30")

    waiting = threading.Thread(target=run)
    waiting.start()
    time.sleep(1.5)
    redis_command("SET", key, "1")
    waiting.join()
    code, out, _ = result["done"]
    check_equal((0, summary(post_count(), 0)), (code, out), "exit status and output")


@test
def verify_exits_2_with_a_clear_message_when_a_store_is_unreachable():
    port = closed_port()
    code, out, err = likesctl("verify", env={"LIKES_REDIS_PORT": str(port)})
    check_equal((2, ""), (code, out), "exit status and output without Redis")
    check_equal("likesctl verify: cannot reach Redis at 127.0.0.1:%d: Connection refused\n" % port,
                err, "message without Redis")

    dsn = "host=127.0.0.1 port=%d dbname=likes user=likes connect_timeout=5" % port
    code, out, err = likesctl("verify", env={"LIKES_PG_DSN": dsn})
    check_equal((2, ""), (code, out), "exit status and output without PostgreSQL")
    if not err.startswith("likesctl verify: cannot reach PostgreSQL at 127.0.0.1:%d: " % port):
        raise AssertionError("message without PostgreSQL: %r" % err)

    code, _, err = likesctl("verify", "--wait", "soon")
    check_equal(2, code, "exit status of a bad --wait (%s)" % err)


# --- lag -------------------------------------------------------------------

LAG_ROW = re.compile(r"^\s+(\d+)\s+(\d+|-)\s+(\d+)\s+(\d+)$")
LAG_TOTAL = re.compile(r"^\s+total\s+(\d+)$")
LAG_HEADER = re.compile(r"^\s+partition\s+next\s+end\s+lag$")


def read_lag():
    """Runs likesctl lag; returns {group: ([(partition, next, end, lag)], total)}."""
    code, out, err = likesctl("lag")
    check_equal(0, code, "exit status of lag (%s)" % err)
    groups, current = {}, None
    for line in out.splitlines():
        header = re.match(r"^group (\S+) on topic (\S+) ", line)
        row, total = LAG_ROW.match(line), LAG_TOTAL.match(line)
        if header:
            current = header.group(1)
            groups[current] = ([], None)
        elif row:
            p, nxt, end, lag = row.groups()
            groups[current][0].append((int(p), None if nxt == "-" else int(nxt), int(end),
                                       int(lag)))
        elif total:
            groups[current] = (groups[current][0], int(total.group(1)))
        elif not LAG_HEADER.match(line):
            raise AssertionError("unexpected line in lag: %r" % line)
    return groups


def wait_for_lag(expect, timeout=60):
    """Reads lag until expect(groups) holds; returns the last reading."""
    deadline = time.time() + timeout
    while True:
        groups = read_lag()
        if expect(groups) or time.time() > deadline:
            return groups
        time.sleep(0.5)


@test
def lag_counts_every_unread_like_and_reaches_0_after_drain():
    post = new_post()
    tokens = list(tokens_for(40).values())

    services("stop", "aggregator")
    try:
        before = read_lag()["likes-aggregator"][1]
        for token in tokens:
            act(api, token, post, True)
        groups = read_lag()
    finally:
        services("start", "aggregator")

    check_equal(["likes-aggregator", "likes-persister"], list(groups), "groups")
    for group in groups:
        check_equal(list(range(PARTITIONS)), [row[0] for row in groups[group][0]],
                    "partitions of %s" % group)
    check_equal(before + 40, groups["likes-aggregator"][1],
                "aggregator lag with 40 likes unread (before: %d)" % before)

    expect_counts({post: 40})
    groups = wait_for_lag(lambda g: g["likes-aggregator"][1] == 0 and g["likes-persister"][1] == 0)
    check_equal((0, 0), (groups["likes-aggregator"][1], groups["likes-persister"][1]),
                "total lag after drain")
    for partition, nxt, end, lag in groups["likes-aggregator"][0]:
        check_equal((end if end > 0 else None, 0), (nxt, lag),
                    "aggregator next offset and lag of partition %d" % partition)
    for partition, nxt, end, lag in groups["likes-persister"][0]:
        check_equal(0, lag, "persister lag of partition %d" % partition)


@test
def lag_exits_2_with_a_clear_message_when_kafka_or_postgres_is_unreachable():
    port = closed_port()
    code, out, err = likesctl("lag", env={"LIKES_KAFKA_BROKERS": "127.0.0.1:%d" % port})
    check_equal((2, ""), (code, out), "exit status and output without Kafka")
    if not re.match(r"likesctl lag: cannot reach Kafka at 127\.0\.0\.1:%d: [^\n]+\n\Z" % port, err):
        raise AssertionError("message without Kafka: %r" % err)

    dsn = "host=127.0.0.1 port=%d dbname=likes user=likes connect_timeout=5" % port
    code, out, err = likesctl("lag", env={"LIKES_PG_DSN": dsn})
    check_equal((2, ""), (code, out), "exit status and output without PostgreSQL")
    if not err.startswith("likesctl lag: cannot reach PostgreSQL at 127.0.0.1:%d: " % port):
        raise AssertionError("message without PostgreSQL: %r" % err)


# --- replay ----------------------------------------------------------------

SUMMARY_FIELDS = ("events read", "undecodable", "pairs (post, user)", "rows inserted",
                  "rows deleted", "posts recounted", "counters corrected")


def replay_summary(out):
    """The numbers of replay's summary, by name."""
    numbers = {}
    for line in out.splitlines():
        match = re.match(r"^  ([a-z (),]+?)\s+(\d+)$", line)
        if match and match.group(1) in SUMMARY_FIELDS:
            numbers[match.group(1)] = int(match.group(2))
    check_equal(list(SUMMARY_FIELDS), list(numbers), "fields of the summary in %r" % out)
    return numbers


def offsets_to_read(out):
    match = re.search(r"^  (\d+) offsets to read in %d partitions$" % PARTITIONS, out, re.M)
    if match is None:
        raise AssertionError("no plan in %r" % out)
    return int(match.group(1))


@test
def replay_from_a_time_reads_only_the_events_since():
    post = new_post()
    tokens = list(tokens_for(30).values())
    for token in tokens[:10]:
        act(api, token, post, True)
    expect_counts({post: 10})

    time.sleep(1.1)
    since_ms = int(time.time() * 1000)
    time.sleep(0.1)
    for token in tokens[10:]:
        act(api, token, post, True)
    for token in tokens[:5]:
        act(api, token, post, False)
    expect_counts({post: 25})

    rfc3339 = datetime.fromtimestamp(since_ms / 1000, timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    for since in (str(since_ms), rfc3339):
        code, out, err = likesctl("replay", "--from", since, "--dry-run")
        check_equal(0, code, "exit status of replay --from %s (%s)" % (since, err))
        check_equal("replay: rebuilding PostgreSQL from topic likes, from %s up to its end now "
                    "(dry run: nothing is written)" % rfc3339, out.splitlines()[0], "plan")
        numbers = replay_summary(out)
        check_equal(25, offsets_to_read(out), "offsets to read since %s" % since)
        check_equal({"events read": 25, "undecodable": 0, "pairs (post, user)": 25,
                     "rows inserted": 0, "rows deleted": 0, "posts recounted": 1,
                     "counters corrected": 0}, numbers, "summary of replay --from %s" % since)

    code, _, err = likesctl("replay", "--from", "yesterday")
    check_equal(2, code, "exit status of a bad time (%s)" % err)


def wait_for_persister_to_leave(timeout=30):
    """Runs replay until it no longer finds the stopped persister in its
    group (a static member stays until its session times out)."""
    deadline = time.time() + timeout
    while True:
        code, out, err = likesctl("replay", "--from-beginning")
        if "the persister is running" not in err or time.time() > deadline:
            return code, out, err
        time.sleep(1)


@test
def replay_after_a_restored_older_backup_rebuilds_postgres_exactly_and_twice_changes_nothing():
    posts = [new_post() for _ in range(3)]
    truth = lc.Truth()
    drive(posts, tokens_for(150), 4, truth, seed=5)
    expect_counts(truth.counts(posts))
    code, before, err = likesctl("replay", "--dry-run")
    check_equal(0, code, "exit status of the dry run (%s)" % err)
    before = replay_summary(before)
    check_equal((0, 0, 0),
                (before["rows inserted"], before["rows deleted"], before["counters corrected"]),
                "changes of a dry run on agreeing stores")
    undecodable = before["undecodable"]

    # The backup: some likes missing, some undone likes still there, and
    # every counter of these posts wrong.
    liked = sorted(pair for pair, state in truth.state.items() if state)
    unliked = sorted(pair for pair, state in truth.state.items() if not state)
    missing, stale = liked[:17], unliked[:9]
    lc.psql("delete from post_likes where (user_id, post_id) in (%s)"
            % ",".join("(%d,%d)" % pair for pair in missing))
    lc.psql("insert into post_likes (post_id, user_id) values %s"
            % ",".join("(%d,%d)" % (post, user) for user, post in stale))
    lc.psql("update post_counters set like_count = like_count + 1000 where post_id in (%s)"
            % ",".join(map(str, posts)))

    code, out, _ = likesctl("verify")
    check_equal(1, code, "verify on the restored backup")

    code, out, err = likesctl("replay", "--from-beginning")
    check_equal((2, ""), (code, out), "replay beside a running persister")
    if "the persister is running (group likes-persister has 1 member)" not in err:
        raise AssertionError("no reason for the refusal: %r" % err)

    services("stop", "persister")
    try:
        code, out, err = wait_for_persister_to_leave()
        check_equal(0, code, "exit status of the replay (%s)" % err)
        first = replay_summary(out)
        check_equal(offsets_to_read(out), first["events read"], "events read")
        check_equal(undecodable, first["undecodable"], "undecodable, as the dry run found")
        check_equal((17, 9, 3), (first["rows inserted"], first["rows deleted"],
                                 first["counters corrected"]), "rows inserted, deleted, corrected")
        if not out.endswith("Redis is not touched: `likesctl verify` tells whether it needs "
                            "`likesctl rebuild-redis`.\n"):
            raise AssertionError("no word on Redis at the end of %r" % out)

        expected_likers = {post: set() for post in posts}
        for (user, post), state in truth.state.items():
            if state:
                expected_likers[post].add(user)
        check_equal(expected_likers, lc.pg_likers(posts), "likers in postgres")
        check_equal(truth.counts(posts), lc.pg_counts(posts), "counts in postgres")

        code, out, err = likesctl("replay", "--from-beginning")
        check_equal(0, code, "exit status of the second replay (%s)" % err)
        second = replay_summary(out)
        check_equal(dict(first, **{"rows inserted": 0, "rows deleted": 0,
                                   "counters corrected": 0}), second, "second replay")
    finally:
        services("start", "persister")

    code, out, _ = likesctl("verify")
    check_equal((0, summary(post_count(), 0)), (code, out), "verify after the replay")


# --- progress --------------------------------------------------------------


def run_with_terminal(*args):
    """Runs likesctl with stderr on a pseudo-terminal; returns (status,
    stdout, what the terminal got)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([LIKESCTL] + list(args), stdout=subprocess.PIPE,
                               stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other side closed
            break
        if not chunk:
            break
        shown += chunk
    out = process.stdout.read().decode()
    process.wait()
    os.close(controller)
    return process.returncode, out, shown.decode()


@test
def progress_is_one_line_redrawn_on_a_terminal_and_plain_lines_elsewhere():
    code, out, shown = run_with_terminal("replay", "--dry-run")
    check_equal(0, code, "exit status on a terminal")
    final = re.search(r"\rreplay: %d partitions done: (\d+) events read, (\d+) pairs applied"
                      r"\x1b\[K\r?\n$" % PARTITIONS, shown)
    if final is None:
        raise AssertionError("no final progress line redrawn in place in %r" % shown[-500:])
    numbers = replay_summary(out)
    check_equal((numbers["events read"], numbers["pairs (post, user)"]),
                (int(final.group(1)), int(final.group(2))), "numbers of the last progress line")

    code, _, err = likesctl("replay", "--dry-run")
    check_equal(0, code, "exit status without a terminal")
    if "\r" in err or "\x1b" in err:
        raise AssertionError("terminal controls in plain progress: %r" % err[-500:])
    check_equal("replay: %d partitions done: %d events read, %d pairs applied\n"
                % (PARTITIONS, numbers["events read"], numbers["pairs (post, user)"]),
                err.splitlines(True)[-1], "last progress line without a terminal")


if __name__ == "__main__":
    main()
