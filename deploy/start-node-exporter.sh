#!/usr/bin/env bash
# Starts Debian's prometheus-node-exporter in the background on 127.0.0.1 with a few
# collectors (cpu, meminfo, loadavg, time, uname, stat), its pid file and log under
# $STATE_DIR/node-exporter-PORT. Waits until /metrics answers and prints HOST:PORT.
# Idempotent: a node_exporter this script started and that still answers is reused.
#   start-node-exporter.sh [PORT]     default 19100
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19100}
addr="127.0.0.1:$port"
dir="$STATE_DIR/node-exporter-$port"
pidfile="$dir/node-exporter.pid"

if pid=$(pid_running "$pidfile"); then
  if wait_for_http "http://$addr/metrics" 30; then
    log "node_exporter already running (pid $pid)"
    echo "$addr"
    exit 0
  fi
  die "node_exporter (pid $pid) runs but http://$addr/metrics does not answer; see $dir/node-exporter.log"
fi
if port_open 127.0.0.1 "$port"; then
  die "port $port is in use by a process this script did not start"
fi

bin=/usr/bin/prometheus-node-exporter
[ -x "$bin" ] || die "$bin is not installed; run deploy/install-prometheus-tools.sh"

mkdir -p "$dir"
log "starting node_exporter on $addr, state in $dir"
start_background "$pidfile" "$dir/node-exporter.log" \
  "$bin" \
  --web.listen-address="$addr" \
  --collector.disable-defaults \
  --collector.cpu \
  --collector.meminfo \
  --collector.loadavg \
  --collector.time \
  --collector.uname \
  --collector.stat

deadline=$((SECONDS + 30))
until curl -sf -o /dev/null --max-time 2 "http://$addr/metrics"; do
  if ! pid_running "$pidfile" >/dev/null; then
    tail -n 30 "$dir/node-exporter.log" >&2 || true
    die "node_exporter exited during start-up; log in $dir/node-exporter.log"
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "node_exporter did not answer within 30s; log in $dir/node-exporter.log"
  sleep 0.2
done
log "node_exporter is up (pid $(<"$pidfile"))"
echo "$addr"
