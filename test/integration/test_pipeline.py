"""The like pipeline end to end, through the HTTP API, against the real
Kafka, Redis and PostgreSQL: after the pipeline drains, every post's count in
Redis and in PostgreSQL equals the number of users whose last acknowledged
action on it was a like."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import check_equal, main, test  # noqa: E402
import likes_client as lc  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
PHOTOS = os.path.join(ROOT, "test", "data", "images")
RUN_DIR = os.environ.get("LIKES_RUN_DIR", os.path.join(ROOT, "run"))

api = lc.Api()
author = api.create_user("author")


def new_post(photo="coffee.png"):
    reply = api.create_post(author["token"], os.path.join(PHOTOS, photo), "pipeline test")
    check_equal(201, reply.status, "status of POST /v1/posts (%s)" % reply.body[:200])
    return reply.json()["id"]


def tokens_for(count):
    """Tokens for `count` user ids no other test uses."""
    first = tokens_for.next_id
    tokens_for.next_id += count
    return lc.mint_tokens(range(first, first + count))


tokens_for.next_id = 1_000_000 + random.randrange(1_000_000) * 1000


def expect_counts(expected, timeout=90):
    redis, pg = lc.wait_for_counts(expected, timeout)
    check_equal(expected, redis, "counts in redis")
    check_equal(expected, pg, "counts in postgres")


def act(api_conn, token, post_id, liked):
    reply = api_conn.like(token, post_id) if liked else api_conn.unlike(token, post_id)
    check_equal(202, reply.status, "status of a %s (%s)" % ("like" if liked else "unlike",
                                                             reply.body[:200]))
    return reply


@test
def likes_from_distinct_users_all_count():
    post = new_post()
    for token in tokens_for(3).values():
        act(api, token, post, True)
    expect_counts({post: 3})


@test
def repeated_likes_of_one_user_count_once():
    post = new_post()
    token = list(tokens_for(1).values())[0]
    for _ in range(5):
        act(api, token, post, True)
    expect_counts({post: 1})


@test
def like_unlike_like_in_quick_succession_is_one_like():
    post = new_post()
    liked_last, unliked_last = tokens_for(2).values()
    for liked in (True, False, True):
        act(api, liked_last, post, liked)
    for liked in (True, False, True, False):
        act(api, unliked_last, post, liked)
    expect_counts({post: 1})


@test
def unlike_without_a_like_never_goes_below_zero():
    post = new_post()
    tokens = list(tokens_for(3).values())
    for token in tokens:
        act(api, token, post, False)
    act(api, tokens[0], post, True)
    act(api, tokens[0], post, False)
    act(api, tokens[0], post, False)
    expect_counts({post: 0})
    act(api, tokens[1], post, True)
    expect_counts({post: 1})


@test
def concurrent_identical_requests_count_once():
    post = new_post()
    token = list(tokens_for(1).values())[0]
    replies = lc.run_parallel(range(24), lambda conn, _: conn.like(token, post), threads=12)
    check_equal([202] * 24, [r.status for r in replies], "statuses of concurrent likes")
    expect_counts({post: 1})


@test
def a_like_of_an_unknown_post_is_refused_and_counts_nowhere():
    token = list(tokens_for(1).values())[0]
    reply = api.like(token, 9_000_000_000)
    check_equal(404, reply.status, "status of a like of an unknown post")
    check_equal("not_found", reply.json()["error"], "error code")
    check_equal({9_000_000_000: 0}, lc.redis_counts([9_000_000_000]), "count in redis")


def drive(posts, tokens, actions_per_user, truth, seed):
    """Each user acts on random posts in turn; one user's actions go out one
    after the other, so the last acknowledged one is the truth."""
    rng = random.Random(seed)
    plans = [(token_user, [(rng.choice(posts), rng.random() < 0.7)
                           for _ in range(actions_per_user)])
             for token_user in tokens.items()]

    def run(conn, plan):
        (user_id, token), actions = plan
        for post_id, liked in actions:
            act(conn, token, post_id, liked)
            truth.record(user_id, post_id, liked)

    lc.run_parallel(plans, run, threads=16)


@test
def the_largest_user_id_counts_like_any_other():
    post = new_post()
    largest = 2**63 - 1
    tokens = lc.mint_tokens([largest, largest - 1])
    for token in tokens.values():
        act(api, token, post, True)
    expect_counts({post: 2})
    check_equal({post: {largest, largest - 1}}, lc.pg_likers([post]), "likers in postgres")


@test
def a_burst_from_many_users_ends_in_exact_counts_and_likers():
    posts = [new_post(p) for p in ("horse.png", "rocket.jpg", "chelsea.png")]
    truth = lc.Truth()
    drive(posts, tokens_for(400), 5, truth, seed=7)
    expected = truth.counts(posts)
    expect_counts(expected)

    expected_likers = {p: set() for p in posts}
    for (user_id, post_id), liked in truth.state.items():
        if liked:
            expected_likers[post_id].add(user_id)
    check_equal(expected_likers, lc.pg_likers(posts), "likers in postgres")


def service_pid(name):
    with open(os.path.join(RUN_DIR, name + ".pid")) as f:
        return int(f.read().strip())


def restart_service(name, sig):
    os.kill(service_pid(name), sig)
    deadline = time.time() + 20
    while time.time() < deadline:
        status = subprocess.run([os.path.join(ROOT, "scripts", "services.sh"), "status", name],
                                capture_output=True)
        if status.returncode != 0:
            break
        time.sleep(0.1)
    subprocess.run([os.path.join(ROOT, "scripts", "services.sh"), "start", name], check=True,
                   capture_output=True)


@test
def consumers_restarted_mid_stream_lose_and_repeat_nothing():
    posts = [new_post(p) for p in ("astronaut.png", "camera.png")]
    truth = lc.Truth()
    tokens = tokens_for(300)
    failures = []

    def traffic_run():
        try:
            drive(posts, tokens, 8, truth, 11)
        except Exception as error:
            failures.append(error)

    traffic = threading.Thread(target=traffic_run)
    traffic.start()

    for name, sig in (("aggregator", signal.SIGKILL), ("persister", signal.SIGKILL),
                      ("aggregator", signal.SIGTERM), ("persister", signal.SIGTERM)):
        time.sleep(0.7)
        restart_service(name, sig)

    traffic.join()
    if failures:
        raise failures[0]
    expect_counts(truth.counts(posts), timeout=120)


@test
def a_backlog_larger_than_one_script_call_drains_exactly():
    # With the aggregator stopped, 2,100 pairs pile up: the restarted one
    # takes them in one window, over more than one Redis script call.
    posts = [new_post("coffee.png"), new_post("rocket.jpg")]
    subprocess.run([os.path.join(ROOT, "scripts", "services.sh"), "stop", "aggregator"],
                   check=True, capture_output=True)
    truth = lc.Truth()
    drive(posts, tokens_for(2100), 1, truth, 23)
    subprocess.run([os.path.join(ROOT, "scripts", "services.sh"), "start", "aggregator"],
                   check=True, capture_output=True)
    expect_counts(truth.counts(posts), timeout=120)


def like_until_acknowledged(conn, token, post_id):
    """Retries through the restart: until Kafka acknowledges, the outcome
    is unknown, and liking again is how a client learns it."""
    for _ in range(200):
        try:
            if conn.like(token, post_id).status == 202:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("a like stayed unacknowledged")


@test
def ingest_starts_afresh_after_a_fatal_producer_error():
    # A second ingest on a port of its own, whose producer is made to fail
    # fatally after every 4 likes.
    port = int(os.environ.get("LIKES_HTTP_PORT", "8080")) + 57
    env = dict(os.environ, LIKES_HTTP_PORT=str(port), LIKES_INJECT_PRODUCER_FATAL_AFTER="4")
    log_path = os.path.join(RUN_DIR, "logs", "ingest-afresh.log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen([os.path.join(os.environ["LIKES_BIN_DIR"], "likes-ingest")],
                                   env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        post = new_post()
        conn = lc.Api(port=port, timeout=20)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if conn.request("GET", "/healthz").status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        tokens = tokens_for(10)
        for token in tokens.values():
            like_until_acknowledged(conn, token, post)
        expect_counts({post: 10})

        with open(log_path) as log:
            afresh = sum("starting afresh" in line for line in log)
        if afresh < 2:
            raise AssertionError("expected at least 2 fresh starts, saw %d" % afresh)
        check_equal(None, process.poll(), "exit status while serving (same process)")
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=60)
    check_equal(0, status, "exit status after SIGTERM")


if __name__ == "__main__":
    main()
