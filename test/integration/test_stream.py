"""Live counts through a real stack: GET /v1/stream opens with the current
counts, delivers each new count to every subscriber of its post and to no
one else, refuses bad queries, and forgets clients that leave."""

import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import check_equal, main, test  # noqa: E402
import likes_client as lc  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGE = os.path.join(ROOT, "test", "data", "images", "coffee.png")
LIKESCTL = os.path.join(ROOT, "build", "bin", "likesctl")

api = lc.Api()
author = api.create_user("stream tester")

# User ids of their own, far from those of the other tests.
next_user = [5_300_000]


def new_post():
    reply = api.create_post(author["token"], IMAGE, "live")
    check_equal(201, reply.status, "upload status (%s)" % reply.body[:200])
    return reply.json()["id"]


def like_by_new_users(post_id, count):
    """Likes `post_id` by `count` users who never liked it; returns their
    tokens. Every like must be acknowledged."""
    ids = list(range(next_user[0], next_user[0] + count))
    next_user[0] += count
    tokens = lc.mint_tokens(ids, LIKESCTL)
    for user_id in ids:
        check_equal(202, api.like(tokens[user_id], post_id).status, "like by user %d" % user_id)
    return [tokens[user_id] for user_id in ids]


def wait_for_redis_count(post_id, count, timeout=30):
    deadline = time.time() + timeout
    while lc.redis_counts([post_id])[post_id] != count:
        if time.time() > deadline:
            raise AssertionError("post %d never reached %d likes in redis" % (post_id, count))
        time.sleep(0.1)


def open_streams(expected, timeout=10):
    """The open streams GET /healthz reports, once they are `expected` or
    after `timeout` seconds: a client's leaving is noticed within a second
    or two."""
    deadline = time.time() + timeout
    while True:
        body = api.request("GET", "/healthz").json()
        check_equal(["status", "streams"], list(body), "members of the health answer")
        if body["streams"] == expected or time.time() > deadline:
            return body["streams"]
        time.sleep(0.2)


class Stream:
    """One GET /v1/stream on a socket of its own: the status and headers,
    then the body, decoded from its chunks, as server-sent events."""

    def __init__(self, query):
        self.sock = socket.create_connection((lc.HTTP_HOST, lc.HTTP_PORT), timeout=10)
        self.sock.sendall(("GET /v1/stream?%s HTTP/1.1\r\nHost: test\r\n"
                           "Accept: text/event-stream\r\n\r\n" % query).encode())
        self.raw = b""
        self.text = ""
        while b"\r\n\r\n" not in self.raw:
            self._receive(10)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            self.headers[name.strip().lower()] = value.strip()

    def _receive(self, timeout):
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("the server closed the stream")
        self.raw += data

    def _unchunk(self):
        while True:
            size_end = self.raw.find(b"\r\n")
            if size_end < 0:
                return
            size = int(self.raw[:size_end], 16)
            if len(self.raw) < size_end + 2 + size + 2:
                return
            self.text += self.raw[size_end + 2:size_end + 2 + size].decode()
            self.raw = self.raw[size_end + 2 + size + 2:]

    def body(self):
        """Reads an error answer to its end (it has a Content-Length)."""
        length = int(self.headers["content-length"])
        while len(self.raw) < length:
            self._receive(10)
        return json.loads(self.raw[:length])

    def next_block(self, timeout):
        """The next event or comment block, as its list of lines, or None
        when nothing comes within `timeout` seconds."""
        deadline = time.time() + timeout
        self._unchunk()
        while "\n\n" not in self.text:
            left = deadline - time.time()
            if left <= 0:
                return None
            try:
                self._receive(left)
            except socket.timeout:
                return None
            self._unchunk()
        block, self.text = self.text.split("\n\n", 1)
        return block.split("\n")

    def next_count(self, timeout=10):
        """The next count event as {"post_id":…, "like_count":…}, skipping
        comments; None when none comes within `timeout` seconds."""
        deadline = time.time() + timeout
        while True:
            block = self.next_block(max(0, deadline - time.time()))
            if block is None:
                return None
            if block[0] == "event: count":
                check_equal(2, len(block), "lines of a count event")
                if not block[1].startswith("data: "):
                    raise AssertionError("event without data: %r" % block)
                return json.loads(block[1][len("data: "):])

    def counts_until(self, post_id, count, timeout=15):
        """Every count event up to the first one of `post_id` at `count`."""
        seen = []
        deadline = time.time() + timeout
        while not seen or seen[-1] != {"post_id": post_id, "like_count": count}:
            event = self.next_count(max(0, deadline - time.time()))
            if event is None:
                raise AssertionError("no event with count %d for post %d; saw %r"
                                     % (count, post_id, seen))
            seen.append(event)
        return seen

    def close(self):
        self.sock.close()


