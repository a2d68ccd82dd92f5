#!/usr/bin/env bash
# Stops the node_exporter started by start-node-exporter.sh and waits until it is gone.
#   stop-node-exporter.sh [PORT]     default 19100
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19100}
stop_pidfile "node_exporter on port $port" "$STATE_DIR/node-exporter-$port/node-exporter.pid" 30
