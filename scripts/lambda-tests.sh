#!/usr/bin/env bash
# The built telemetry-lambda binary against a Lambda Runtime API stand-in, on DynamoDB Local
# (tests/lambda.rs): `scripts/lambda-tests.sh [extra cargo test args]`.
#
# As scripts/dynamodb-tests.sh: DynamoDB Local (scripts/dynamodb-local.sh) and the tests run in a
# private network namespace with only a loopback interface when this user may create one (root
# and a working `unshare -n`), else in the ordinary namespace with every client on 127.0.0.1.
# The tests build and spawn the binary themselves (cargo's CARGO_BIN_EXE_telemetry-lambda);
# TELEMETRY_LAMBDA_BIN=<path> runs another build of it (the cold-start figure of BENCHMARKS.md:
# `TELEMETRY_LAMBDA_BIN=target/release/telemetry-lambda scripts/lambda-tests.sh --ignored
# --nocapture cold_start`).
#
# Environment: DYNAMODB_LOCAL_PORT (default 8000 in a private namespace, 18000 otherwise);
# DYNAMODB_TESTS_NO_UNSHARE=1 to skip the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

features=(--features lambda,dynamodb-tests)
if [[ "${1:-}" == "--inside-namespace" ]]; then
    shift
    ip link set lo up
    port="${DYNAMODB_LOCAL_PORT:-8000}"
    offline=(--offline)
else
    scripts/dynamodb-local.sh install
    # Build first: a private namespace has no network for cargo.
    cargo test --locked "${features[@]}" --no-run --test lambda
    if [[ -z "${DYNAMODB_TESTS_NO_UNSHARE:-}" && "$(id -u)" == 0 ]] && command -v ip >/dev/null &&
        unshare -n true 2>/dev/null; then
        echo "running DynamoDB Local and the Lambda tests in a private network namespace"
        exec unshare -n "$0" --inside-namespace "$@"
    fi
    port="${DYNAMODB_LOCAL_PORT:-18000}"
    offline=()
fi

scripts/dynamodb-local.sh start "$port"
trap 'scripts/dynamodb-local.sh stop "$port"' EXIT
eval "$(scripts/dynamodb-local.sh env "$port")"
export TELEMETRY_TEST_STORAGE=dynamodb
# The service runs in-process on libtest's threads (see scripts/dynamodb-tests.sh).
export RUST_MIN_STACK=8388608
cargo test --locked "${features[@]}" "${offline[@]}" --test lambda -- "$@"
