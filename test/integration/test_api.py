"""The HTTP API through a real stack: what each endpoint answers, and that
bad input gets a JSON error with the right status, reaches no topic and
leaves the service up."""

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import check_equal, main, test  # noqa: E402
import likes_client as lc  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGES = os.path.join(ROOT, "test", "data", "images")

api = lc.Api()
author = api.create_user("api tester")


def topic_end_offsets(topic="likes"):
    """Sum of the end offsets of a topic's partitions, read with Kafka's own
    GetOffsetShell."""
    out = subprocess.run(
        [os.path.join(ROOT, "scripts", "kafka-tool.sh"), "org.apache.kafka.tools.GetOffsetShell",
         "--bootstrap-server", os.environ.get("LIKES_KAFKA_BROKERS", "127.0.0.1:19092"),
         "--topic", topic],
        check=True, capture_output=True, text=True).stdout
    return sum(int(line.rsplit(":", 1)[1]) for line in out.split())


def check_error(reply, status, code):
    check_equal(status, reply.status, "status (%s)" % reply.body[:200])
    check_equal("application/json", reply.headers.get("Content-Type"), "content type")
    body = reply.json()
    check_equal(code, body.get("error"), "error code")
    if not isinstance(body.get("message"), str) or not body["message"]:
        raise AssertionError("error without a message: %r" % body)


def upload(name, caption="", token=None):
    return api.create_post(token or author["token"], os.path.join(IMAGES, name), caption)


@test
def healthz_answers_ok():
    reply = api.request("GET", "/healthz")
    check_equal(200, reply.status, "status")
    check_equal("ok", reply.json()["status"], "status in the body")


@test
def a_new_user_gets_an_id_a_name_and_a_token_that_works():
    user = api.create_user("Ada")
    check_equal("Ada", user["display_name"], "display name")
    check_equal(str(user["id"]), user["token"].split(".")[0], "token names the user")
    post = upload("coffee.png")
    check_equal(201, post.status, "upload status")
    reply = api.like(user["token"], post.json()["id"])
    check_equal(202, reply.status, "like with the new token")
    check_equal(user["id"], reply.json()["user_id"], "user id of the like")


@test
def a_post_from_a_real_photo_has_every_field():
    reply = upload("chelsea.png", "a cat")
    check_equal(201, reply.status, "status (%s)" % reply.body[:200])
    post = reply.json()
    check_equal(["author_id", "caption", "created_at", "height", "id", "image_url", "like_count",
                 "thumb_url", "width"], sorted(post), "fields")
    check_equal((author["id"], "a cat", 0), (post["author_id"], post["caption"],
                                             post["like_count"]), "author, caption, count")
    check_equal((451, 300), (post["width"], post["height"]), "display size of a 451x300 photo")

    image = api.request("GET", post["image_url"])
    check_equal(200, image.status, "image status")
    check_equal("image/jpeg", image.headers.get("Content-Type"), "image type")
    check_equal(b"\xff\xd8\xff", image.body[:3], "JPEG signature")
    thumb = api.request("GET", post["thumb_url"])
    check_equal(200, thumb.status, "thumbnail status")

    again = api.request("GET", "/v1/posts/%d" % post["id"])
    check_equal(200, again.status, "GET status")
    check_equal(post, again.json(), "the post read back")


@test
def a_large_photo_is_scaled_to_the_display_size():
    reply = upload("retina.jpg")
    check_equal(201, reply.status, "status")
    check_equal((1080, 1080), (reply.json()["width"], reply.json()["height"]),
                "display size of a 1411x1411 photo")


@test
def awkward_images_are_accepted():
    for name in ("no_time_for_that_tiny.gif", "multipage.tif", "chessboard_GRAY_U16.tif",
                 "palette_color.png", "foo3x5x4indexed.png"):
        reply = upload(os.path.join("odd", name))
        check_equal(201, reply.status, "status of %s (%s)" % (name, reply.body[:200]))


@test
def files_that_are_not_images_are_refused_with_422():
    check_error(upload(os.path.join("odd", "truncated.jpg")), 422, "not_an_image")
    body, content_type = lc.multipart({}, "image", "notes.txt", b"just some text\n", "text/plain")
    reply = api.request("POST", "/v1/posts", body, {"Content-Type": content_type},
                        author["token"])
    check_error(reply, 422, "not_an_image")


