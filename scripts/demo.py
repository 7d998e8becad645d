#!/usr/bin/env python3
"""The demo that `make run` plays against the running stack: a few image
posts from real photos, then a burst of likes and unlikes from a few
thousand users through the HTTP API, then the counts in Redis and in
PostgreSQL set beside the answer the acknowledged requests imply.

    scripts/demo.py [--users N] [--actions-per-user N]
"""

import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
import likes_client as lc  # noqa: E402

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg"]


def make_posts(api):
    author = api.create_user("demo author")
    posts = []
    for photo in PHOTOS:
        reply = api.create_post(author["token"], os.path.join(ROOT, "test", "data", "images", photo),
                                "demo: " + photo.split(".")[0])
        if reply.status != 201:
            sys.exit("demo: uploading %s failed: %r" % (photo, reply))
        post = reply.json()
        posts.append(post)
        print("  post %-4d %-24s %dx%d  %s" % (post["id"], photo, post["width"], post["height"],
                                              post["image_url"]))
    return posts


def burst(post_ids, users, actions_per_user):
    first_user = 10_000_000 + random.randrange(10_000) * 10_000
    tokens = lc.mint_tokens(range(first_user, first_user + users),
                            os.path.join(ROOT, "build", "bin", "likesctl"))
    rng = random.Random()
    plans = [(user, token, [(rng.choice(post_ids), rng.random() < 0.75)
                            for _ in range(actions_per_user)])
             for user, token in tokens.items()]
    truth = lc.Truth()
    failed = []

    def run(conn, plan):
        user, token, actions = plan
        for post_id, liked in actions:
            reply = conn.like(token, post_id) if liked else conn.unlike(token, post_id)
            if reply.status == 202:
                truth.record(user, post_id, liked)
            else:
                failed.append(reply)

    started = time.time()
    lc.run_parallel(plans, run, threads=32)
    elapsed = time.time() - started
    sent = users * actions_per_user
    print("  %d requests from %d users in %.1f s (%.0f/s), %d refused"
          % (sent, users, elapsed, sent / elapsed, len(failed)))
    return truth


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--actions-per-user", type=int, default=4)
    args = parser.parse_args()

    api = lc.Api()
    print("Creating posts from real photos:")
    posts = make_posts(api)
    post_ids = [p["id"] for p in posts]

    print("Driving likes and unlikes:")
    truth = burst(post_ids, args.users, args.actions_per_user)
    expected = truth.counts(post_ids)

    print("Waiting for the pipeline to drain...")
    redis, pg = lc.wait_for_counts(expected, timeout=120)

    print()
    print("  %-6s %10s %10s %12s" % ("post", "expected", "redis", "postgres"))
    for post_id in post_ids:
        mark = "" if redis[post_id] == pg[post_id] == expected[post_id] else "   MISMATCH"
        print("  %-6d %10d %10d %12s%s" % (post_id, expected[post_id], redis[post_id],
                                           pg[post_id], mark))
    agree = redis == expected and pg == expected
    print()
    print("Redis and PostgreSQL %s the acknowledged requests."
          % ("agree exactly with" if agree else "DO NOT agree with"))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
