#!/usr/bin/env bash
# Runs the tests of "likes" and ends with one line: "N passed, M failed".
#
#   test/run.sh              every stage
#   test/run.sh unit         C unit tests of lib/ only
#   test/run.sh integration  tests against a real stack only
#   test/run.sh faults       the fault suite, each fault once
#                            (`make test-faults` runs it in full)
#
# Unit tests are the sanitizer builds in build/asan/test. The integration
# stage starts its own stack and services (the sanitizer builds) on ports
# of their own under run/test, so it never touches a stack started by
# `make up`, and stops them at the end.
#
# Every test prints one line, "ok - NAME" or "not ok - NAME: why"; this
# script counts those lines.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stages="${1:-unit integration faults}"

results="$(mktemp)"
trap 'rm -f "$results"' EXIT

# Runs one test program, showing and recording its result lines. A program
# that dies without reporting counts as one failure.
run_program() {
    local name="$1"
    shift
    local before after status
    before="$(grep -c '^not ok - \|^ok - ' "$results")"
    "$@" 2>&1 | tee -a "$results"
    status="${PIPESTATUS[0]}"
    after="$(grep -c '^not ok - \|^ok - ' "$results")"
    if [ "$status" -ne 0 ] && ! tail -n +"$((before + 1))" "$results" | grep -q '^not ok - '; then
        echo "not ok - $name: exited with status $status" | tee -a "$results"
    elif [ "$after" -eq "$before" ]; then
        echo "not ok - $name: reported no result" | tee -a "$results"
    fi
}

run_unit() {
    echo "== unit tests (AddressSanitizer, UndefinedBehaviorSanitizer)"
    local test
    for test in build/asan/test/test_*; do
        [ -x "$test" ] || continue
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run_program "$(basename "$test")" "$test"
    done
}

# The integration stack: ports apart from the defaults, its own run dir, and
# the sanitizer builds of the services.
export_test_stack() {
    export LIKES_RUN_DIR="$root/run/test"
    export LIKES_HTTP_PORT="${LIKES_TEST_HTTP_PORT:-18080}"
    export LIKES_KAFKA_PORT="${LIKES_TEST_KAFKA_PORT:-29092}"
    export LIKES_KAFKA_CONTROLLER_PORT="${LIKES_TEST_KAFKA_CONTROLLER_PORT:-29093}"
    export LIKES_REDIS_PORT="${LIKES_TEST_REDIS_PORT:-26379}"
    export LIKES_PG_PORT="${LIKES_TEST_PG_PORT:-25432}"
    export LIKES_BIN_DIR="$root/build/asan/bin"
    export LIKES_WINDOW_MS=100
    # test_api.py checks CORS with this origin and with another.
    export LIKES_CORS_ORIGINS=http://app.example
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1
    . scripts/env.sh
}

# A sanitizer report in any service log is a failure even when every test
# passed: the report may come from a path no assertion looks at.
check_service_logs() {
    local log reports
    for log in "$LIKES_RUN_DIR"/logs/{ingest,aggregator,persister}*.log; do
        [ -f "$log" ] || continue
        reports="$(grep -c 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log")"
        if [ "$reports" -eq 0 ]; then
            echo "ok - sanitizers: no report in $(basename "$log")" | tee -a "$results"
        else
            echo "not ok - sanitizers: $reports reports in $(basename "$log")" | tee -a "$results"
            grep -A 12 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log" | head -n 40
        fi
    done
}

run_integration() {
    echo "== integration tests against a real Kafka, Redis and PostgreSQL"
    export_test_stack
    scripts/services.sh stop >/dev/null 2>&1 || true
    scripts/stack.sh reset >/dev/null 2>&1 || true
    rm -rf "$LIKES_RUN_DIR/logs" "$LIKES_MEDIA_DIR"

    if ! scripts/stack.sh start || ! scripts/services.sh start; then
        echo "not ok - integration: the test stack did not start" | tee -a "$results"
        scripts/services.sh stop >/dev/null 2>&1
        scripts/stack.sh stop >/dev/null 2>&1
        return
    fi

    local test
    for test in test/integration/test_*.py; do
        run_program "$(basename "$test")" python3 "$test"
    done
    # The app in headless Chromium on a phone-sized screen, same stack.
    run_program "app/tests" node app/tests/run.mjs

    scripts/services.sh stop
    check_service_logs
    scripts/stack.sh stop
}

for stage in $stages; do
    case "$stage" in
        unit) run_unit ;;
        integration) run_integration ;;
        faults)
            echo "== fault suite (each fault once; make test-faults runs three rounds)"
            run_program "faults" python3 test/faults/run.py --quick
            ;;
        *) echo "unknown stage $stage" >&2; exit 2 ;;
    esac
done

passed="$(grep -c '^ok - ' "$results")"
failed="$(grep -c '^not ok - ' "$results")"
echo
if [ "$failed" -gt 0 ]; then
    echo "failed tests:"
    grep '^not ok - ' "$results"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
