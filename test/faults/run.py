#!/usr/bin/env python3
"""The fault suite: steady like and unlike traffic from many users through
the HTTP API while parts of the pipeline are killed, restarted, rebalanced
and starved, then, after each kind of fault, a check that every post's count
in Redis and in PostgreSQL equals the truth computed from the acknowledged
requests.

    test/faults/run.py              every fault, three times each
    test/faults/run.py --quick      every fault once, for make test
    test/faults/run.py --only kafka the faults whose name has "kafka"

It runs its own stack (ports apart, data under run/faults) and stops it at
the end. One line per fault: "ok - faults: ..." or "not ok - faults: ...".
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUN_DIR = os.path.join(ROOT, "run", "faults")

os.environ.update({
    "LIKES_RUN_DIR": RUN_DIR,
    "LIKES_HTTP_PORT": os.environ.get("LIKES_FAULTS_HTTP_PORT", "18380"),
    "LIKES_KAFKA_PORT": os.environ.get("LIKES_FAULTS_KAFKA_PORT", "29392"),
    "LIKES_KAFKA_CONTROLLER_PORT": os.environ.get("LIKES_FAULTS_KAFKA_CONTROLLER_PORT", "29393"),
    "LIKES_REDIS_PORT": os.environ.get("LIKES_FAULTS_REDIS_PORT", "26679"),
    "LIKES_PG_PORT": os.environ.get("LIKES_FAULTS_PG_PORT", "25732"),
    "LIKES_WINDOW_MS": "100",
})
os.environ.pop("LIKES_KAFKA_BROKERS", None)
os.environ.pop("LIKES_PG_DSN", None)
os.environ.pop("LIKES_MEDIA_DIR", None)


def load_stack_env():
    """The rest of the settings, exactly as the stack scripts derive them."""
    out = subprocess.run(["bash", "-c", ". scripts/env.sh && env -0"], cwd=ROOT, check=True,
                         capture_output=True).stdout
    for entry in out.split(b"\0"):
        name, _, value = entry.decode().partition("=")
        if name.startswith("LIKES_"):
            os.environ[name] = value


load_stack_env()
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
import likes_client as lc  # noqa: E402

BIN_DIR = os.environ.get("LIKES_FAULTS_BIN_DIR", os.path.join(ROOT, "build", "bin"))
LOGS = os.path.join(RUN_DIR, "logs")


def say(message):
    print("# %s %s" % (time.strftime("%H:%M:%S"), message), flush=True)


def stack(*args):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh")] + list(args), cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Service:
    """One process of the pipeline, started and signalled by the suite."""

    def __init__(self, kind, instance=1):
        self.kind, self.instance = kind, instance
        self.name = "%s-%d" % (kind, instance)
        self.process = None

    def start(self):
        env = dict(os.environ)
        env["LIKES_INSTANCE_ID"] = "faults-%d" % self.instance
        log = open(os.path.join(LOGS, self.name + ".log"), "ab")
        self.process = subprocess.Popen([os.path.join(BIN_DIR, "likes-" + self.kind)],
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        env=env, cwd=ROOT, start_new_session=True)
        log.close()
        if self.kind == "ingest":
            wait_until(lambda: healthy(), 30, "ingest to answer")

    def signal(self, sig):
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)

    def running(self):
        return self.process is not None and self.process.poll() is None


def healthy():
    try:
        return lc.Api(timeout=2).request("GET", "/healthz").status == 200
    except OSError:
        return False


def wait_until(condition, timeout, what):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise RuntimeError("gave up waiting for " + what)
        time.sleep(0.2)


class Traffic:
    """Threads that each own a set of users and act for them one request at
    a time, retrying an action until it is acknowledged: the truth is then
    each user's last action on each post."""

    def __init__(self, posts, users, threads, rate):
        self.posts = posts
        self.truth = lc.Truth()
        self.tokens = lc.mint_tokens(users, os.path.join(ROOT, "build", "bin", "likesctl"))
        self.threads = threads
        self.pause_between = threads / float(rate)
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.busy = 0  # workers in the middle of an action
        self.sent = self.acked = self.refused = 0
        self.unavailable = []  # (seconds to answer, Retry-After) of each 503
        self.workers = []

    def start(self):
        user_ids = list(self.tokens)
        for index in range(self.threads):
            mine = user_ids[index::self.threads]
            worker = threading.Thread(target=self.run, args=(mine, index), daemon=True)
            worker.start()
            self.workers.append(worker)
        self.running.set()

    def pause(self):
        """Returns once no action is in flight: an action still being
        retried has an outcome the truth cannot know yet."""
        self.running.clear()
        with self.idle:
            self.idle.wait_for(lambda: self.busy == 0, timeout=240)

    def resume(self):
        self.running.set()

    def stop(self):
        self.stopping.set()
        self.running.set()
        for worker in self.workers:
            worker.join(timeout=120)

    def run(self, users, seed):
        rng = random.Random(seed)
        api = lc.Api(timeout=30)
        while not self.stopping.is_set():
            self.running.wait()
            with self.lock:
                if not self.running.is_set() or self.stopping.is_set():
                    continue
                self.busy += 1
            try:
                user = rng.choice(users)
                post = rng.choice(self.posts)
                liked = rng.random() < 0.7
                if self.act_until_acknowledged(api, user, post, liked):
                    self.truth.record(user, post, liked)
            finally:
                with self.idle:
                    self.busy -= 1
                    self.idle.notify_all()
            time.sleep(self.pause_between * rng.uniform(0.5, 1.5))

    def act_until_acknowledged(self, api, user, post, liked):
        """Retries through restarts and outages: a request that got no 202
        may or may not have reached Kafka, and repeating the same action is
        the one way to know the state it leaves."""
        token = self.tokens[user]
        delay = 0.1
        deadline = time.time() + 180
        while time.time() < deadline:
            started = time.time()
            try:
                with self.lock:
                    self.sent += 1
                reply = api.like(token, post) if liked else api.unlike(token, post)
            except OSError:
                api.close()
                reply = None
            if reply is not None and reply.status == 202:
                with self.lock:
                    self.acked += 1
                return True
            with self.lock:
                self.refused += 1
                if reply is not None and reply.status == 503:
                    self.unavailable.append((time.time() - started,
                                             reply.headers.get("Retry-After")))
            if reply is not None and reply.status not in (503,):
                raise RuntimeError("unexpected answer %r" % reply)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise RuntimeError("an action stayed unacknowledged for 180 s")


