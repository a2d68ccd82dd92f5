#!/usr/bin/env bash
# Runs Argus on its embedded defaults (no Kafka, no ClickHouse): builds the release binary
# and starts it with its data under ${ARGUS_DATA_DIR:-<repo>/data}. Extra arguments go to
# `argus run`.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
cargo build --release
exec target/release/argus run --data-dir "${ARGUS_DATA_DIR:-$REPO/data}" "$@"
