#!/usr/bin/env bash
# Starts Debian's prometheus in the background on 127.0.0.1 with a minimal configuration
# (it scrapes itself every 15s), configuration, TSDB and log under
# $STATE_DIR/prometheus-PORT. Waits until /-/ready answers and prints HOST:PORT.
# Idempotent: a Prometheus this script started and that still answers is reused.
#   start-prometheus.sh [PORT]     default 19090
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19090}
addr="127.0.0.1:$port"
dir="$STATE_DIR/prometheus-$port"
pidfile="$dir/prometheus.pid"

if pid=$(pid_running "$pidfile"); then
  if wait_for_http "http://$addr/-/ready" 60; then
    log "prometheus already running (pid $pid)"
    echo "$addr"
    exit 0
  fi
  die "prometheus (pid $pid) runs but http://$addr/-/ready does not answer; see $dir/prometheus.log"
fi
if port_open 127.0.0.1 "$port"; then
  die "port $port is in use by a process this script did not start"
fi

bin=/usr/bin/prometheus
[ -x "$bin" ] || die "$bin is not installed; run deploy/install-prometheus-tools.sh"

mkdir -p "$dir/data"
cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['$addr']
YAML

log "starting prometheus on $addr, state in $dir"
start_background "$pidfile" "$dir/prometheus.log" \
  "$bin" \
  --config.file="$dir/prometheus.yml" \
  --storage.tsdb.path="$dir/data" \
  --storage.tsdb.retention.time=1d \
  --web.listen-address="$addr"

deadline=$((SECONDS + 60))
until curl -sf -o /dev/null --max-time 2 "http://$addr/-/ready"; do
  if ! pid_running "$pidfile" >/dev/null; then
    tail -n 30 "$dir/prometheus.log" >&2 || true
    die "prometheus exited during start-up; log in $dir/prometheus.log"
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "prometheus did not answer within 60s; log in $dir/prometheus.log"
  sleep 0.2
done
log "prometheus is up (pid $(<"$pidfile"))"
echo "$addr"
