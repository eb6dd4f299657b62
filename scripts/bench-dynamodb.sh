#!/usr/bin/env bash
# The DynamoDB scenarios of the HTTP load benchmark against DynamoDB Local:
#   scripts/bench-dynamodb.sh [http_load args, e.g. --seconds 10 or a filter]
#
# Runs `cargo bench --bench http_load -- dynamodb` (only the DynamoDB scenarios; the table is
# printed and written to target/bench-results/http_load.json) beside a DynamoDB Local of its own
# (`run` in scripts/dynamodb-local.sh: a private network namespace when this user may create
# one), with BENCH_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT, the AWS variables the SDK needs and
# BENCH_DYNAMODB_PID (the benchmark reports the emulator's CPU per scenario). Other variables
# reach the benchmark and the server as usual (BENCH_SECONDS, DYNAMODB_TIMEOUT_MS, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build first: a private namespace has no network for cargo.
cargo bench --locked --bench http_load --no-run
# shellcheck disable=SC2016 # expanded by the inner shell, beside DynamoDB Local
exec scripts/dynamodb-local.sh run 18100 -- bash -c '
    export BENCH_DYNAMODB_ENDPOINT="$AWS_ENDPOINT_URL" BENCH_DYNAMODB_PID="$DYNAMODB_LOCAL_PID"
    exec cargo bench --locked --bench http_load -- dynamodb "$@"' bench-dynamodb "$@"