class Suite:
    def __init__(self, rounds):
        self.rounds = rounds
        self.ingest = Service("ingest")
        self.aggregators = [Service("aggregator", 1), Service("aggregator", 2)]
        self.persisters = [Service("persister", 1), Service("persister", 2)]
        self.failed = 0

    # --- set-up ---

    def start_stack(self):
        say("starting a stack of its own under %s" % RUN_DIR)
        subprocess.run([os.path.join(ROOT, "scripts", "services.sh"), "stop"], cwd=ROOT,
                       capture_output=True)
        stack("reset")
        os.makedirs(LOGS, exist_ok=True)
        stack("start")
        self.ingest.start()
        self.aggregators[0].start()
        self.persisters[0].start()

    def make_posts(self, count):
        api = lc.Api()
        author = api.create_user("faults")
        photo = os.path.join(ROOT, "test", "data", "images", "coffee.png")
        return [api.create_post(author["token"], photo).json()["id"] for _ in range(count)]

    def stop_all(self):
        """Stops every service with SIGTERM, as an operator would: each must
        finish what it holds and exit 0."""
        statuses = {}
        for service in [self.ingest] + self.aggregators + self.persisters:
            if service.running():
                statuses[service.name] = service.signal(signal.SIGTERM)
        stack("stop")
        unclean = {name: status for name, status in statuses.items() if status != 0}
        if unclean:
            self.failed += 1
            print("not ok - faults: SIGTERM at the end: exit statuses %r" % unclean, flush=True)
        else:
            print("ok - faults: SIGTERM at the end: %s exited 0" % ", ".join(sorted(statuses)),
                  flush=True)

    # --- checking ---

    def check(self, traffic, label, detail):
        traffic.pause()
        expected = traffic.truth.counts(traffic.posts)
        redis, pg = lc.wait_for_counts(expected, timeout=180)
        traffic.resume()
        if redis == expected and pg == expected:
            print("ok - faults: %s: %s; %d posts exact, %d likes in all"
                  % (label, detail, len(expected), sum(expected.values())), flush=True)
            return
        self.failed += 1
        wrong = {p: (expected[p], redis.get(p), pg.get(p)) for p in expected
                 if not expected[p] == redis.get(p) == pg.get(p)}
        print("not ok - faults: %s: %s; (expected, redis, postgres) differ: %r"
              % (label, detail, wrong), flush=True)

    def pause_a_while(self):
        time.sleep(random.uniform(1.0, 3.0))

    def expect_exit(self, service, sig, expected_status):
        status = service.signal(sig)
        if status != expected_status:
            raise RuntimeError("%s exited with %s after %s, not %s"
                               % (service.name, status, sig.name, expected_status))

    # --- the faults ---

    def kill_and_restart(self, service):
        for _ in range(self.rounds):
            self.pause_a_while()
            say("SIGKILL %s, then restart" % service.name)
            service.signal(signal.SIGKILL)
            service.start()
        return "SIGKILL and restart x%d" % self.rounds

    def rebalances(self):
        for _ in range(self.rounds):
            for group in (self.aggregators, self.persisters):
                self.pause_a_while()
                say("start %s: the group rebalances" % group[1].name)
                group[1].start()
                self.pause_a_while()
                say("SIGTERM %s: it leaves cleanly (exit 0)" % group[0].name)
                self.expect_exit(group[0], signal.SIGTERM, 0)
                self.pause_a_while()
                group[0].start()
                self.pause_a_while()
                say("SIGTERM %s" % group[1].name)
                self.expect_exit(group[1], signal.SIGTERM, 0)
        return "second members started and stopped x%d, every SIGTERM exited 0" % self.rounds

    def redis_restart(self):
        for _ in range(self.rounds):
            self.pause_a_while()
            say("stop redis, its data kept; start it again")
            stack("stop-redis")
            time.sleep(2)
            stack("start-redis")
        return "stopped and started x%d" % self.rounds

    def redis_data_lost(self):
        for _ in range(self.rounds):
            self.pause_a_while()
            say("stop redis and delete its data; start it; likesctl rebuild-redis")
            stack("stop-redis")
            redis_dir = os.path.join(RUN_DIR, "redis")
            for entry in os.listdir(redis_dir):
                if entry != "redis.conf":
                    path = os.path.join(redis_dir, entry)
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            stack("start-redis")
            time.sleep(1)
            subprocess.run([os.path.join(BIN_DIR, "likesctl"), "rebuild-redis"], cwd=ROOT,
                           check=True, capture_output=True)
        return "data deleted and rebuilt x%d" % self.rounds

    def postgres_restart(self):
        for _ in range(self.rounds):
            self.pause_a_while()
            say("stop postgres; start it again")
            stack("stop-pg")
            time.sleep(2)
            stack("start-pg")
        return "stopped and started x%d" % self.rounds

    def kafka_restart(self, traffic):
        before = len(traffic.unavailable)
        for _ in range(self.rounds):
            self.pause_a_while()
            say("stop kafka; start it again")
            stack("stop-kafka")
            time.sleep(3)
            stack("start-kafka")
        traffic.pause()  # the last requests of the outage are answered now
        traffic.resume()
        answers = traffic.unavailable[before:]
        slowest = max((seconds for seconds, _ in answers), default=0.0)
        without_retry_after = sum(1 for _, header in answers if header is None)
        if without_retry_after:
            raise RuntimeError("%d answers 503 came without Retry-After" % without_retry_after)
        # The promise is about ten seconds; three times that allows for a slow
        # machine without letting a wait with no end pass.
        if slowest > 30:
            raise RuntimeError("a 503 took %.1f s, far more than the 10 s promised" % slowest)
        return ("stopped and started x%d; %d requests answered 503 with Retry-After, "
                "the slowest in %.1f s" % (self.rounds, len(answers), slowest))

    def run(self, posts_count, users, threads, rate, only=None):
        self.start_stack()
        posts = self.make_posts(posts_count)
        traffic = Traffic(posts, range(5_000_001, 5_000_001 + users), threads, rate)
        traffic.start()
        faults = [
            ("ingest", lambda: self.kill_and_restart(self.ingest)),
            ("aggregator", lambda: self.kill_and_restart(self.aggregators[0])),
            ("persister", lambda: self.kill_and_restart(self.persisters[0])),
            ("rebalances of two aggregators and two persisters", self.rebalances),
            ("redis restarted with its data", self.redis_restart),
            ("redis restarted without its data", self.redis_data_lost),
            ("postgres restarted", self.postgres_restart),
            ("kafka restarted", lambda: self.kafka_restart(traffic)),
        ]
        if only:
            faults = [fault for fault in faults if only in fault[0]]
        try:
            for label, inject in faults:
                try:
                    detail = inject()
                except Exception as error:  # report and go on with the next fault
                    self.failed += 1
                    print("not ok - faults: %s: %s" % (label, error), flush=True)
                    continue
                self.check(traffic, label, detail)
        finally:
            traffic.stop()
            say("%d requests sent, %d acknowledged, %d retried"
                % (traffic.sent, traffic.acked, traffic.refused))
            self.stop_all()
        return self.failed


def main():
    parser = argparse.ArgumentParser(description="the fault suite")
    parser.add_argument("--quick", action="store_true", help="each fault once, less traffic")
    parser.add_argument("--only", metavar="WORD", help="only the faults whose name has WORD")
    args = parser.parse_args()

    rounds = 1 if args.quick else 3
    suite = Suite(rounds)
    failed = suite.run(posts_count=6, users=400 if args.quick else 2000,
                       threads=12 if args.quick else 24, rate=150 if args.quick else 300,
                       only=args.only)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
