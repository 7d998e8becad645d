#!/usr/bin/env bash
# What `make run` does after building: starts the stack and the services,
# plays the demo (scripts/demo.py), then keeps serving on
# http://127.0.0.1:$LIKES_HTTP_PORT until Ctrl-C, which stops everything.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LIKES_ROOT"

stop_everything() {
    trap - INT TERM EXIT
    echo
    echo "Stopping the services and the stack..."
    scripts/services.sh stop || true
    scripts/stack.sh stop || true
}
trap stop_everything INT TERM EXIT

scripts/stack.sh start
scripts/services.sh start

echo
python3 scripts/demo.py || echo "The demo reported a problem; the logs are in $LIKES_RUN_DIR/logs."

cat <<MSG

Serving on http://127.0.0.1:$LIKES_HTTP_PORT (logs in $LIKES_RUN_DIR/logs).
Open the app at http://127.0.0.1:$LIKES_HTTP_PORT/ in a browser.
Read the topics with: make console TOPIC=likes   (or TOPIC=like-deltas)
Press Ctrl-C to stop everything.
MSG

# Wait on something cheap that Ctrl-C interrupts.
while sleep 3600; do :; done
