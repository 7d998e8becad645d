"""A small client for the likes stack, for tests and the demo.

Only the Python standard library: the HTTP API through http.client, Redis
through its wire protocol, PostgreSQL through psql. Settings come from the
same LIKES_* variables as the services.
"""

import http.client
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor


def env(name, default):
    value = os.environ.get(name)
    return value if value else default


HTTP_HOST = env("LIKES_HTTP_ADDR", "127.0.0.1")
HTTP_PORT = int(env("LIKES_HTTP_PORT", "8080"))
REDIS_HOST = env("LIKES_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(env("LIKES_REDIS_PORT", "16379"))
PG_DSN = env("LIKES_PG_DSN", "host=127.0.0.1 port=15432 dbname=likes user=likes")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.body[:200])


class Api:
    """One keep-alive connection to the ingest service; one per thread."""

    def __init__(self, host=HTTP_HOST, port=HTTP_PORT, timeout=30):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None, token=None):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                reply = self.conn.getresponse()
                data = reply.read()
                if reply.getheader("Connection", "").lower() == "close":
                    self.close()
                return Response(reply.status, dict(reply.getheaders()), data)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed meanwhile: one
                # retry on a fresh connection.
                self.close()
                if attempt == 2:
                    raise
            except (OSError, http.client.HTTPException):
                # Anything else leaves the connection unusable: the next
                # call starts afresh.
                self.close()
                raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def create_user(self, name="tester"):
        reply = self.request("POST", "/v1/users", {"display_name": name})
        assert reply.status == 201, reply
        return reply.json()

    def create_post(self, token, image_path, caption=""):
        body, content_type = multipart({"caption": caption}, "image", image_path)
        return self.request("POST", "/v1/posts", body, {"Content-Type": content_type}, token)

    def like(self, token, post_id):
        return self.request("PUT", "/v1/posts/%d/like" % post_id, token=token)

    def unlike(self, token, post_id):
        return self.request("DELETE", "/v1/posts/%d/like" % post_id, token=token)


def multipart(fields, file_field, file_path, file_bytes=None, file_type="application/octet-stream"):
    boundary = "likes-" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            ('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
             % (boundary, name, value)).encode())
    if file_bytes is None:
        with open(file_path, "rb") as f:
            file_bytes = f.read()
    filename = os.path.basename(file_path)
    parts.append(
        ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
         'Content-Type: %s\r\n\r\n' % (boundary, file_field, filename, file_type)).encode()
        + file_bytes + b"\r\n")
    parts.append(("--%s--\r\n" % boundary).encode())
    return b"".join(parts), "multipart/form-data; boundary=" + boundary


def mint_tokens(user_ids, likesctl="build/bin/likesctl"):
    """Bearer tokens for users that never signed up, as load tools make them."""
    tokens = []
    ids = list(user_ids)
    for start in range(0, len(ids), 2000):
        chunk = [str(i) for i in ids[start:start + 2000]]
        out = subprocess.run([likesctl, "token"] + chunk, check=True, capture_output=True,
                             text=True).stdout.split()
        tokens.extend(out)
    return dict(zip(ids, tokens))


class Redis:
    """Just enough of the Redis protocol to read counts."""

    def __init__(self, host=REDIS_HOST, port=REDIS_PORT):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.reader = self.sock.makefile("rb")

    def command(self, *args):
        out = b"*%d\r\n" % len(args)
        for arg in args:
            arg = str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(arg), arg)
        self.sock.sendall(out)
        return self._read()

    def _read(self):
        line = self.reader.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)[:-2]
            return data.decode()
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise RuntimeError("unexpected redis reply %r" % line)

    def close(self):
        self.sock.close()


def redis_counts(post_ids):
    redis = Redis()
    try:
        counts = {}
        for post_id in post_ids:
            value = redis.command("GET", "likes:post:%d:count" % post_id)
            counts[post_id] = int(value) if value is not None else 0
        return counts
    finally:
        redis.close()


def psql(sql):
    out = subprocess.run(["psql", PG_DSN, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def pg_counts(post_ids):
    if not post_ids:
        return {}
    ids = ",".join(str(i) for i in post_ids)
    rows = psql("select post_id, like_count from post_like_counts where post_id in (%s)" % ids)
    counts = {post_id: None for post_id in post_ids}
    for post_id, count in rows:
        counts[int(post_id)] = int(count)
    return counts


def pg_likers(post_ids):
    ids = ",".join(str(i) for i in post_ids)
    rows = psql("select post_id, user_id from post_likes where post_id in (%s)" % ids)
    likers = {post_id: set() for post_id in post_ids}
    for post_id, user_id in rows:
        likers[int(post_id)].add(int(user_id))
    return likers


def wait_for_counts(expected, timeout=90):
    """Waits until Redis and PostgreSQL both hold `expected` ({post: count}).
    Returns (redis, pg) as last read."""
    deadline = time.time() + timeout
    while True:
        redis = redis_counts(expected.keys())
        pg = pg_counts(list(expected.keys()))
        if (redis == expected and pg == expected) or time.time() > deadline:
            return redis, pg
        time.sleep(0.25)


class Truth:
    """The expected state from acknowledged requests: per (user, post) the
    last action Kafka acknowledged, in the order of the acknowledgements."""

    def __init__(self):
        self.lock = threading.Lock()
        self.state = {}

    def record(self, user_id, post_id, liked):
        with self.lock:
            self.state[(user_id, post_id)] = liked

    def counts(self, post_ids):
        counts = {post_id: 0 for post_id in post_ids}
        for (_, post_id), liked in self.state.items():
            if liked and post_id in counts:
                counts[post_id] += 1
        return counts


def run_parallel(work_items, worker, threads=16):
    """Runs worker(api, item) over the items on `threads` connections."""
    local = threading.local()

    def call(item):
        if not hasattr(local, "api"):
            local.api = Api()
        return worker(local.api, item)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(call, work_items))
