#!/usr/bin/env bash
# Runs the local infrastructure of "likes": a one-node Kafka, Redis and
# PostgreSQL, all listening on 127.0.0.1 only, all state under LIKES_RUN_DIR.
#
#   scripts/stack.sh start     start what is not running, wait until all answer
#   scripts/stack.sh stop      stop all three
#   scripts/stack.sh status    show what runs; exit status 3 if anything does not
#   scripts/stack.sh reset     stop the services and the stack, delete their data
#   scripts/stack.sh start-kafka|stop-kafka|start-redis|stop-redis|start-pg|stop-pg
#
# Ports and paths come from scripts/env.sh. Steps are logged to stderr; the
# servers log to LIKES_RUN_DIR/logs.
set -euo pipefail

LIKES_LOG_TAG=stack
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. "$LIKES_ROOT/scripts/common.sh"

logs="$LIKES_RUN_DIR/logs"
kafka_dir="$LIKES_RUN_DIR/kafka"
redis_dir="$LIKES_RUN_DIR/redis"
# The postgres user must be able to walk down to its data directory. A run
# directory under a private home (mode 700, as /root is) would stop it, so
# the cluster then lives under /var/tmp instead, one per run directory.
if mkdir -p "$LIKES_RUN_DIR" && (cd / && runuser -u postgres -- test -x "$LIKES_RUN_DIR") 2>/dev/null; then
    pg_dir="$LIKES_RUN_DIR/pg"
    pg_log="$logs/postgres.log"
else
    pg_dir="/var/tmp/likes-pg-$(printf '%s' "$LIKES_RUN_DIR" | md5sum | cut -c1-12)"
    pg_log="$pg_dir/postgres.log"
fi
pg_data="$pg_dir/data"
pg_socket="$pg_dir/socket"
pg_bin=/usr/lib/postgresql/15/bin

# Seconds to wait for each server before giving up.
kafka_start_timeout=60
kafka_stop_timeout=30
redis_timeout=15
pg_timeout=30

# ---------------------------------------------------------------------------
# Kafka

kafka_pid() {
    pidfile_alive "$kafka_dir/kafka.pid" kafka.Kafka
}

# The properties are written on every start so that changed ports apply.
kafka_write_config() {
    cat >"$kafka_dir/server.properties" <<EOF
# Written by scripts/stack.sh on every start; edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$LIKES_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$LIKES_KAFKA_PORT,CONTROLLER://127.0.0.1:$LIKES_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$LIKES_KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$kafka_dir/data

# One broker: the defaults of 3 replicas and 2 in sync would leave the group
# and transaction coordinators without a home.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

# Consumers of a new group start at once instead of after 3 seconds.
group.initial.rebalance.delay.ms=0
# A mistyped topic name fails instead of creating a topic.
auto.create.topics.enable=false
EOF
}

kafka_format_storage() {
    [ -f "$kafka_dir/data/meta.properties" ] && return
    local cluster_id
    if [ ! -s "$kafka_dir/cluster-id" ]; then
        kafka_tool kafka.tools.StorageTool random-uuid >"$kafka_dir/cluster-id" \
            || die "kafka: making a cluster id failed"
    fi
    cluster_id="$(cat "$kafka_dir/cluster-id")"
    log "kafka: formatting storage in $kafka_dir/data (cluster $cluster_id)"
    kafka_tool kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$kafka_dir/server.properties" --ignore-formatted >>"$logs/kafka.out" 2>&1 \
        || die "kafka: formatting storage failed, see $logs/kafka.out"
}

# Starts the broker in the background without waiting for it; kafka_wait
# does that, so Redis and Postgres can start meanwhile.
kafka_launch() {
    local pid
    if pid="$(kafka_pid)"; then
        log "kafka: already running (pid $pid)"
        return
    fi
    if port_open "$LIKES_KAFKA_PORT" || port_open "$LIKES_KAFKA_CONTROLLER_PORT"; then
        die "kafka: port $LIKES_KAFKA_PORT or $LIKES_KAFKA_CONTROLLER_PORT is taken by another process"
    fi

    mkdir -p "$kafka_dir/data" "$logs"
    kafka_write_config
    kafka_format_storage

    local heap
    read -r -a heap <<<"$LIKES_KAFKA_HEAP_OPTS"
    # setsid: the broker must not die with the shell that started it. fd 9 is
    # the stack lock, which the broker must not keep holding.
    setsid java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dkafka.logs.dir="$logs" \
        -Dlog4j.configuration="file:$LIKES_ROOT/stack/kafka/log4j-broker.properties" \
        -cp "$LIKES_KAFKA_LIBS/*" kafka.Kafka "$kafka_dir/server.properties" \
        </dev/null >>"$logs/kafka.out" 2>&1 9>&- &
    echo $! >"$kafka_dir/kafka.pid"
    log "kafka: launched (pid $!), logs in $logs/kafka.log"
}

