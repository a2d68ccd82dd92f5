#!/usr/bin/env bash
# Starts the Kafka-protocol broker tansu in the background on 127.0.0.1:PORT, storing its
# log in a sqlite file under $STATE_DIR/kafka-PORT (durable across restarts). Waits until
# the port accepts connections and prints HOST:PORT. Idempotent.
#   start-kafka.sh [PORT]               default 19092
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19092}
addr="127.0.0.1:$port"
dir="$STATE_DIR/kafka-$port"
pidfile="$dir/tansu.pid"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if pid=$(pid_running "$pidfile"); then
  wait_for_port 127.0.0.1 "$port" 30 || die "tansu (pid $pid) runs but $addr does not accept connections; see $dir/tansu.log"
  log "tansu already running on $addr (pid $pid)"
  echo "$addr"
  exit 0
fi
if port_open 127.0.0.1 "$port"; then
  die "port $port is in use by a process this script did not start"
fi
command -v tansu >/dev/null 2>&1 || die "tansu is not installed; run deploy/install-kafka.sh"

mkdir -p "$dir"
# tansu resolves a sqlite:// URL relative to its working directory (even one that looks
# absolute: sqlite:///x/y.db is ./x/y.db), so it runs in $dir with sqlite://tansu.db.
# Every setting is a flag: tansu also reads a .env file (its working directory or above)
# and CLUSTER_ID, LISTENER_URL, STORAGE_ENGINE, ... from the environment; flags win.
# Topics are not created automatically (Metadata requests do not create them): clients
# create them with CreateTopics.
log "starting tansu on $addr, storage $dir/tansu.db"
(
  cd "$dir"
  start_background "$pidfile" "$dir/tansu.log" \
    env RUST_LOG="${ARGUS_TANSU_LOG:-warn}" \
    tansu broker \
    --cluster-id argus \
    --listener-url "tcp://$addr" \
    --advertised-listener-url "tcp://$addr" \
    --storage-engine "sqlite://tansu.db"
)

deadline=$((SECONDS + 30))
until port_open 127.0.0.1 "$port"; do
  if ! pid_running "$pidfile" >/dev/null; then
    tail -n 30 "$dir/tansu.log" >&2 || true
    die "tansu exited during start-up; log: $dir/tansu.log"
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "tansu did not listen on $addr within 30s; log: $dir/tansu.log"
  sleep 0.1
done
log "tansu is up (pid $(<"$pidfile"))"
echo "$addr"
