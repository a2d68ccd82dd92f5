#!/usr/bin/env bash
# Stops the tansu broker started by start-kafka.sh and waits until the process is gone
# (its storage stays; the next start-kafka.sh on the same port reuses it).
#   stop-kafka.sh [PORT]                default 19092
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19092}
stop_pidfile "tansu on port $port" "$STATE_DIR/kafka-$port/tansu.pid" 30
