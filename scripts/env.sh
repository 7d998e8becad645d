# Source this file to get the configuration of the local stack and services:
#
#   . scripts/env.sh
#
# Every variable keeps the value it already has in the environment; only unset
# ones get the defaults below. Safe to source from an interactive shell: it
# sets no shell options and exits nothing.

LIKES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LIKES_ROOT

: "${LIKES_RUN_DIR:=$LIKES_ROOT/run}"
# Kafka and Postgres are handed absolute paths, so resolve a relative override.
case "$LIKES_RUN_DIR" in
    /*) ;;
    *) LIKES_RUN_DIR="$PWD/$LIKES_RUN_DIR" ;;
esac
export LIKES_RUN_DIR

: "${LIKES_KAFKA_PORT:=19092}"
: "${LIKES_KAFKA_CONTROLLER_PORT:=19093}"
: "${LIKES_KAFKA_PARTITIONS:=6}"
: "${LIKES_KAFKA_HEAP_OPTS:=-Xms512m -Xmx1g}"
: "${LIKES_KAFKA_BROKERS:=127.0.0.1:$LIKES_KAFKA_PORT}"
: "${LIKES_KAFKA_LIBS:=$LIKES_ROOT/.deps/kafka/libs}"
export LIKES_KAFKA_PORT LIKES_KAFKA_CONTROLLER_PORT LIKES_KAFKA_PARTITIONS
export LIKES_KAFKA_HEAP_OPTS LIKES_KAFKA_BROKERS LIKES_KAFKA_LIBS

: "${LIKES_REDIS_HOST:=127.0.0.1}"
: "${LIKES_REDIS_PORT:=16379}"
export LIKES_REDIS_HOST LIKES_REDIS_PORT

: "${LIKES_PG_PORT:=15432}"
: "${LIKES_PG_DSN:=host=127.0.0.1 port=$LIKES_PG_PORT dbname=likes user=likes connect_timeout=5}"
export LIKES_PG_PORT LIKES_PG_DSN

: "${LIKES_HTTP_PORT:=8080}"
: "${LIKES_MEDIA_DIR:=$LIKES_RUN_DIR/media}"
: "${LIKES_APP_DIR:=$LIKES_ROOT/app/dist}"
: "${LIKES_BIN_DIR:=$LIKES_ROOT/build/bin}"
export LIKES_HTTP_PORT LIKES_MEDIA_DIR LIKES_APP_DIR LIKES_BIN_DIR

# The secret that signs user tokens is made once per run directory and kept
# across restarts and resets, so tokens signed for a load test stay valid.
likes_token_secret_file="$LIKES_RUN_DIR/token-secret"
if [ -z "${LIKES_TOKEN_SECRET:-}" ]; then
    if [ ! -s "$likes_token_secret_file" ]; then
        mkdir -p "$LIKES_RUN_DIR"
        (
            umask 077
            od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$likes_token_secret_file.tmp"
            mv "$likes_token_secret_file.tmp" "$likes_token_secret_file"
        )
    fi
    LIKES_TOKEN_SECRET="$(cat "$likes_token_secret_file")"
fi
export LIKES_TOKEN_SECRET
unset likes_token_secret_file
