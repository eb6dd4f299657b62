#!/usr/bin/env bash
# The tests that need DynamoDB Local, against one emulator: the contract suite (tests/api), the
# DynamoDB-only tests (tests/dynamodb.rs) and the built telemetry-lambda binary against a Lambda
# Runtime API stand-in (tests/lambda.rs): `scripts/dynamodb-tests.sh [extra cargo test args]`.
# DYNAMODB_TEST_TARGETS (default `--test api --test dynamodb --test lambda`) narrows the targets.
# The emulator and the tests run in a private network namespace when this user may create one
# (see `run` in scripts/dynamodb-local.sh, which also lists the variables that steer it).
set -euo pipefail
cd "$(dirname "$0")/.."

# The same features as every other cargo command of scripts/test.sh, so the library and the test
# binaries are compiled once for the whole suite.
features=(--features lambda)
read -r -a targets <<<"${DYNAMODB_TEST_TARGETS:---test api --test dynamodb --test lambda}"

# Build first: a private namespace has no network for cargo.
cargo test --locked "${features[@]}" --no-run "${targets[@]}"
export TELEMETRY_TEST_STORAGE=dynamodb
# The tests run the service in-process on libtest's threads, whose stacks default to 2 MiB.
# Debug builds of the AWS SDK (aws-config's loader, the fluent builders) use most of that:
# the suite overflowed at 1.5 MiB. 8 MiB leaves room; the release binary is not affected
# (its runtime threads get 4 MiB, see src/main.rs, and release frames are far smaller).
export RUST_MIN_STACK=8388608
exec scripts/dynamodb-local.sh run 18000 -- \
    cargo test --locked "${features[@]}" "${targets[@]}" "$@"
