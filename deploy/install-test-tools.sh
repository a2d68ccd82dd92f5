#!/usr/bin/env bash
# Installs the real clients the collector tests drive: Debian's rsyslog (forwards to the
# syslog receiver) and a Python venv with a published Loki push client from PyPI
# (python-logging-loki); and Debian's python3-aiosmtpd and openssl for the test SMTP
# server (start-smtp.sh). Prints the venv's python on stdout. Idempotent.
#   venv: ${ARGUS_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/argus-test-venv}
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

missing=()
for pkg in rsyslog python3 python3-aiosmtpd openssl; do
  deb_installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi
[ -x /usr/sbin/rsyslogd ] || die "rsyslogd missing after installing rsyslog"
log "rsyslog $(dpkg-query -W -f='${Version}' rsyslog) installed"

venv=${ARGUS_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/argus-test-venv}
if ! "$venv/bin/python" -c 'import logging_loki' 2>/dev/null; then
  if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$venv" 2>/dev/null || {
      apt_install python3-venv
      /usr/bin/python3 -m venv "$venv"
    }
  fi
  log "pip install python-logging-loki==0.3.1 into $venv"
  "$venv/bin/pip" install -q 'python-logging-loki==0.3.1' >&2
fi
log "python-logging-loki ready in $venv"
echo "$venv/bin/python"
