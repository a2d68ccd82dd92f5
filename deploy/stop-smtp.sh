#!/usr/bin/env bash
# Stops the smtp server started by start-smtp.sh and waits until it is gone.
#   stop-smtp.sh [PORT]     default 19025
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19025}
stop_pidfile "smtp server on port $port" "$STATE_DIR/smtp-$port/smtp.pid" 30
