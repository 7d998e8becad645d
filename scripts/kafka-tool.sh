#!/usr/bin/env bash
# Runs a Kafka command-line tool from the jars in .deps/kafka/libs:
#
#   scripts/kafka-tool.sh MAINCLASS [ARGS...]
#   scripts/kafka-tool.sh org.apache.kafka.tools.TopicCommand \
#       --bootstrap-server 127.0.0.1:19092 --describe --topic likes
#
# The tool logs warnings and errors to stderr only. The broker address of the
# local stack is in LIKES_KAFKA_BROKERS (source scripts/env.sh).
set -euo pipefail

LIKES_LOG_TAG=kafka-tool
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. "$LIKES_ROOT/scripts/common.sh"

[ "$#" -ge 1 ] || die "usage: $0 MAINCLASS [ARGS...]"
compgen -G "$LIKES_KAFKA_LIBS/*.jar" >/dev/null \
    || die "no Kafka jars in $LIKES_KAFKA_LIBS: run scripts/install-deps.sh"

main="$1"
shift
# Short-lived tools start faster without the optimising compiler.
exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$LIKES_ROOT/stack/kafka/log4j-tools.properties" \
    -cp "$LIKES_KAFKA_LIBS/*" "$main" "$@"
