"""The web app as ingest serves it from LIKES_APP_DIR: the right file for
each path, its content type, a cache policy that suits its name, HEAD as
GET without the body, and nothing outside the directory, however asked."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import check_equal, main, test  # noqa: E402
import likes_client as lc  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
APP_DIR = os.environ.get("LIKES_APP_DIR", os.path.join(ROOT, "app", "dist"))
IMMUTABLE = "public, max-age=31536000, immutable"

api = lc.Api()


def read(name):
    with open(os.path.join(APP_DIR, name), "rb") as f:
        return f.read()


def check_not_found(reply, what):
    check_equal(404, reply.status, "status of %s" % what)
    check_equal("application/json", reply.headers.get("Content-Type"), "content type of %s" % what)
    check_equal("not_found", reply.json()["error"], "error of %s" % what)


@test
def the_page_is_served_at_the_root_and_revalidated():
    page = api.request("GET", "/")
    check_equal(200, page.status, "status")
    check_equal(read("index.html"), page.body, "body")
    check_equal("text/html; charset=utf-8", page.headers.get("Content-Type"), "content type")
    check_equal("no-cache", page.headers.get("Cache-Control"), "cache control")
    check_equal("nosniff", page.headers.get("X-Content-Type-Options"), "nosniff")
    policy = page.headers.get("Content-Security-Policy", "")
    if "default-src 'self'" not in policy:
        raise AssertionError("no content security policy of its own: %r" % policy)

    check_equal(read("index.html"), api.request("GET", "/index.html").body, "/index.html")


@test
def head_answers_the_headers_of_get_without_a_body():
    reply = api.request("HEAD", "/")
    check_equal(200, reply.status, "status")
    check_equal(b"", reply.body, "body")
    check_equal(str(len(read("index.html"))), reply.headers.get("Content-Length"), "length")
    check_equal("no-cache", reply.headers.get("Cache-Control"), "cache control")


@test
def hashed_assets_are_cached_for_good_and_the_rest_revalidated():
    assets = sorted(os.listdir(os.path.join(APP_DIR, "assets")))
    scripts = [name for name in assets if name.endswith(".js")]
    styles = [name for name in assets if name.endswith(".css")]
    if not scripts or not styles:
        raise AssertionError("the build has no script or style under assets/: %r" % assets)

    for name, content_type in ((scripts[0], "text/javascript; charset=utf-8"),
                               (styles[0], "text/css; charset=utf-8")):
        reply = api.request("GET", "/assets/" + name)
        check_equal(200, reply.status, "status of " + name)
        check_equal(read("assets/" + name), reply.body, "body of " + name)
        check_equal(content_type, reply.headers.get("Content-Type"), "content type of " + name)
        check_equal(IMMUTABLE, reply.headers.get("Cache-Control"), "cache control of " + name)

    for name, content_type in (("sw.js", "text/javascript; charset=utf-8"),
                               ("manifest.webmanifest", "application/manifest+json"),
                               ("icon.svg", "image/svg+xml"),
                               ("icon-192.png", "image/png")):
        reply = api.request("GET", "/" + name)
        check_equal(200, reply.status, "status of " + name)
        check_equal(read(name), reply.body, "body of " + name)
        check_equal(content_type, reply.headers.get("Content-Type"), "content type of " + name)
        check_equal("no-cache", reply.headers.get("Cache-Control"), "cache control of " + name)


@test
def the_service_worker_keeps_only_the_app_shell():
    worker = read("sw.js").decode()
    shell_line = next(line for line in worker.splitlines() if line.startswith("const SHELL = "))
    for path in ("/v1", "/media", "/healthz"):
        if path in shell_line:
            raise AssertionError("the shell lists %s: %s" % (path, shell_line))
    if '"/"' not in shell_line:
        raise AssertionError("the shell lacks the page: %s" % shell_line)


@test
def nothing_outside_the_directory_is_served():
    for path in ("/..", "/%2e%2e", "/%2e%2e%2fMakefile", "/..%2fMakefile", "/assets/..%2f..%2fMakefile",
                 "/assets/../../Makefile", "/assets/%2e%2e", "/.hidden", "/assets/.x.js",
                 "/assets", "/missing.js", "/assets/missing.js"):
        check_not_found(api.request("GET", path), path)


@test
def a_link_that_leads_out_of_the_directory_is_not_followed():
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as outside:
        outside.write("not part of the app")
        outside.flush()
        link = os.path.join(APP_DIR, "escape.txt")
        os.symlink(outside.name, link)
        try:
            check_not_found(api.request("GET", "/escape.txt"), "a link out of the directory")
        finally:
            os.unlink(link)


@test
def a_fifo_is_not_served_and_holds_nothing_up():
    fifo = os.path.join(APP_DIR, "pipe.js")
    os.mkfifo(fifo)
    try:
        check_not_found(lc.Api(timeout=5).request("GET", "/pipe.js"), "a FIFO")
    finally:
        os.unlink(fifo)
    check_equal(200, api.request("GET", "/healthz").status, "health after the FIFO")


@test
def the_app_paths_take_get_and_head_only():
    for path in ("/", "/sw.js", "/assets/x.js"):
        reply = api.request("POST", path, {})
        check_equal(405, reply.status, "status of POST " + path)
        check_equal("GET, HEAD", reply.headers.get("Allow"), "Allow of " + path)
    # /healthz and the app's one-segment paths share their methods.
    check_equal("GET, HEAD", api.request("POST", "/healthz", {}).headers.get("Allow"),
                "Allow of /healthz")


if __name__ == "__main__":
    main()