kafka_wait() {
    local deadline=$((SECONDS + kafka_start_timeout))
    until port_open "$LIKES_KAFKA_PORT"; do
        if ! kafka_pid >/dev/null; then
            tail -n 20 "$logs/kafka.out" "$logs/kafka.log" >&2 2>/dev/null || true
            die "kafka: the broker exited while starting, see $logs/kafka.log"
        fi
        [ "$SECONDS" -lt "$deadline" ] \
            || die "kafka: port $LIKES_KAFKA_PORT not open after ${kafka_start_timeout}s"
        sleep 0.2
    done
    log "kafka: listening on 127.0.0.1:$LIKES_KAFKA_PORT"
}

kafka_tool() {
    "$LIKES_ROOT/scripts/kafka-tool.sh" "$@"
}

# The admin client retries for a minute by itself; the timeout bounds a hang.
# It talks to the broker of this stack, whatever LIKES_KAFKA_BROKERS says.
topic_tool() {
    timeout 90 "$LIKES_ROOT/scripts/kafka-tool.sh" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "127.0.0.1:$LIKES_KAFKA_PORT" "$@"
}

# Creates the topics that are missing. Listing first costs one JVM start and
# saves three when the topics exist, which is the usual case.
kafka_ensure_topics() {
    local existing
    existing="$(topic_tool --list)" || die "kafka: listing topics failed"
    log "kafka: answers topic requests"

    # likes: kept forever (retention.ms=-1), so that counts can be rebuilt by
    # replaying every like from offset 0.
    local specs=(
        "likes $LIKES_KAFKA_PARTITIONS retention.ms=-1"
        "like-deltas $LIKES_KAFKA_PARTITIONS"
        "likes-dlq 1"
    )
    local spec name partitions config pids=() created=()
    for spec in "${specs[@]}"; do
        read -r name partitions config <<<"$spec"
        grep -qxF "$name" <<<"$existing" && continue
        local args=(--create --if-not-exists --topic "$name"
            --partitions "$partitions" --replication-factor 1)
        [ -n "$config" ] && args+=(--config "$config")
        topic_tool "${args[@]}" >/dev/null &
        pids+=($!)
        created+=("$name")
    done

    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || die "kafka: creating topic ${created[$i]} failed"
        log "kafka: created topic ${created[$i]}"
    done
}

kafka_start() {
    kafka_launch
    kafka_wait
    kafka_ensure_topics
}

kafka_stop() {
    local pid
    if ! pid="$(kafka_pid)"; then
        log "kafka: not running"
        rm -f "$kafka_dir/kafka.pid"
        return
    fi
    log "kafka: stopping (pid $pid)"
    stop_pid kafka "$pid" "$kafka_stop_timeout"
    rm -f "$kafka_dir/kafka.pid"
    log "kafka: stopped"
}

# ---------------------------------------------------------------------------
# Redis

redis_pid() {
    pidfile_alive "$redis_dir/redis.pid" redis-server
}

redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "$LIKES_REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

redis_write_config() {
    cat >"$redis_dir/redis.conf" <<EOF
# Written by scripts/stack.sh on every start; edits here are lost.
bind 127.0.0.1
port $LIKES_REDIS_PORT
protected-mode yes
daemonize yes
pidfile "$redis_dir/redis.pid"
logfile "$logs/redis.log"
dir "$redis_dir"
# Every write goes to the append-only file and is flushed to disk before
# Redis answers: the aggregator writes one script call per window, so this
# costs a few fsyncs a second, and a crashed Redis never loses a window
# whose Kafka offsets were committed after it.
appendonly yes
appendfsync always
EOF
}

