#!/usr/bin/env bash
# Starts Debian's clickhouse-server (18.16) in the background on 127.0.0.1 with the
# configuration in deploy/clickhouse/, data and logs under $STATE_DIR/clickhouse-HTTP_PORT.
# Waits until /ping answers and prints the HTTP URL. Idempotent.
#   start-clickhouse.sh [HTTP_PORT]     default 18124; native TCP port: HTTP_PORT+1000
#                                       (or $ARGUS_CLICKHOUSE_TCP_PORT)
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-18124}
tcp_port=${ARGUS_CLICKHOUSE_TCP_PORT:-$((port + 1000))}
url="http://127.0.0.1:$port"
dir="$STATE_DIR/clickhouse-$port"
pidfile="$dir/clickhouse-server.pid"

ping_ok() {
  [ "$(curl -s --max-time 2 "$url/ping" 2>/dev/null)" = "Ok." ]
}

if pid=$(pid_running "$pidfile"); then
  if wait_for_http "$url/ping" 60 && ping_ok; then
    log "clickhouse-server already running (pid $pid)"
    echo "$url"
    exit 0
  fi
  die "clickhouse-server (pid $pid) runs but $url/ping does not answer; see $dir/log"
fi
if port_open 127.0.0.1 "$port"; then
  die "port $port is in use by a process this script did not start"
fi

server=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
[ -x "$server" ] || die "clickhouse-server is not installed; run deploy/install-clickhouse.sh"

mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log}
# Settings after `--` override the configuration file. The server runs as root fine
# (18.16 does not refuse it); it must not be started with --daemon, so that the pid
# recorded is the server's own.
log "starting clickhouse-server on $url (tcp $tcp_port), state in $dir"
start_background "$pidfile" "$dir/log/stdout.log" \
  "$server" --config-file="$REPO/deploy/clickhouse/config.xml" -- \
  --http_port="$port" \
  --tcp_port="$tcp_port" \
  --path="$dir/data/" \
  --tmp_path="$dir/tmp/" \
  --user_files_path="$dir/user_files/" \
  --format_schema_path="$dir/format_schemas/" \
  --logger.log="$dir/log/clickhouse-server.log" \
  --logger.errorlog="$dir/log/clickhouse-server.err.log"

deadline=$((SECONDS + 60))
until ping_ok; do
  if ! pid_running "$pidfile" >/dev/null; then
    tail -n 30 "$dir/log/stdout.log" "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
    die "clickhouse-server exited during start-up; logs in $dir/log"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "clickhouse-server did not answer $url/ping within 60s; logs in $dir/log"
  fi
  sleep 0.2
done
log "clickhouse-server is up (pid $(<"$pidfile"))"
echo "$url"
