#!/usr/bin/env bash
# Installs Debian's Prometheus tools the scraper's real-tool tests run against:
# prometheus (its own /metrics), prometheus-node-exporter and prometheus-alertmanager.
# Idempotent: does nothing when the binaries are already there. The packages' own
# services are not needed (start-node-exporter.sh / start-prometheus.sh start private
# instances on loopback ports); on a machine whose policy forbids starting services at
# install time (containers) they are not started at all.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

# binary package
tools=(
  "/usr/bin/prometheus prometheus"
  "/usr/bin/prometheus-node-exporter prometheus-node-exporter"
  "/usr/bin/prometheus-alertmanager prometheus-alertmanager"
)

missing=()
for entry in "${tools[@]}"; do
  read -r bin pkg <<<"$entry"
  [ -x "$bin" ] || missing+=("$pkg")
done
command -v curl >/dev/null 2>&1 || missing+=(curl)

if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

for entry in "${tools[@]}"; do
  read -r bin pkg <<<"$entry"
  [ -x "$bin" ] || die "$bin is still missing after installing $pkg"
  log "$pkg $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo '?') installed"
done
