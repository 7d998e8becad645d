"""The HTTP API through a real stack: what each endpoint answers, and that
bad input gets a JSON error with the right status, reaches no topic and
leaves the service up."""

import json
import os
import socket
import subprocess
import sys

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


if __name__ == "__main__":
    main()
