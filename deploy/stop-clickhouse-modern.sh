#!/usr/bin/env bash
# Stops the clickhouse-modern server started by start-clickhouse-modern.sh and waits until
# it is gone.
#   stop-clickhouse-modern.sh [PORT]    default 18125
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-18125}
stop_pidfile "clickhouse-modern on port $port" "$STATE_DIR/clickhouse-modern-$port/server.pid" 30
