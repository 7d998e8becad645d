# Helpers shared by the scripts in this folder. Sourced, never run.
# The caller sets LIKES_LOG_TAG to name itself in log lines.

# log MESSAGE...: one line on stderr with the time and the calling script.
log() {
    printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "${LIKES_LOG_TAG:-likes}" "$*" >&2
}

# die MESSAGE...: log the message and exit with status 1.
die() {
    log "error: $*"
    exit 1
}

# pid_alive PID PATTERN: true when PID runs and its command line contains
# PATTERN, so that a stale pid file whose number was reused does not count.
pid_alive() {
    local pid="$1" pattern="$2" cmdline
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$pattern"* ]]
}

# pidfile_alive FILE PATTERN: prints the pid and succeeds when the process
# named in FILE is alive (see pid_alive).
pidfile_alive() {
    local file="$1" pattern="$2" pid
    [ -s "$file" ] || return 1
    pid="$(head -n1 "$file")"
    pid_alive "$pid" "$pattern" || return 1
    printf '%s\n' "$pid"
}

# process_running PID: true while PID has not exited. A process that exited
# but was not yet reaped by its parent (a zombie) counts as gone: servers that
# daemonise end up as children of init, which may reap them seconds later.
process_running() {
    local state
    state="$(proc_stat "$1" 1)" || return 1
    [ "$state" != Z ] && [ "$state" != X ]
}

# proc_stat PID N: prints field N of /proc/PID/stat counted after the command
# name, which may hold spaces: 1 is the state, 3 the process group.
proc_stat() {
    local stat fields
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    read -r -a fields <<<"${stat##*) }"
    printf '%s\n' "${fields[$(($2 - 1))]}"
}

# wait_gone PID SECONDS: waits until PID has exited; false on timeout.
wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while process_running "$pid"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# stop_pid NAME PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL. When
# PID leads its own process group (the scripts start servers with setsid), the
# whole group gets the signals, so that a wrapper's children go too.
stop_pid() {
    local name="$1" pid="$2" grace="$3" target="$2" pgid
    pgid="$(proc_stat "$pid" 3)" || true
    [ "$pgid" = "$pid" ] && target="-$pid"

    kill -TERM -- "$target" 2>/dev/null || return 0
    if ! wait_gone "$pid" "$grace"; then
        log "$name: still running after ${grace}s, sending SIGKILL to $pid"
        kill -KILL -- "$target" 2>/dev/null || true
        wait_gone "$pid" 5 || die "$name: pid $pid survives SIGKILL"
    fi
}

# port_open PORT: true when something accepts TCP connections on loopback.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