redis_start() {
    local pid deadline
    if pid="$(redis_pid)"; then
        log "redis: already running (pid $pid)"
    else
        port_open "$LIKES_REDIS_PORT" \
            && die "redis: port $LIKES_REDIS_PORT is taken by another process"
        mkdir -p "$redis_dir" "$logs"
        redis_write_config
        redis-server "$redis_dir/redis.conf" 9>&- || die "redis: redis-server failed, see $logs/redis.log"
        log "redis: launched, logs in $logs/redis.log"
    fi

    deadline=$((SECONDS + redis_timeout))
    until redis_ping; do
        [ "$SECONDS" -lt "$deadline" ] || die "redis: no PONG after ${redis_timeout}s, see $logs/redis.log"
        sleep 0.1
    done
    log "redis: answers on 127.0.0.1:$LIKES_REDIS_PORT"
}

redis_stop() {
    local pid
    if ! pid="$(redis_pid)"; then
        log "redis: not running"
        return
    fi
    log "redis: stopping (pid $pid)"
    # SHUTDOWN flushes the append-only file; SIGTERM does the same if the
    # server does not take commands.
    timeout 10 redis-cli -h 127.0.0.1 -p "$LIKES_REDIS_PORT" shutdown >/dev/null 2>&1 || true
    if ! wait_gone "$pid" "$redis_timeout"; then
        stop_pid redis "$pid" 5
    fi
    log "redis: stopped"
}

# ---------------------------------------------------------------------------
# PostgreSQL

# Postgres refuses to run as root, so its commands run as the postgres user,
# from a directory that user can enter.
as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

pg_pid() {
    [ -s "$pg_data/postmaster.pid" ] || return 1
    local pid
    pid="$(head -n1 "$pg_data/postmaster.pid")"
    pid_alive "$pid" postgres || return 1
    printf '%s\n' "$pid"
}

pg_ready() {
    "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$LIKES_PG_PORT" -t 2
}

pg_init() {
    [ -s "$pg_data/PG_VERSION" ] && return
    id postgres >/dev/null 2>&1 || die "postgres: no postgres system user; run scripts/install-deps.sh"

    log "postgres: creating a cluster in $pg_data"
    mkdir -p "$pg_dir"
    chown postgres:postgres "$pg_dir"
    chmod 700 "$pg_dir"
    as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres -E UTF8 --no-locale \
        --auth-local=peer --auth-host=reject >>"$logs/postgres-init.log" 2>&1 \
        || die "postgres: initdb failed, see $logs/postgres-init.log"
    printf "\n# Settings of the local stack, rewritten on every start.\ninclude = 'likes.conf'\n" \
        >>"$pg_data/postgresql.conf"
}

# Rewritten on every start so that a changed port applies.
pg_write_config() {
    mkdir -p "$pg_socket"
    chown postgres:postgres "$pg_socket"
    cat >"$pg_data/likes.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $LIKES_PG_PORT
unix_socket_directories = '$pg_socket'
max_connections = 100
shared_buffers = 128MB
fsync = on
EOF
    # Only the superuser, through the socket in the run directory, and the
    # likes role, over loopback TCP, get in; neither needs a password.
    cat >"$pg_data/pg_hba.conf" <<EOF
# TYPE  DATABASE  USER      ADDRESS         METHOD
local   all       postgres                  peer
host    all       likes     127.0.0.1/32    trust
EOF
    chown postgres:postgres "$pg_data/likes.conf" "$pg_data/pg_hba.conf"
}

pg_ensure_database() {
    local sql="
select 'create role likes login'
where not exists (select from pg_roles where rolname = 'likes') \\gexec
select 'create database likes owner likes'
where not exists (select from pg_database where datname = 'likes') \\gexec
"
    printf '%s\n' "$sql" | as_postgres "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$pg_socket" -p "$LIKES_PG_PORT" -U postgres -d postgres >/dev/null \
        || die "postgres: creating the likes role and database failed"
}

pg_start() {
    local pid
    mkdir -p "$logs"
    if pid="$(pg_pid)"; then
        log "postgres: already running (pid $pid)"
    else
        port_open "$LIKES_PG_PORT" \
            && die "postgres: port $LIKES_PG_PORT is taken by another process"
        pg_init
        pg_write_config
        touch "$pg_log"
        chown postgres:postgres "$pg_log"
        [ "$pg_log" = "$logs/postgres.log" ] || ln -sfn "$pg_log" "$logs/postgres.log"
        as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_log" \
            -w -t "$pg_timeout" -s start 9>&- \
            || die "postgres: pg_ctl start failed, see $logs/postgres.log"
        log "postgres: launched, logs in $logs/postgres.log"
    fi

    pg_ready || die "postgres: not accepting connections on 127.0.0.1:$LIKES_PG_PORT"
    log "postgres: answers on 127.0.0.1:$LIKES_PG_PORT"
    pg_ensure_database
    "$LIKES_ROOT/scripts/migrate.sh"
}

