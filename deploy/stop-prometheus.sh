#!/usr/bin/env bash
# Stops the prometheus started by start-prometheus.sh and waits until it is gone.
#   stop-prometheus.sh [PORT]     default 19090
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19090}
stop_pidfile "prometheus on port $port" "$STATE_DIR/prometheus-$port/prometheus.pid" 60