@test
def a_stream_opens_with_the_current_count_of_each_post():
    liked, unliked = new_post(), new_post()
    like_by_new_users(liked, 3)
    wait_for_redis_count(liked, 3)

    stream = Stream("posts=%d,%d" % (liked, unliked))
    try:
        check_equal(200, stream.status, "status")
        check_equal("text/event-stream", stream.headers.get("content-type"), "content type")
        check_equal("no-cache", stream.headers.get("cache-control"), "cache control")
        check_equal("no", stream.headers.get("x-accel-buffering"), "proxy buffering")
        check_equal(["retry: 2000"], stream.next_block(5), "first block")
        check_equal({"post_id": liked, "like_count": 3}, stream.next_count(5), "first count")
        check_equal({"post_id": unliked, "like_count": 0}, stream.next_count(5), "second count")
    finally:
        stream.close()


@test
def each_new_count_reaches_every_subscriber_of_its_post_and_no_one_else():
    post, other = new_post(), new_post()
    first, second, elsewhere = (Stream("posts=%d" % post), Stream("posts=%d" % post),
                                Stream("posts=%d" % other))
    try:
        for stream, post_id in ((first, post), (second, post), (elsewhere, other)):
            check_equal({"post_id": post_id, "like_count": 0}, stream.next_count(5),
                        "count on connect")

        tokens = like_by_new_users(post, 5)
        for name, stream in (("first", first), ("second", second)):
            seen = stream.counts_until(post, 5)
            counts = [event["like_count"] for event in seen]
            check_equal(sorted(set(counts)), counts, "%s subscriber: rising counts" % name)
            if counts[0] < 1 or counts[-1] != 5:
                raise AssertionError("%s subscriber saw counts %r" % (name, counts))

        for token in tokens[:2]:
            check_equal(202, api.unlike(token, post).status, "unlike")
        for name, stream in (("first", first), ("second", second)):
            check_equal({"post_id": post, "like_count": 3}, stream.counts_until(post, 3)[-1],
                        "%s subscriber after two unlikes" % name)

        check_equal(None, elsewhere.next_count(1.5), "event for the subscriber of another post")
    finally:
        for stream in (first, second, elsewhere):
            stream.close()


@test
def bad_queries_answer_400_and_unknown_posts_404():
    post = new_post()
    too_many = ",".join(str(post + i) for i in range(101))
    for query in ["", "posts=", "posts=0", "posts=-1", "posts=abc", "posts=%d,%d" % (post, post),
                  "posts=%d," % post, "posts=,%d" % post, "posts=%d&posts=%d" % (post, post),
                  "posts=9223372036854775808", "posts=" + too_many]:
        stream = Stream(query)
        try:
            check_equal(400, stream.status, "status of ?%s" % query[:40])
            check_equal("invalid_field", stream.body()["error"], "error of ?%s" % query[:40])
        finally:
            stream.close()

    missing = 9_000_000_000
    stream = Stream("posts=%d,%d" % (post, missing))
    try:
        check_equal(404, stream.status, "status for a missing post")
        check_equal({"error": "not_found", "message": "no post with id %d" % missing},
                    stream.body(), "body for a missing post")
    finally:
        stream.close()


