#!/usr/bin/env bash
# Runs the built services of "likes" in the background against the local stack:
#
#   scripts/services.sh start  [ingest|aggregator|persister ...]
#   scripts/services.sh stop   [ingest|aggregator|persister ...]
#   scripts/services.sh status [ingest|aggregator|persister ...]
#
# Without names, all three. Binaries come from LIKES_BIN_DIR (default
# build/bin; point it at another build, say one with sanitizers). Each gets
# the environment of scripts/env.sh, logs to LIKES_RUN_DIR/logs/NAME.log and
# leaves its pid in LIKES_RUN_DIR/NAME.pid. start returns once ingest answers
# GET /healthz with 200; status exits 3 if any named service is not running.
set -euo pipefail

LIKES_LOG_TAG=services
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. "$LIKES_ROOT/scripts/common.sh"

logs="$LIKES_RUN_DIR/logs"
health_timeout=30
stop_timeout=15

service_bin() { printf '%s\n' "$LIKES_BIN_DIR/likes-$1"; }
service_log() { printf '%s\n' "$logs/$1.log"; }
service_pidfile() { printf '%s\n' "$LIKES_RUN_DIR/$1.pid"; }

service_pid() {
    pidfile_alive "$(service_pidfile "$1")" "likes-$1"
}

ingest_healthy() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
        "http://127.0.0.1:$LIKES_HTTP_PORT/healthz" 2>/dev/null)" || true
    [ "$code" = 200 ]
}

# Stops the service if it still runs, shows the end of its log and exits
# with status 1: a service that failed to come up is not left behind.
service_fail() {
    local name="$1" pid
    shift
    if pid="$(service_pid "$name")"; then
        stop_pid "$name" "$pid" "$stop_timeout"
        rm -f "$(service_pidfile "$name")"
    fi
    echo "--- last lines of $(service_log "$name") ---" >&2
    tail -n 30 "$(service_log "$name")" >&2 2>/dev/null || true
    echo "---" >&2
    die "$name: $*"
}

service_launch() {
    local name="$1" bin pid
    if pid="$(service_pid "$name")"; then
        log "$name: already running (pid $pid)"
        return
    fi
    bin="$(service_bin "$name")"
    [ -x "$bin" ] || die "$name: no executable $bin; build it first"

    mkdir -p "$logs" "$LIKES_MEDIA_DIR"
    printf -- '--- %s: starting %s\n' "$(date '+%F %T')" "$bin" >>"$(service_log "$name")"
    # setsid: the service must not die with the shell that started it.
    setsid "$bin" </dev/null >>"$(service_log "$name")" 2>&1 &
    echo $! >"$(service_pidfile "$name")"
    log "$name: launched $bin (pid $!), logs in $(service_log "$name")"
}

services_start() {
    local name deadline
    for name in "$@"; do
        service_launch "$name"
    done

    if [[ " $* " == *" ingest "* ]]; then
        deadline=$((SECONDS + health_timeout))
        until ingest_healthy; do
            service_pid ingest >/dev/null || service_fail ingest "exited while starting"
            [ "$SECONDS" -lt "$deadline" ] \
                || service_fail ingest "GET /healthz on port $LIKES_HTTP_PORT gave no 200 within ${health_timeout}s"
            sleep 0.2
        done
        log "ingest: healthy on 127.0.0.1:$LIKES_HTTP_PORT"
    else
        # Nothing to ask the others; give a bad configuration a moment to
        # show itself as an exit.
        sleep 1
    fi

    for name in "$@"; do
        service_pid "$name" >/dev/null || service_fail "$name" "exited while starting"
    done
}

service_stop() {
    local name="$1" pid
    if ! pid="$(service_pid "$name")"; then
        log "$name: not running"
        rm -f "$(service_pidfile "$name")"
        return
    fi
    log "$name: stopping (pid $pid)"
    stop_pid "$name" "$pid" "$stop_timeout"
    rm -f "$(service_pidfile "$name")"
    log "$name: stopped"
}

# All at once, so that stopping three takes no longer than the slowest one.
services_stop() {
    local name pids=() status=0 pid
    for name in "$@"; do
        service_stop "$name" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || status=1
    done
    return "$status"
}

services_status() {
    local name pid bad=0 state
    for name in "$@"; do
        if pid="$(service_pid "$name")"; then
            state="running"
            if [ "$name" = ingest ] && ! ingest_healthy; then
                state="not healthy"
                bad=1
            fi
            printf '%-11s %-12s pid %s\n' "$name" "$state" "$pid"
        else
            printf '%-11s %-12s\n' "$name" stopped
            bad=1
        fi
    done
    [ "$bad" -eq 0 ] || exit 3
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

command="${1:-}"
[ "$#" -gt 0 ] && shift
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(ingest aggregator persister)
for name in "${names[@]}"; do
    case "$name" in
        ingest | aggregator | persister) ;;
        *) usage ;;
    esac
done

case "$command" in
    start) services_start "${names[@]}" ;;
    stop) services_stop "${names[@]}" ;;
    status) services_status "${names[@]}" ;;
    *) usage ;;
esac
