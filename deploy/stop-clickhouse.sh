#!/usr/bin/env bash
# Stops the clickhouse-server started by start-clickhouse.sh and waits until it is gone.
#   stop-clickhouse.sh [HTTP_PORT]      default 18124
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-18124}
stop_pidfile "clickhouse-server on port $port" "$STATE_DIR/clickhouse-$port/clickhouse-server.pid" 60
