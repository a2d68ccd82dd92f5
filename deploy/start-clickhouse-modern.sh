#!/usr/bin/env bash
# Starts the current ClickHouse engine (chDB behind ClickHouse's HTTP interface) with
# $SHARED_DIR/tools/clickhouse-modern/start, data under $STATE_DIR/clickhouse-modern-PORT.
# Prints its URL. Idempotent. The first start creates the tool's Python venv (from PyPI)
# under ${XDG_CACHE_HOME:-~/.cache}.
#   start-clickhouse-modern.sh [PORT]   default 18125
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-18125}
url="http://127.0.0.1:$port"
dir="$STATE_DIR/clickhouse-modern-$port"
pidfile="$dir/server.pid"
start="$SHARED_DIR/tools/clickhouse-modern/start"

# find_server_pid — the pid of the tool's server.py serving $port from $dir/data.
find_server_pid() {
  local f pid args
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    args=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
    case "$args" in
      *"server.py --port $port --path $dir/data "*) echo "$pid" && return 0 ;;
    esac
  done
  return 1
}

if curl -sf -o /dev/null --max-time 2 "$url/ping"; then
  if ! pid_running "$pidfile" >/dev/null && pid=$(find_server_pid); then
    echo "$pid" >"$pidfile"
  fi
  log "clickhouse-modern already answers on $url"
  echo "$url"
  exit 0
fi
if port_open 127.0.0.1 "$port"; then
  die "port $port is in use by a process that does not answer /ping"
fi
[ -x "$start" ] || die "$start not found (the shared tools sit beside the checkout, at \$REPO/../shared)"

mkdir -p "$dir"
log "starting clickhouse-modern on $url, state in $dir (log: $dir/data.log)"
"$start" "$port" "$dir/data" >/dev/null
pid=$(find_server_pid) || die "clickhouse-modern answers on $url, but its process was not found"
echo "$pid" >"$pidfile"
log "clickhouse-modern is up (pid $pid)"
echo "$url"
