# shellcheck shell=bash
# Shared helpers for the deploy/ scripts. Source it; do not execute it.
#
#   REPO          the repository root (the parent of deploy/)
#   STATE_DIR     where services keep pid files, data and logs:
#                 ${ARGUS_SERVICES_DIR:-$REPO/target/services}
#   SHARED_DIR    the shared tools beside the checkout: ${ARGUS_SHARED_DIR:-$REPO/../shared}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${ARGUS_SERVICES_DIR:-$REPO/target/services}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
SHARED_DIR=${ARGUS_SHARED_DIR:-$REPO/../shared}

# log MESSAGE... — progress to stderr, so stdout stays for the printed address.
log() {
  printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "$(basename "$0")" "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# as_root CMD... — run a command as root (directly, or through sudo).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root for: $*"
  fi
}

# port_open HOST PORT — true if a TCP connection to HOST:PORT succeeds.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port HOST PORT TIMEOUT_SECONDS
wait_for_port() {
  local host=$1 port=$2 timeout=$3 deadline
  deadline=$((SECONDS + timeout))
  until port_open "$host" "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$host:$port did not accept connections within ${timeout}s"
      return 1
    fi
    sleep 0.2
  done
}

# wait_for_http URL TIMEOUT_SECONDS — until URL answers with a 2xx status.
wait_for_http() {
  local url=$1 timeout=$2 deadline
  deadline=$((SECONDS + timeout))
  until curl -sf -o /dev/null --max-time 2 "$url"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$url did not answer within ${timeout}s"
      return 1
    fi
    sleep 0.2
  done
}

# proc_alive PID — true if PID is a live (not zombie) process.
proc_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# pid_running PIDFILE — true if PIDFILE names a live process; prints the pid.
pid_running() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] && proc_alive "$pid" && echo "$pid"
}

# wait_gone PID TIMEOUT_SECONDS — until the process has exited.
wait_gone() {
  local deadline=$((SECONDS + $2))
  while proc_alive "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# stop_pidfile NAME PIDFILE [TIMEOUT_SECONDS] — SIGTERM the process, wait until it is gone
# (SIGKILL after the timeout), remove the pid file. Succeeds if nothing was running.
stop_pidfile() {
  local name=$1 pidfile=$2 timeout=${3:-30} pid
  if ! pid=$(pid_running "$pidfile"); then
    rm -f "$pidfile"
    log "$name is not running"
    return 0
  fi
  log "stopping $name (pid $pid, SIG${ARGUS_STOP_SIGNAL:-TERM})"
  kill -"${ARGUS_STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$timeout"; then
    log "$name did not stop within ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "$name (pid $pid) survived SIGKILL"
  fi
  rm -f "$pidfile"
  log "$name stopped"
}

# start_background PIDFILE LOGFILE CMD... — start CMD in a session of its own (so signals
# to the caller's process group do not reach it), detached from the terminal, output
# appended to LOGFILE. The pid written to PIDFILE is CMD's own.
start_background() {
  local pidfile=$1 logfile=$2
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
    >>"$logfile" 2>&1 </dev/null &
  for _ in $(seq 50); do
    [ -s "$pidfile" ] && return 0
    sleep 0.1
  done
  die "could not start: $* (no pid file after 5s; see $logfile)"
}

# apt_install PKG... — apt-get install, refreshing the package lists first only when a
# package is unknown (a fresh machine).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local pkg
  for pkg in "$@"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
      log "apt-get update ($pkg is not in the package lists)"
      as_root apt-get update -q
      break
    fi
  done
  log "apt-get install -y $*"
  as_root apt-get install -y -q "$@" >&2
}

# deb_installed PKG — true if the Debian package is installed.
deb_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