@test
def streams_of_clients_that_left_are_freed():
    post = new_post()
    check_equal(0, open_streams(0), "streams open once the earlier tests closed theirs")
    streams = [Stream("posts=%d" % post) for _ in range(200)]
    for stream in streams:
        check_equal({"post_id": post, "like_count": 0}, stream.next_count(5), "count on connect")
    check_equal(200, open_streams(200, timeout=0), "streams open")

    for stream in streams:
        stream.close()
    check_equal(0, open_streams(0), "streams open after their clients left")

    # The service goes on: a new stream still gets its counts.
    like_by_new_users(post, 1)
    stream = Stream("posts=%d" % post)
    try:
        check_equal(1, stream.counts_until(post, 1)[-1]["like_count"], "count of a new stream")
    finally:
        stream.close()


@test
def an_idle_stream_gets_a_comment_every_15_seconds():
    post = new_post()
    stream = Stream("posts=%d" % post)
    try:
        check_equal({"post_id": post, "like_count": 0}, stream.next_count(5), "count on connect")
        started = time.time()
        check_equal([": keep-alive"], stream.next_block(20), "block after a quiet while")
        waited = time.time() - started
        if not 13 < waited < 18:
            raise AssertionError("the comment came after %.1f s, not about 15" % waited)
    finally:
        stream.close()


def redis_pipeline(*commands):
    """Sends the commands in one write, so that Redis runs them back to
    back, and returns their replies."""
    redis = lc.Redis()
    try:
        out = b""
        for command in commands:
            out += b"*%d\r\n" % len(command)
            for arg in command:
                arg = str(arg).encode()
                out += b"$%d\r\n%s\r\n" % (len(arg), arg)
        redis.sock.sendall(out)
        return [redis._read() for _ in commands]
    finally:
        redis.close()


@test
def counts_are_read_again_when_the_subscription_comes_back():
    post = new_post()
    stream = Stream("posts=%d" % post)
    try:
        check_equal({"post_id": post, "like_count": 0}, stream.next_count(5), "count on connect")

        # Only the subscription of ingest drops. The count written right
        # after is never published: it can only come from the read that
        # follows the new subscription.
        replies = redis_pipeline(["CLIENT", "KILL", "TYPE", "pubsub"],
                                 ["SET", "likes:post:%d:count" % post, 42])
        check_equal([1, "OK"], replies, "subscriptions killed, count set")
        check_equal({"post_id": post, "like_count": 42}, stream.next_count(10),
                    "count read after subscribing again")

        # The new subscription carries the next window's count: the one
        # liker makes the aggregator write the true count back.
        like_by_new_users(post, 1)
        check_equal({"post_id": post, "like_count": 1}, stream.next_count(10),
                    "count published after subscribing again")
    finally:
        stream.close()


@test
def stopping_ingest_ends_open_streams_cleanly():
    post = new_post()
    stream = Stream("posts=%d" % post)
    services = os.path.join(ROOT, "scripts", "services.sh")
    try:
        check_equal({"post_id": post, "like_count": 0}, stream.next_count(5), "count on connect")
        subprocess.run([services, "stop", "ingest"], check=True, capture_output=True)
        deadline = time.time() + 5
        while not stream.raw.endswith(b"0\r\n\r\n") and time.time() < deadline:
            try:
                stream._receive(max(0.1, deadline - time.time()))
            except (AssertionError, socket.timeout):
                break
        check_equal(b"0\r\n\r\n", stream.raw[-5:], "the last chunk of the stream")
    finally:
        stream.close()
        subprocess.run([services, "start", "ingest"], check=True, capture_output=True)
    check_equal(0, open_streams(0), "streams open after the restart")


if __name__ == "__main__":
    main()
