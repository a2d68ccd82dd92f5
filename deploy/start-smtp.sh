#!/usr/bin/env bash
# Starts the test SMTP server (deploy/smtp_server.py on Debian's python3-aiosmtpd) in the
# background on 127.0.0.1, state under $STATE_DIR/smtp-PORT. Prints HOST:PORT of the
# plain listener once all three listen:
#   PORT     plain SMTP (no STARTTLS, no AUTH)
#   PORT+1   STARTTLS required, then AUTH CRAM-MD5/LOGIN/PLAIN required
#   PORT+2   implicit TLS (SMTPS), AUTH PLAIN required
# Received mail: $STATE_DIR/smtp-PORT/mail (NAME.eml + NAME.json per message). The server
# certificate (for localhost and 127.0.0.1) is signed by a CA the script generates with
# openssl: $STATE_DIR/smtp-PORT/ca.pem. Credentials: ARGUS_SMTP_USER (argus) and
# ARGUS_SMTP_PASSWORD (argus-password). ARGUS_SMTP_EXIT_WITH=PID: the server exits when
# that process does (a test that starts the server itself).
# Idempotent: a server this script started that still listens is reused.
#   start-smtp.sh [PORT]     default 19025
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

port=${1:-19025}
addr="127.0.0.1:$port"
dir="$STATE_DIR/smtp-$port"
pidfile="$dir/smtp.pid"
ports=("$port" "$((port + 1))" "$((port + 2))")

if pid=$(pid_running "$pidfile"); then
  for p in "${ports[@]}"; do
    wait_for_port 127.0.0.1 "$p" 10 || die "smtp server (pid $pid) runs but 127.0.0.1:$p does not listen; see $dir/smtp.log"
  done
  log "smtp server already running (pid $pid)"
  echo "$addr"
  exit 0
fi
for p in "${ports[@]}"; do
  if port_open 127.0.0.1 "$p"; then
    die "port $p is in use by a process this script did not start"
  fi
done

python=/usr/bin/python3
"$python" -c 'import aiosmtpd' 2>/dev/null ||
  die "python3-aiosmtpd is not installed; run deploy/install-test-tools.sh"
command -v openssl >/dev/null || die "openssl is not installed"

mkdir -p "$dir/mail"
if [ ! -s "$dir/server.pem" ] || [ ! -s "$dir/ca.pem" ]; then
  log "generating a test CA and a server certificate for localhost in $dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Argus test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 3650 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  rm -f "$dir/server.csr"
fi

log "starting the smtp server on 127.0.0.1:${ports[0]}-${ports[2]}, state in $dir"
start_background "$pidfile" "$dir/smtp.log" \
  "$python" "$REPO/deploy/smtp_server.py" \
  --port "$port" --dir "$dir/mail" --cert "$dir/server.pem" --key "$dir/server.key" \
  --user "${ARGUS_SMTP_USER:-argus}" --password "${ARGUS_SMTP_PASSWORD:-argus-password}" \
  --exit-with "${ARGUS_SMTP_EXIT_WITH:-0}"

for p in "${ports[@]}"; do
  deadline=$((SECONDS + 30))
  until port_open 127.0.0.1 "$p"; do
    if ! pid_running "$pidfile" >/dev/null; then
      tail -n 30 "$dir/smtp.log" >&2 || true
      die "the smtp server exited during start-up; log in $dir/smtp.log"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "127.0.0.1:$p did not listen within 30s; log in $dir/smtp.log"
    sleep 0.1
  done
done
log "smtp server is up (pid $(<"$pidfile"))"
echo "$addr"
