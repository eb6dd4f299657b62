#!/usr/bin/env bash
# The DynamoDB scenarios of the HTTP load benchmark against DynamoDB Local:
#   scripts/bench-dynamodb.sh [http_load args, e.g. --seconds 10 or a filter]
#
# Installs and starts DynamoDB Local (scripts/dynamodb-local.sh), sets
# BENCH_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT and the AWS variables the SDK needs, and runs
# `cargo bench --bench http_load -- dynamodb` (only the DynamoDB scenarios; the table is printed
# and written to target/bench-results/http_load.json). DynamoDB Local is stopped at the end.
#
# DynamoDB Local binds every interface. When this user may create a network namespace (root and
# a working `unshare -n`), DynamoDB Local, the server and the benchmark run inside a private one
# with only a loopback interface; otherwise in the ordinary namespace, where every client only
# connects to 127.0.0.1.
#
# Environment: DYNAMODB_LOCAL_PORT (default 8000 in a private namespace, 18100 otherwise);
# DYNAMODB_TESTS_NO_UNSHARE=1 to skip the namespace. Other variables reach the benchmark and
# the server as usual (BENCH_SECONDS, DYNAMODB_TIMEOUT_MS, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--inside-namespace" ]]; then
    shift
    ip link set lo up
    port="${DYNAMODB_LOCAL_PORT:-8000}"
    offline=(--offline)
else
    scripts/dynamodb-local.sh install
    # Build first: a private namespace has no network for cargo.
    cargo bench --locked --bench http_load --no-run
    if [[ -z "${DYNAMODB_TESTS_NO_UNSHARE:-}" && "$(id -u)" == 0 ]] && command -v ip >/dev/null &&
        unshare -n true 2>/dev/null; then
        echo "running DynamoDB Local and the benchmark in a private network namespace"
        exec unshare -n "$0" --inside-namespace "$@"
    fi
    port="${DYNAMODB_LOCAL_PORT:-18100}"
    offline=()
fi

scripts/dynamodb-local.sh start "$port"
trap 'scripts/dynamodb-local.sh stop "$port"' EXIT
eval "$(scripts/dynamodb-local.sh env "$port")"
export BENCH_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
# Lets the benchmark report the emulator's CPU per scenario.
BENCH_DYNAMODB_PID="$(cat .dynamodb-local/run/"$port".pid)"
export BENCH_DYNAMODB_PID
cargo bench --locked "${offline[@]}" --bench http_load -- dynamodb "$@"
