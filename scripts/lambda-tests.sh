#!/usr/bin/env bash
# The built telemetry-lambda binary against a Lambda Runtime API stand-in, on DynamoDB Local
# (tests/lambda.rs) alone: `scripts/lambda-tests.sh [libtest args]`. The whole suite
# runs it inside scripts/dynamodb-tests.sh, beside the other DynamoDB Local tests.
#
# The tests build and spawn the binary themselves (cargo's CARGO_BIN_EXE_telemetry-lambda);
# TELEMETRY_LAMBDA_BIN=<path> runs another build of it (the cold-start figure of BENCHMARKS.md:
# `TELEMETRY_LAMBDA_BIN=target/release/telemetry-lambda scripts/lambda-tests.sh --ignored
# --nocapture cold_start`).
set -euo pipefail
cd "$(dirname "$0")/.."
DYNAMODB_TEST_TARGETS="--test lambda" exec scripts/dynamodb-tests.sh -- "$@"
