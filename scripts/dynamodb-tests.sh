#!/usr/bin/env bash
# The tests that need DynamoDB Local, against one emulator: the contract suite (tests/api), the
# DynamoDB-only tests (tests/dynamodb.rs) and the built telemetry-lambda binary against a Lambda
# Runtime API stand-in (tests/lambda.rs): `scripts/dynamodb-tests.sh [extra cargo test args]`.
# DYNAMODB_TEST_TARGETS (default `--test api --test dynamodb --test lambda`) narrows the targets.
#
# DynamoDB Local binds every interface. When this user may create a network namespace (root and
# a working `unshare -n`), the server *and* the tests run inside a private one that has only a
# loopback interface, so nothing outside can reach the emulator. Otherwise they run in the
# ordinary namespace and the clients only ever connect to 127.0.0.1.
#
# Environment: DYNAMODB_LOCAL_PORT (default 8000 in a private namespace, 18000 otherwise);
# DYNAMODB_TESTS_NO_UNSHARE=1 to skip the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

# The same features as every other cargo command of scripts/test.sh, so the library and the test
# binaries are compiled once for the whole suite.
features=(--features lambda)
read -r -a targets <<<"${DYNAMODB_TEST_TARGETS:---test api --test dynamodb --test lambda}"

if [[ "${1:-}" == "--inside-namespace" ]]; then
    shift
    ip link set lo up
    port="${DYNAMODB_LOCAL_PORT:-8000}"
    offline=(--offline)
else
    scripts/dynamodb-local.sh install
    # Build first: a private namespace has no network for cargo.
    cargo test --locked "${features[@]}" --no-run "${targets[@]}"
    if [[ -z "${DYNAMODB_TESTS_NO_UNSHARE:-}" && "$(id -u)" == 0 ]] && command -v ip >/dev/null &&
        unshare -n true 2>/dev/null; then
        echo "running DynamoDB Local and the tests in a private network namespace"
        exec unshare -n "$0" --inside-namespace "$@"
    fi
    port="${DYNAMODB_LOCAL_PORT:-18000}"
    offline=()
fi

scripts/dynamodb-local.sh start "$port"
trap 'scripts/dynamodb-local.sh stop "$port"' EXIT
eval "$(scripts/dynamodb-local.sh env "$port")"
export TELEMETRY_TEST_STORAGE=dynamodb
# The tests run the service in-process on libtest's threads, whose stacks default to 2 MiB.
# Debug builds of the AWS SDK (aws-config's loader, the fluent builders) use most of that:
# the suite overflowed at 1.5 MiB. 8 MiB leaves room; the release binary is not affected
# (its runtime threads get 4 MiB, see src/main.rs, and release frames are far smaller).
export RUST_MIN_STACK=8388608
cargo test --locked "${features[@]}" "${offline[@]}" "${targets[@]}" "$@"