@test
def an_image_claiming_too_many_pixels_is_refused_before_decoding():
    # A valid 10000 x 10000 one-bit PNG: 100 megapixels in about 12 KB.
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    side = 10000
    rows = (b"\x00" + b"\x00" * (side // 8)) * side
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    body, content_type = lc.multipart({}, "image", "huge.png", png, "image/png")
    reply = api.request("POST", "/v1/posts", body, {"Content-Type": content_type},
                        author["token"])
    check_error(reply, 422, "image_too_large")


@test
def bad_requests_get_json_errors_and_reach_no_topic():
    post_id = upload("horse.png").json()["id"]
    token = author["token"]
    before = topic_end_offsets()

    check_error(api.request("POST", "/v1/users", b"{not json", {"Content-Type":
                                                                 "application/json"}),
                400, "malformed_json")
    check_error(api.request("POST", "/v1/users", {"display_name": 5}), 400, "invalid_field")
    check_error(api.request("POST", "/v1/users", b'"\xff"', {"Content-Type":
                                                             "application/json"}),
                400, "malformed_json")
    check_error(api.request("GET", "/v1/nothing-here"), 404, "not_found")
    check_error(api.request("PATCH", "/v1/posts/%d/like" % post_id, token=token), 405,
                "method_not_allowed")
    check_error(api.request("PUT", "/v1/posts/%d/like" % post_id), 401, "unauthorized")
    check_error(api.request("PUT", "/v1/posts/%d/like" % post_id, token="1.forged"), 401,
                "unauthorized")
    forged = str(author["id"] + 1) + token[token.index("."):]
    check_error(api.request("PUT", "/v1/posts/%d/like" % post_id, token=forged), 401,
                "unauthorized")
    check_error(api.request("PUT", "/v1/posts/abc/like", token=token), 400, "invalid_field")
    check_error(api.request("PUT", "/v1/posts/0/like", token=token), 400, "invalid_field")
    check_error(api.request("DELETE", "/v1/posts/99999999/like", token=token), 404,
                "not_found")
    check_error(api.request("GET", "/media/../../etc/passwd"), 404, "not_found")
    check_error(api.request("POST", "/v1/posts", {"caption": "no file"}, token=token), 415,
                "unsupported_media_type")

    check_equal(before, topic_end_offsets(), "end offsets of the likes topic")
    check_equal(200, api.request("GET", "/healthz").status, "health after bad input")


def announce_body(path, content_type, length):
    """Sends only the headers of a request announcing `length` bytes of body
    and returns the status line and the JSON body of the answer."""
    sock = socket.create_connection((lc.HTTP_HOST, lc.HTTP_PORT), timeout=10)
    try:
        sock.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: %s\r\nContent-Length: %d\r\n\r\n"
                      % (path, author["token"], content_type, length)).encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    head, body = answer.decode("latin-1").split("\r\n\r\n", 1)
    return head.split("\r\n")[0], json.loads(body)


@test
def bodies_over_the_limit_are_refused_before_they_are_read():
    # The answer comes although not one byte of the body was sent.
    status, body = announce_body("/v1/posts", "multipart/form-data; boundary=b", 50 << 20)
    check_equal("HTTP/1.1 413", status[:12], "status line of a 50 MB upload")
    check_equal("payload_too_large", body["error"], "error code")
    status, body = announce_body("/v1/users", "application/json", (64 << 10) + 1)
    check_equal("HTTP/1.1 413", status[:12], "status line of a 64 KiB + 1 user")
    check_equal("payload_too_large", body["error"], "error code")


@test
def a_post_count_comes_from_redis_after_likes():
    post_id = upload("camera.png").json()["id"]
    tokens = lc.mint_tokens(range(7_000_001, 7_000_005))
    for token in tokens.values():
        check_equal(202, api.like(token, post_id).status, "like status")
    lc.wait_for_counts({post_id: 4}, timeout=30)
    check_equal(4, api.request("GET", "/v1/posts/%d" % post_id).json()["like_count"],
                "like_count of the post")


# The feed, liked_by_me, media caching and CORS

APP_ORIGIN = "http://app.example"  # LIKES_CORS_ORIGINS of the test stack (test/run.sh)
OTHER_ORIGIN = "http://other.example"


def feed(token=None, headers=None, **query):
    path = "/v1/posts"
    if query:
        path += "?" + urllib.parse.urlencode(query)
    return api.request("GET", path, headers=headers, token=token)


def feed_page(token=None, **query):
    reply = feed(token, **query)
    check_equal(200, reply.status, "feed status (%s)" % reply.body[:200])
    check_equal("application/json", reply.headers.get("Content-Type"), "feed content type")
    page = reply.json()
    check_equal(["next_cursor", "posts"], sorted(page), "fields of a page")
    return page


def get_post(post_id, token=None):
    reply = api.request("GET", "/v1/posts/%d" % post_id, token=token)
    check_equal(200, reply.status, "status of post %d (%s)" % (post_id, reply.body[:200]))
    return reply.json()


def cursor_of(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def pg_post_ids(at_most):
    return [int(row[0]) for row in
            lc.psql("select id from posts where id <= %d order by id desc" % at_most)]


def expect_counts(expected):
    check_equal((expected, expected), lc.wait_for_counts(expected, timeout=30),
                "counts in Redis and PostgreSQL")


@test
def the_feed_pages_newest_first_with_no_repeat_or_gap_while_posts_arrive():
    ours = [upload("horse.png", "feed %d" % i).json()["id"] for i in range(5)]
    top = ours[-1]

    seen, arrived, cursor = [], [], None
    while True:
        # Small pages while posts arrive between them, then large ones to
        # reach the end of everything the other tests posted.
        limit = 2 if len(arrived) < 4 else 100
        page = feed_page(limit=limit, **({"cursor": cursor} if cursor else {}))
        ids = [post["id"] for post in page["posts"]]
        if not seen:
            check_equal([ours[4], ours[3]], ids, "the first page: the two newest posts")
        elif len(seen) == 2:
            check_equal([ours[2], ours[1]], ids, "the second page, after a post arrived")
        seen.extend(ids)

        if page["next_cursor"] is None:
            break
        check_equal(limit, len(ids), "a page before the last is full")
        check_equal(True, all(c.isalnum() or c in "-_" for c in page["next_cursor"]),
                    "next_cursor %r is URL-safe" % page["next_cursor"])
        cursor = page["next_cursor"]
        arrived.append(upload("horse.png", "arrived").json()["id"])

    check_equal(pg_post_ids(top), seen, "every post up to the first page's, newest first, once")

    newest = feed_page(limit=len(arrived))
    check_equal(arrived[::-1], [post["id"] for post in newest["posts"]],
                "a new first page: the posts that arrived meanwhile")
    check_equal(True, newest["next_cursor"] is not None, "more after them")


@test
def a_feed_post_has_the_fields_of_a_post():
    created = upload("chelsea.png", "in the feed").json()
    page = feed_page(limit=1)
    check_equal([created], page["posts"], "the newest post, as POST /v1/posts answered it")


@test
def the_feed_limit_defaults_to_20_is_capped_at_100_and_must_be_a_positive_integer():
    # More posts than the largest page, without decoding 100 images.
    lc.psql("insert into posts (author_id, caption, image_name, thumb_name, width, height) "
            "select %d, 'filler', repeat('a', 64) || '.jpg', repeat('b', 64) || '.jpg', 8, 8 "
            "from generate_series(1, 105)" % author["id"])
    newest = pg_post_ids(2**62)

    check_equal(newest[:20], [post["id"] for post in feed_page()["posts"]], "default page")
    for limit, size in (("1", 1), ("007", 7), ("100", 100), ("101", 100), ("1000", 100),
                        ("99999999999999999999999", 100)):
        page = feed_page(limit=limit)
        check_equal(newest[:size], [post["id"] for post in page["posts"]], "page of limit=" + limit)
        check_equal(True, page["next_cursor"] is not None, "next_cursor of limit=" + limit)

    for limit in ("0", "-1", "", "abc", "1.5", " 5", "+5", "1e3", "5 ", "0x10", "00"):
        check_error(feed(limit=limit), 400, "invalid_field")
    check_error(api.request("GET", "/v1/posts?limit"), 400, "invalid_field")


@test
def a_cursor_that_is_not_one_the_feed_gave_is_refused():
    for cursor in ("", "!!!!", "djE6", "A" * 100, cursor_of("v1:0"), cursor_of("v1:-5"),
                   cursor_of("v1:abc"), cursor_of("v2:5"), cursor_of("v1:05"),
                   cursor_of("v1:5") + "==", cursor_of("v1:5 "), cursor_of("v1:5") + "A",
                   cursor_of("v1:99999999999999999999"), cursor_of("v1:9223372036854775808")):
        check_error(feed(cursor=cursor), 400, "invalid_field")

    # Well formed, below every post: an empty last page.
    check_equal({"posts": [], "next_cursor": None}, feed_page(cursor=cursor_of("v1:1")),
                "the page below post 1")


@test
def liked_by_me_shows_the_callers_counted_like_and_only_with_a_token():
    post_id = upload("coffee.png").json()["id"]
    tokens = lc.mint_tokens([7_100_001, 7_100_002])
    liker, other = tokens[7_100_001], tokens[7_100_002]
    check_equal(202, api.like(liker, post_id).status, "like status")
    expect_counts({post_id: 1})

    post = get_post(post_id, liker)
    check_equal((1, True), (post["like_count"], post["liked_by_me"]), "count and liked, liker")
    post = get_post(post_id, other)
    check_equal((1, False), (post["like_count"], post["liked_by_me"]), "count and liked, other")
    check_equal(False, "liked_by_me" in get_post(post_id), "liked_by_me without a token")

    posts = feed_page(liker, limit=5)["posts"]
    check_equal(post_id, posts[0]["id"], "the newest post")
    check_equal([True, False, False, False, False], [p["liked_by_me"] for p in posts],
                "liked_by_me of the liker's page")
    posts = feed_page(other, limit=5)["posts"]
    check_equal([False] * 5, [p["liked_by_me"] for p in posts], "liked_by_me of another's page")
    posts = feed_page(limit=5)["posts"]
    check_equal([False] * 5, ["liked_by_me" in p for p in posts], "liked_by_me without a token")
    check_equal(1, posts[0]["like_count"], "like_count in the feed")

    for path in ("/v1/posts/%d" % post_id, "/v1/posts"):
        check_error(api.request("GET", path, token="1.forged"), 401, "unauthorized")
        check_error(api.request("GET", path, headers={"Authorization": "Basic YTpi"}), 401,
                    "unauthorized")

    check_equal(202, api.unlike(liker, post_id).status, "unlike status")
    expect_counts({post_id: 0})
    post = get_post(post_id, liker)
    check_equal((0, False), (post["like_count"], post["liked_by_me"]), "after the unlike")


@test
def media_has_a_strong_etag_and_answers_if_none_match_with_304():
    post = upload("chelsea.png").json()
    name = post["image_url"].rsplit("/", 1)[1]
    etag = '"%s"' % name[:64]
    cache_control = "public, max-age=31536000, immutable"

    full = api.request("GET", post["image_url"])
    check_equal(200, full.status, "status")
    check_equal((etag, cache_control), (full.headers.get("ETag"),
                                        full.headers.get("Cache-Control")), "ETag, Cache-Control")
    thumb = api.request("GET", post["thumb_url"])
    check_equal('"%s"' % post["thumb_url"].rsplit("/", 1)[1][:64], thumb.headers.get("ETag"),
                "ETag of the thumbnail")

    head = api.request("HEAD", post["image_url"])
    check_equal((200, b""), (head.status, head.body), "HEAD status and body")
    check_equal((etag, cache_control, str(len(full.body)), "image/jpeg"),
                (head.headers.get("ETag"), head.headers.get("Cache-Control"),
                 head.headers.get("Content-Length"), head.headers.get("Content-Type")),
                "HEAD headers")

    for condition in (etag, "W/" + etag, "*", '"other", ' + etag, ' "a" ,W/"b",  %s ' % etag):
        for method in ("GET", "HEAD"):
            reply = api.request(method, post["image_url"], headers={"If-None-Match": condition})
            check_equal((304, b""), (reply.status, reply.body),
                        "%s with If-None-Match: %s" % (method, condition))
            check_equal((etag, cache_control), (reply.headers.get("ETag"),
                                                reply.headers.get("Cache-Control")),
                        "ETag, Cache-Control of the 304")

    for condition in ('"other"', etag[:-2] + '"', name[:64], etag + "x", 'W/"%s"' % name):
        reply = api.request("GET", post["image_url"], headers={"If-None-Match": condition})
        check_equal((200, full.body), (reply.status, reply.body),
                    "GET with If-None-Match: %s" % condition)

    missing = "/media/%s.jpg" % ("0" * 64)
    check_error(api.request("GET", missing, headers={"If-None-Match": "*"}), 404, "not_found")
    check_error(api.request("GET", "/media/..%2F..%2Fetc%2Fpasswd",
                            headers={"If-None-Match": "*"}), 404, "not_found")


def cors_headers(reply):
    return {k: v for k, v in reply.headers.items() if k.lower().startswith("access-control-")}


@test
def cors_headers_go_to_the_configured_origin_only():
    check_equal(APP_ORIGIN, os.environ.get("LIKES_CORS_ORIGINS"),
                "LIKES_CORS_ORIGINS of the stack under test")
    post = upload("coffee.png").json()
    allowed = {"Access-Control-Allow-Origin": APP_ORIGIN,
               "Access-Control-Expose-Headers": "ETag, Retry-After"}

    for path in ("/v1/posts/%d" % post["id"], "/v1/posts?limit=1", post["image_url"], "/healthz"):
        reply = api.request("GET", path, headers={"Origin": APP_ORIGIN})
        check_equal(200, reply.status, "status of %s" % path)
        check_equal(allowed, cors_headers(reply), "CORS headers of %s for the app" % path)
        check_equal("Origin", reply.headers.get("Vary"), "Vary of %s" % path)
        for headers in ({"Origin": OTHER_ORIGIN}, {}):
            reply = api.request("GET", path, headers=headers)
            check_equal({}, cors_headers(reply), "CORS headers of %s for %r" % (path, headers))
            check_equal("Origin", reply.headers.get("Vary"), "Vary of %s for %r" % (path, headers))

    # Errors too: the page can read why it failed.
    reply = api.request("PUT", "/v1/posts/%d/like" % post["id"], headers={"Origin": APP_ORIGIN})
    check_error(reply, 401, "unauthorized")
    check_equal(allowed, cors_headers(reply), "CORS headers of a 401")

    preflight = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "authorization"}
    reply = api.request("OPTIONS", "/v1/posts/%d/like" % post["id"], headers=preflight)
    check_equal((204, b""), (reply.status, reply.body), "preflight status and body")
    check_equal(dict(allowed, **{
        "Access-Control-Allow-Methods": "PUT, DELETE",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, If-None-Match",
        "Access-Control-Max-Age": "600"}), cors_headers(reply), "preflight headers")
    reply = api.request("OPTIONS", "/v1/posts",
                        headers=dict(preflight, **{"Access-Control-Request-Method": "POST"}))
    check_equal((204, "GET, HEAD, POST"),
                (reply.status, reply.headers.get("Access-Control-Allow-Methods")),
                "preflight of /v1/posts")

    # Not a preflight the service grants: a plain OPTIONS, another origin,
    # an unknown path.
    for headers in (dict(preflight, Origin=OTHER_ORIGIN), {"Origin": APP_ORIGIN}):
        reply = api.request("OPTIONS", "/v1/posts/%d/like" % post["id"], headers=headers)
        check_error(reply, 405, "method_not_allowed")
        check_equal("PUT, DELETE", reply.headers.get("Allow"), "Allow")
    check_equal({}, cors_headers(api.request("OPTIONS", "/v1/posts",
                                             headers=dict(preflight, Origin=OTHER_ORIGIN))),
                "CORS headers of another origin's preflight")
    check_error(api.request("OPTIONS", "/v1/nothing-here", headers=preflight), 404, "not_found")


@test
def likes_are_read_from_postgres_while_redis_is_down():
    post_id = upload("camera.png").json()["id"]
    tokens = lc.mint_tokens([7_200_001, 7_200_002])
    liker, other = tokens[7_200_001], tokens[7_200_002]
    check_equal(202, api.like(liker, post_id).status, "like status")
    expect_counts({post_id: 1})

    stack = os.path.join(ROOT, "scripts", "stack.sh")
    subprocess.run([stack, "stop-redis"], check=True, capture_output=True)
    try:
        post = get_post(post_id, liker)
        check_equal((1, True), (post["like_count"], post["liked_by_me"]), "the liker's view")
        post = get_post(post_id)
        check_equal((1, False), (post["like_count"], "liked_by_me" in post), "anonymous view")
        posts = feed_page(other, limit=2)["posts"]
        check_equal((post_id, 1, False),
                    (posts[0]["id"], posts[0]["like_count"], posts[0]["liked_by_me"]),
                    "another's feed")
        posts = feed_page(liker, limit=2)["posts"]
        check_equal([True, False], [p["liked_by_me"] for p in posts], "the liker's feed")
    finally:
        subprocess.run([stack, "start-redis"], check=True, capture_output=True)


# Uploads decoded off the HTTP thread, and the limits around them

def slow_png(extra_mib, side=16):
    """A valid side x side grey PNG whose zlib stream runs on for
    `extra_mib` MiB of zeros past its pixels: about 1 KB per MiB, which
    libpng inflates to the end (about 2 s per GiB here), then accepts with
    a warning. Each MiB is the same deflate block after a full flush, so
    this takes a fraction of a second to build."""
    rows = (b"\x00" + b"\x00" * side) * side
    zeros = b"\x00" * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = deflate.compress(rows) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush(zlib.Z_FINISH)
    adler = zlib.adler32(rows)
    for _ in range(extra_mib):
        adler = zlib.adler32(zeros, adler)
    stream = b"\x78\xda" + start + block * extra_mib + end + struct.pack(">I", adler)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", stream) + chunk(b"IEND", b""))


def read_answer(sock):
    """Reads one answer from `sock`: its status, headers (names in lower
    case) and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed without an answer (%r)" % data[:200])
        data += chunk
    head, data = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((name.strip().lower(), value.strip())
                   for name, value in (line.split(":", 1) for line in lines[1:]))
    length = int(headers.get("content-length", "0"))
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(lines[0].split()[1]), headers, data[:length]


def read_to_close(sock, wait=2):
    """What the server sends until it closes the connection, or None when it
    keeps it open for `wait` seconds."""
    sock.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data
    except socket.timeout:
        return None


def raw_exchange(request):
    """Sends `request` as it is on a new connection. Returns the status,
    headers and JSON body of the answer, and what came after it until the
    server closed the connection (None when it stayed open)."""
    sock = socket.create_connection((lc.HTTP_HOST, lc.HTTP_PORT), timeout=10)
    try:
        sock.sendall(request)
        status, headers, body = read_answer(sock)
        return status, headers, json.loads(body) if body else None, read_to_close(sock)
    finally:
        sock.close()


def send_upload(body, content_type):
    """Sends a whole upload on a new connection, leaving its answer unread."""
    sock = socket.create_connection((lc.HTTP_HOST, lc.HTTP_PORT), timeout=120)
    sock.sendall(("POST /v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  "Content-Type: %s\r\nContent-Length: %d\r\n\r\n"
                  % (author["token"], content_type, len(body))).encode() + body)
    return sock


@test
def health_and_likes_answer_while_a_slow_upload_is_decoded():
    post_id = upload("horse.png").json()["id"]
    liker = lc.mint_tokens([7_300_001])[7_300_001]
    body, content_type = lc.multipart({}, "image", "slow.png", slow_png(1024), "image/png")
    slow = {}

    def post_slow_image():
        slow_api = lc.Api(timeout=120)
        started = time.monotonic()
        slow["reply"] = slow_api.request("POST", "/v1/posts", body,
                                         {"Content-Type": content_type}, author["token"])
        slow["answered"] = time.monotonic()
        slow["took"] = slow["answered"] - started
        slow_api.close()

    thread = threading.Thread(target=post_slow_image)
    thread.start()
    time.sleep(0.5)  # its megabyte is in by now, and being inflated
    other = lc.Api()
    started = time.monotonic()
    health = other.request("GET", "/healthz")
    health_answered = time.monotonic()
    like = other.like(liker, post_id)
    like_answered = time.monotonic()
    thread.join()
    other.close()

    print("    /healthz answered in %.1f ms and a like in %.1f ms, beside an upload of %.2f s"
          % ((health_answered - started) * 1e3, (like_answered - health_answered) * 1e3,
             slow["took"]))
    check_equal(200, health.status, "health status")
    check_equal(202, like.status, "like status")
    check_equal(201, slow["reply"].status, "status of the slow upload (%s)" % slow["reply"].body)
    check_equal((16, 16), (slow["reply"].json()["width"], slow["reply"].json()["height"]),
                "size of the slow upload")
    check_equal(True, like_answered < slow["answered"],
                "health and like answered before the slow upload")


@test
def uploads_past_the_ten_the_image_workers_hold_get_503():
    # Two workers decode and eight uploads wait: the eleventh and the
    # twelfth are refused once their bodies are in; the ten are stored.
    body, content_type = lc.multipart({}, "image", "slow.png", slow_png(768), "image/png")
    sockets = []
    try:
        for _ in range(12):
            sockets.append(send_upload(body, content_type))
            time.sleep(0.02)
        answers = [read_answer(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

    check_equal([201] * 10 + [503] * 2, sorted(status for status, _, _ in answers),
                "statuses of twelve slow uploads at once")
    for status, headers, body in answers:
        if status == 503:
            check_equal(("unavailable", "1"), (json.loads(body)["error"],
                                               headers.get("retry-after")), "a refusal")


@test
def uploads_past_the_concurrent_limit_get_503_before_their_body_is_read():
    head = ("POST /v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: multipart/form-data; boundary=held\r\nContent-Length: %d\r\n\r\n"
            % (author["token"], 1 << 20)).encode()
    holders = []
    try:
        # LIKES_MAX_CONCURRENT_UPLOADS is 8: eight bodies stay unfinished.
        for _ in range(8):
            sock = socket.create_connection((lc.HTTP_HOST, lc.HTTP_PORT), timeout=10)
            sock.sendall(head + b"--held\r\n" + b"x" * 1000)
            holders.append(sock)
        time.sleep(0.5)
        sock = socket.create_connection((lc.HTTP_HOST, lc.HTTP_PORT), timeout=10)
        try:
            sock.sendall(head)  # and not one byte of its body
            status, headers, body = read_answer(sock)
        finally:
            sock.close()
        check_equal((503, "unavailable", "1"),
                    (status, json.loads(body)["error"], headers.get("retry-after")),
                    "the ninth upload")
    finally:
        for holder in holders:
            holder.close()

    # The slots come back as those connections go.
    deadline = time.time() + 10
    reply = upload("horse.png")
    while reply.status == 503 and time.time() < deadline:
        time.sleep(0.1)
        reply = upload("horse.png")
    check_equal(201, reply.status, "an upload once they are gone")


@test
def media_is_served_from_regular_files_only():
    media_dir = os.environ["LIKES_MEDIA_DIR"]
    post = upload("coffee.png").json()
    stored = os.path.join(media_dir, post["image_url"].rsplit("/", 1)[1])
    fifo = os.path.join(media_dir, "f" * 64 + ".jpg")
    link = os.path.join(media_dir, "e" * 64 + ".jpg")
    os.mkfifo(fifo)
    os.symlink(stored, link)
    quick = lc.Api(timeout=5)
    try:
        check_error(quick.request("GET", "/media/" + os.path.basename(fifo)), 404, "not_found")
        check_error(quick.request("GET", "/media/" + os.path.basename(link)), 404, "not_found")
        check_equal(200, quick.request("GET", post["image_url"]).status, "the file itself")
    finally:
        quick.close()
        os.unlink(fifo)
        os.unlink(link)


@test
def encoded_nul_and_slash_and_ids_with_leading_zeros_are_refused():
    post = upload("coffee.png").json()
    image_name = post["image_url"].rsplit("/", 1)[1]
    token = author["token"]

    check_error(api.request("GET", "/healthz%00junk"), 404, "not_found")
    check_error(api.request("GET", "/media/%s%%00.png" % image_name), 404, "not_found")
    check_error(api.request("PUT", "/v1/posts/%d%%2Flike" % post["id"], token=token), 404,
                "not_found")
    check_error(api.request("PUT", "/v1/posts/%d%%2flike" % post["id"], token=token), 404,
                "not_found")
    check_error(api.request("PUT", "/v1/posts/0%d/like" % post["id"], token=token), 400,
                "invalid_field")
    check_error(api.request("GET", "/v1/posts/00%d" % post["id"]), 400, "invalid_field")
    check_error(api.request("GET", "/v1/posts?limit=5%00"), 400, "invalid_field")
    check_error(api.request("GET", "/v1/stream?posts=0%d" % post["id"]), 400, "invalid_field")
    check_equal(200, api.request("GET", "/media/" + image_name).status, "the image itself")


@test
def unknown_methods_get_501_and_ambiguous_framing_a_400_that_closes_the_connection():
    for method in (b"FOO", b"get"):
        status, _, body, _ = raw_exchange(method + b" /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        check_equal((501, "not_implemented"), (status, body["error"]), "status of %r" % method)

    # Each would carry a second request, which must never be answered.
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for framing in (b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(smuggled),
                    b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(smuggled),
                    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"):
        status, headers, body, after = raw_exchange(
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + framing + b"\r\n" + smuggled)
        check_equal((400, "invalid_field", "close", b""),
                    (status, body["error"], headers.get("connection"), after),
                    "status, error, Connection and what followed, for %r" % framing)
    status, headers, body, after = raw_exchange(
        b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: gzip\r\n\r\n" + smuggled)
    check_equal((501, "not_implemented", "close", b""),
                (status, body["error"], headers.get("connection"), after),
                "an unknown transfer coding")

    status, _, body, _ = raw_exchange(b"GET /healthz HTTP/1.1\r\n\r\n")
    check_equal((400, "invalid_field"), (status, body["error"]), "HTTP/1.1 without Host")
    status, _, body, _ = raw_exchange(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    check_equal((400, "invalid_field"), (status, body["error"]), "two Host headers")
    status, _, body, _ = raw_exchange(b"GET /healthz HTTP/1.0\r\n\r\n")
    check_equal((200, "ok"), (status, body["status"]), "HTTP/1.0 without Host")


def post_form(parts):
    """Posts a multipart form of (Content-Disposition parameters, value)
    parts, as written."""
    boundary = "likes-form-test"
    body = b"".join(b"--%s\r\nContent-Disposition: form-data; %s\r\n\r\n%s\r\n"
                    % (boundary.encode(), params, value) for params, value in parts)
    body += b"--%s--\r\n" % boundary.encode()
    return api.request("POST", "/v1/posts", body,
                       {"Content-Type": "multipart/form-data; boundary=" + boundary},
                       author["token"])


@test
def each_form_field_counts_once_however_its_name_is_written():
    with open(os.path.join(IMAGES, "horse.png"), "rb") as f:
        image = f.read()

    reply = post_form([(b"name=image; filename=h.png", image), (b"name=caption", b"unquoted")])
    check_equal(201, reply.status, "status with unquoted names (%s)" % reply.body[:200])
    check_equal("unquoted", reply.json()["caption"], "caption")

    for parts, field in (([(b'name="image"', b""), (b'name="image"', image)], "image"),
                         ([(b'name="image"', image), (b"name=image", image)], "image"),
                         ([(b'name="caption"', b""), (b'name="caption"', b"x"),
                           (b'name="image"', image)], "caption")):
        reply = post_form(parts)
        check_error(reply, 400, "invalid_field")
        check_equal('the form has more than one "%s" field' % field, reply.json()["message"],
                    "message")

    reply = post_form([(b"filename=h.png", image)])
    check_error(reply, 400, "invalid_field")
    check_equal("the multipart/form-data body is malformed: a part of the form has no name",
                reply.json()["message"], "message for a part without a name")


@test
def a_chunked_body_past_the_limit_is_cut_off_without_an_answer():
    # libmicrohttpd 0.9.75 cannot answer before a body has ended: the
    # README's table of errors says so.
    sock = socket.create_connection((lc.HTTP_HOST, lc.HTTP_PORT), timeout=10)
    try:
        sock.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
        try:
            for _ in range(5):  # 80 KiB, never ended
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        check_equal(b"", read_to_close(sock, wait=10), "what the server sent before closing")
    finally:
        sock.close()
    check_equal(200, api.request("GET", "/healthz").status, "health afterwards")


if __name__ == "__main__":
    main()
