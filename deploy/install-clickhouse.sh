#!/usr/bin/env bash
# Installs Debian's clickhouse-server/clickhouse-client (18.16) and what the current engine
# (../shared/tools/clickhouse-modern, chDB in a Python venv made on its first start) needs:
# python3 with a working `python3 -m venv`, and curl. Idempotent.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

missing=()
for pkg in clickhouse-server clickhouse-client tzdata curl; do
  deb_installed "$pkg" || missing+=("$pkg")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi
log "clickhouse-server $(dpkg-query -W -f='${Version}' clickhouse-server) installed"

[ -x "$SHARED_DIR/tools/clickhouse-modern/start" ] ||
  log "warning: $SHARED_DIR/tools/clickhouse-modern/start not found; start-clickhouse-modern.sh will fail"

# The modern engine's start script makes its venv with `python3 -m venv` on first use.
modern_venv=${XDG_CACHE_HOME:-$HOME/.cache}/clickhouse-modern-venv
if "$modern_venv/bin/python" -c 'import chdb' 2>/dev/null; then
  log "clickhouse-modern's venv is ready ($modern_venv)"
  exit 0
fi
venv_works() {
  local tmp rc=0
  tmp=$(mktemp -d)
  python3 -m venv "$tmp/venv" >/dev/null 2>&1 || rc=$?
  rm -rf "$tmp"
  return "$rc"
}
if ! venv_works; then
  apt_install python3-venv
  venv_works || die "python3 -m venv still fails after installing python3-venv"
fi
log "python3 -m venv works"
