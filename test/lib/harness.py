"""A tiny test harness whose output test/run.sh counts: one line per test,
"ok - FILE: NAME" or "not ok - FILE: NAME: why"."""

import os
import sys
import time
import traceback

_tests = []


def test(function):
    _tests.append(function)
    return function


def check_equal(expected, actual, what):
    if expected != actual:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def main():
    name = os.path.basename(sys.argv[0])
    failed = 0
    for function in _tests:
        started = time.time()
        label = function.__name__.replace("_", " ")
        try:
            function()
        except Exception as error:  # every failure is reported, none stops the file
            failed += 1
            reason = str(error).replace("\n", " ")[:2000] or type(error).__name__
            print("not ok - %s: %s: %s" % (name, label, reason), flush=True)
            traceback.print_exc(file=sys.stdout)
            continue
        print("ok - %s: %s (%.1fs)" % (name, label, time.time() - started), flush=True)
    sys.exit(1 if failed else 0)
