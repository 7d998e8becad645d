#!/usr/bin/env bash
# Prints every committed record of a topic of the local broker, from the
# beginning, with its partition, offset, timestamp and key:
#
#   scripts/console.sh TOPIC [EXTRA ARGS...]
#   scripts/console.sh likes --max-messages 10 --timeout-ms 5000
#
# Extra arguments go to Kafka's console consumer as they are. Records of
# aborted transactions are not shown (read_committed).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if [ "$#" -lt 1 ]; then
    echo "usage: $0 TOPIC [EXTRA ARGS...]" >&2
    exit 2
fi

topic="$1"
shift
exec "$LIKES_ROOT/scripts/kafka-tool.sh" org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server "$LIKES_KAFKA_BROKERS" --topic "$topic" --from-beginning \
    --isolation-level read_committed \
    --property print.timestamp=true --property print.partition=true \
    --property print.offset=true --property print.key=true \
    "$@"
