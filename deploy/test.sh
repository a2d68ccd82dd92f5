#!/usr/bin/env bash
# The project's test command: installs and starts the real services (tansu as Kafka,
# Debian's clickhouse-server 18.16, the current ClickHouse engine via chDB), then builds
# everything and runs the whole test suite against them. Services this script started are
# stopped on exit (ARGUS_KEEP_SERVICES=1 keeps them); services already running are reused.
#
#   deploy/test.sh [CARGO_TEST_ARGS...] [-- TEST_BINARY_ARGS...]
#     e.g. deploy/test.sh -p bus restart -- --nocapture
#
# Ports: ARGUS_KAFKA_PORT (19092), ARGUS_CLICKHOUSE_PORT (18124),
#        ARGUS_CLICKHOUSE_MODERN_PORT (18125), ARGUS_SMTP_PORT (19025-19027).
#        State: $ARGUS_SERVICES_DIR (target/services).
# Exit status: cargo test's.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

kafka_port=${ARGUS_KAFKA_PORT:-19092}
ch_port=${ARGUS_CLICKHOUSE_PORT:-18124}
modern_port=${ARGUS_CLICKHOUSE_MODERN_PORT:-18125}

section() {
  printf '\n==== %s ====\n' "$*"
}

# The services this run started (stop script and port), in start order.
stop_scripts=()
stop_ports=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local i
  [ ${#stop_scripts[@]} -gt 0 ] || return 0
  if [ "${ARGUS_KEEP_SERVICES:-0}" = 1 ]; then
    section "services left running (ARGUS_KEEP_SERVICES=1)"
    return 0
  fi
  section "stopping the services this run started"
  for ((i = ${#stop_scripts[@]} - 1; i >= 0; i--)); do
    "$REPO/deploy/${stop_scripts[i]}" "${stop_ports[i]}" || true
  done
}
trap cleanup EXIT

# start VAR NAME PORT START_SCRIPT STOP_SCRIPT — start a service unless something already
# listens on PORT (then the start script only reports it); the address it prints goes to VAR.
start() {
  local var=$1 name=$2 port=$3 start=$4 stop=$5 addr
  if port_open 127.0.0.1 "$port"; then
    log "$name: port $port is already in use; reusing the running service"
  else
    stop_scripts+=("$stop")
    stop_ports+=("$port")
  fi
  addr=$("$REPO/deploy/$start" "$port")
  printf -v "$var" '%s' "$addr"
  export "${var?}"
}

section "installing services"
"$REPO/deploy/install-kafka.sh"
"$REPO/deploy/install-clickhouse.sh"
"$REPO/deploy/install-prometheus-tools.sh"
ARGUS_TEST_PYTHON=$("$REPO/deploy/install-test-tools.sh")
export ARGUS_TEST_PYTHON
export ARGUS_TEST_RSYSLOGD=/usr/sbin/rsyslogd

section "starting services (state in $STATE_DIR)"
export ARGUS_SERVICES_DIR="$STATE_DIR"
start ARGUS_TEST_KAFKA kafka "$kafka_port" start-kafka.sh stop-kafka.sh
start ARGUS_TEST_CLICKHOUSE_URL clickhouse "$ch_port" start-clickhouse.sh stop-clickhouse.sh
start ARGUS_TEST_CLICKHOUSE_MODERN_URL clickhouse-modern "$modern_port" \
  start-clickhouse-modern.sh stop-clickhouse-modern.sh
start ARGUS_TEST_NODE_EXPORTER node-exporter "${ARGUS_NODE_EXPORTER_PORT:-19100}" \
  start-node-exporter.sh stop-node-exporter.sh
start ARGUS_TEST_PROMETHEUS prometheus "${ARGUS_PROMETHEUS_PORT:-19090}" \
  start-prometheus.sh stop-prometheus.sh
smtp_port=${ARGUS_SMTP_PORT:-19025}
start ARGUS_TEST_SMTP smtp "$smtp_port" start-smtp.sh stop-smtp.sh
export ARGUS_TEST_SMTP_STARTTLS="127.0.0.1:$((smtp_port + 1))" \
  ARGUS_TEST_SMTP_TLS="127.0.0.1:$((smtp_port + 2))" \
  ARGUS_TEST_SMTP_DIR="$STATE_DIR/smtp-$smtp_port/mail" \
  ARGUS_TEST_SMTP_CA="$STATE_DIR/smtp-$smtp_port/ca.pem"
export ARGUS_TEST_PROMETHEUS_BIN=/usr/bin/prometheus
export ARGUS_TEST_PROMTOOL=/usr/bin/promtool
export ARGUS_TEST_AMTOOL=/usr/bin/amtool
export ARGUS_TEST_ALERTMANAGER=/usr/bin/prometheus-alertmanager
export ARGUS_TEST_KAFKA_START="$REPO/deploy/start-kafka.sh $kafka_port"
# The restart test crashes the broker (SIGKILL): tansu 0.6.0's SIGTERM path stops its
# storage task before its listener, panics in the group coordinator, and after such a
# stop its idempotent-producer check panics too (see README, "tansu").
export ARGUS_TEST_KAFKA_STOP="env ARGUS_STOP_SIGNAL=KILL $REPO/deploy/stop-kafka.sh $kafka_port"
export ARGUS_REQUIRE_SERVICES=1
env | grep -E '^ARGUS_(TEST_|REQUIRE_)' | sort

section "cargo build --workspace --all-targets"
cargo build --workspace --all-targets

# Arguments before a "--" go to cargo test, the rest to the test binaries. With -p/--package
# the run is limited to those packages instead of the whole workspace.
cargo_args=()
test_args=(--test-threads=2)
workspace=(--workspace)
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; test_args+=("$@"); break ;;
    -p | --package | --package=*) workspace=() ;;
  esac
  cargo_args+=("$1")
  shift
done

section cargo test "${workspace[@]}" "${cargo_args[@]}" -- "${test_args[@]}"
rc=0
cargo test --no-fail-fast "${workspace[@]}" "${cargo_args[@]}" -- "${test_args[@]}" || rc=$?
section "cargo test exit status: $rc"
exit "$rc"
