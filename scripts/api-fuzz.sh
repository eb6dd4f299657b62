#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis: starts the real binary on
# 127.0.0.1 (embedded store in a temporary directory) with access control on (REQUIRE_AUTH, one
# admin token, which schemathesis sends on every request) and fails on any 5xx, any status,
# content type or body that the document does not declare. Bounded: a fixed seed, a fixed
# number of examples per operation and a time budget.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-api
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi
# `scripts/api-fuzz.sh --install`: only the install above (scripts/test.sh runs it beside the build).
[[ "${1:-}" == "--install" ]] && exit 0

cargo build --locked --features lambda --quiet
data_dir=$(mktemp -d)
log=$(mktemp)
token="fuzz-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# Rate limits off: the fuzzer's request rate is not what is under test here.
API_TOKENS="admin:$token" REQUIRE_AUTH=true RATE_LIMIT_READS_PER_SECOND=0 RATE_LIMIT_WRITES_PER_SECOND=0 \
  BIND_ADDR=127.0.0.1 PORT=0 DATA_DIR="$data_dir" LOG_FORMAT=json RUST_LOG=warn,telemetry=info \
  "${CARGO_TARGET_DIR:-target}/debug/telemetry" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data_dir" "$log"' EXIT

port=""
for _ in $(seq 1 100); do
  port=$(grep -o '"port":[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start:"; cat "$log"; exit 1; }

# One worker: CPython 3.11's AST constructor keeps its recursion depth per interpreter, not per
# thread, so hypothesis parsing lambda sources in two threads at once fails at random with
# "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). The run is
# bounded by --max-examples and --max-time, not by the number of workers.
"$VENV/bin/st" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples 40 --seed 20211004 --max-time 90 --workers 1 \
  --request-timeout 10 \
  --header "Authorization: Bearer $token"
