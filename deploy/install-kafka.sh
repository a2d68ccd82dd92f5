#!/usr/bin/env bash
# Installs the Kafka-protocol broker tansu 0.6.0 (with the sqlite storage engine) via
# `cargo install`, unless that version is already installed. Idempotent.
# A build from scratch takes several minutes and needs a C compiler.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

version=0.6.0
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# `tansu --version` prints "tansu 0.6.0".
if command -v tansu >/dev/null 2>&1 && [ "$(tansu --version 2>/dev/null)" = "tansu $version" ]; then
  log "tansu $version is installed ($(command -v tansu))"
  exit 0
fi

command -v cargo >/dev/null 2>&1 || die "cargo is not installed (install Rust with rustup first)"
if ! command -v cc >/dev/null 2>&1; then
  log "installing a C toolchain (tansu's dependencies build C code)"
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show build-essential >/dev/null 2>&1 || as_root apt-get update -q
  as_root apt-get install -y -q build-essential pkg-config >&2
fi

log "cargo install tansu $version (this takes a while)"
cargo install tansu --version "$version" --locked --features dynostore,libsql >&2
[ "$(tansu --version)" = "tansu $version" ] || die "installed tansu reports '$(tansu --version)'"
log "tansu $version installed ($(command -v tansu))"
