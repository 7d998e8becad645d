"""The running service against its OpenAPI document (ingest/openapi.yaml),
fuzzed by schemathesis: every response must match the document, and no input
may make the service answer 5xx or go away. One result line per operation."""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import likes_client as lc  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMATHESIS = os.path.join(ROOT, ".venv", "bin", "st")
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
])
EXAMPLES = os.environ.get("LIKES_FUZZ_EXAMPLES", "60")
NAME = os.path.basename(__file__)


def run_fuzzer(report_path):
    token = lc.mint_tokens([4_200_000], os.path.join(ROOT, "build", "bin", "likesctl"))
    command = [
        SCHEMATHESIS, "--config-file", os.path.join(ROOT, "test", "integration", "schemathesis.toml"),
        "run", os.path.join(ROOT, "ingest", "openapi.yaml"),
        "--url", "http://%s:%d" % (lc.HTTP_HOST, lc.HTTP_PORT),
        "--header", "Authorization: Bearer " + token[4_200_000],
        "--checks", CHECKS,
        "--max-examples", EXAMPLES, "--seed", "20261204", "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "20", "--no-color",
        "--report", "junit", "--report-junit-path", report_path,
    ]
    # Run in a scratch directory: schemathesis keeps a cache of past
    # results in its working directory, and a test must start afresh.
    return subprocess.run(command, capture_output=True, text=True, timeout=900,
                          cwd=os.path.dirname(report_path))


def main():
    with tempfile.TemporaryDirectory() as workdir:
        report = os.path.join(workdir, "junit.xml")
        result = run_fuzzer(report)
        if not os.path.exists(report):
            print("not ok - %s: schemathesis ran: exit %d, no report" % (NAME, result.returncode))
            print(result.stdout[-4000:], result.stderr[-4000:])
            return 1

        failed = 0
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            # A skipped operation was not exercised (schemathesis gives up on
            # one that keeps answering 405 or 404): that is a failure too.
            problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
            label = case.get("name")
            if problems:
                failed += 1
                first = problems[0]
                reason = " ".join((first.text or first.get("message") or "").split())[:300]
                print("not ok - %s: %s: %s: %s" % (NAME, label, first.tag, reason))
            else:
                print("ok - %s: %s matches the document under fuzzing" % (NAME, label))
        if failed or result.returncode != 0:
            print(result.stdout[-6000:])

    alive = lc.Api().request("GET", "/healthz").status == 200
    print("%s - %s: the service still answers after the fuzzing"
          % ("ok" if alive else "not ok", NAME))
    return 1 if failed or not alive or result.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