pg_stop() {
    local pid
    if ! pid="$(pg_pid)"; then
        log "postgres: not running"
        return
    fi
    log "postgres: stopping (pid $pid)"
    if ! as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t "$pg_timeout" -s stop; then
        # pg_ctl starts the server in a session of its own, so its process
        # group holds the server and all its children.
        log "postgres: fast shutdown failed, sending SIGKILL to process group $pid"
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || die "postgres: pid $pid survives SIGKILL"
    fi
    log "postgres: stopped"
}

# ---------------------------------------------------------------------------
# The whole stack

# Installs whatever the stack needs and this machine lacks.
ensure_deps() {
    local tool
    for tool in java redis-server redis-cli psql "$pg_bin/initdb" runuser flock; do
        if ! command -v "$tool" >/dev/null; then
            log "$tool is missing, running scripts/install-deps.sh"
            "$LIKES_ROOT/scripts/install-deps.sh"
            return
        fi
    done
    if ! compgen -G "$LIKES_KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
        log "Kafka jars are missing, running scripts/install-deps.sh"
        "$LIKES_ROOT/scripts/install-deps.sh"
    fi
}

# Serialises start, stop and reset, so that two callers never race on the
# same pid files. Servers started under the lock close its descriptor (9>&-).
take_lock() {
    mkdir -p "$LIKES_RUN_DIR"
    exec 9>"$LIKES_RUN_DIR/stack.lock"
    flock -w 180 9 || die "another scripts/stack.sh holds $LIKES_RUN_DIR/stack.lock"
}

stack_start() {
    local began=$SECONDS
    ensure_deps
    # Fail before anything starts rather than halfway.
    kafka_launch
    redis_start
    pg_start
    kafka_wait
    kafka_ensure_topics
    log "stack: up in $((SECONDS - began))s"
}

stack_stop() {
    kafka_stop
    redis_stop
    pg_stop
}

stack_reset() {
    "$LIKES_ROOT/scripts/services.sh" stop
    stack_stop
    # The token secret stays, so tokens signed earlier remain valid.
    local dir
    for dir in kafka redis pg logs media; do
        rm -rf "${LIKES_RUN_DIR:?}/$dir"
    done
    rm -rf "${pg_dir:?}"
    log "stack: data deleted under $LIKES_RUN_DIR"
}

status_line() {
    printf '%-9s %-14s %s\n' "$1" "$2" "$3"
}

stack_status() {
    local pid bad=0
    if pid="$(kafka_pid)"; then
        if port_open "$LIKES_KAFKA_PORT"; then
            status_line kafka running "pid $pid, 127.0.0.1:$LIKES_KAFKA_PORT"
        else
            status_line kafka "not answering" "pid $pid, 127.0.0.1:$LIKES_KAFKA_PORT"
            bad=1
        fi
    else
        status_line kafka stopped ""
        bad=1
    fi

    if pid="$(redis_pid)"; then
        if redis_ping; then
            status_line redis running "pid $pid, 127.0.0.1:$LIKES_REDIS_PORT"
        else
            status_line redis "not answering" "pid $pid, 127.0.0.1:$LIKES_REDIS_PORT"
            bad=1
        fi
    else
        status_line redis stopped ""
        bad=1
    fi

    if pid="$(pg_pid)"; then
        if pg_ready; then
            status_line postgres running "pid $pid, 127.0.0.1:$LIKES_PG_PORT"
        else
            status_line postgres "not answering" "pid $pid, 127.0.0.1:$LIKES_PG_PORT"
            bad=1
        fi
    else
        status_line postgres stopped ""
        bad=1
    fi

    [ "$bad" -eq 0 ] || exit 3
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    start) take_lock; stack_start ;;
    stop) take_lock; stack_stop ;;
    status) stack_status ;;
    reset) take_lock; stack_reset ;;
    start-kafka) take_lock; ensure_deps; kafka_start ;;
    stop-kafka) take_lock; kafka_stop ;;
    start-redis) take_lock; ensure_deps; redis_start ;;
    stop-redis) take_lock; redis_stop ;;
    start-pg) take_lock; ensure_deps; pg_start ;;
    stop-pg) take_lock; pg_stop ;;
    *) usage ;;
esac
