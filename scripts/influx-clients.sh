#!/usr/bin/env bash
# The official InfluxDB client libraries (PyPI influxdb-client for InfluxDB 2, influxdb for
# InfluxDB 1) against the real binary: tests/clients/. Creates its own venv on first run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-clients
if [ ! -x "$VENV/bin/pytest" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/clients/requirements.txt
fi
# `scripts/influx-clients.sh --install`: only the install above (scripts/test.sh runs it beside
# the build).
[[ "${1:-}" == "--install" ]] && exit 0

cargo build --locked --features lambda --quiet
TELEMETRY_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/telemetry" "$VENV/bin/pytest" -q -p no:cacheprovider tests/clients
