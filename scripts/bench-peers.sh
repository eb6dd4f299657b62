#!/usr/bin/env bash
# Peer benchmarks: the service against InfluxDB 1.6 and VictoriaMetrics 1.79, one system at a
# time on 127.0.0.1, then a plot of readings/s against batch size:
#   scripts/bench-peers.sh [--seconds N] [FILTER]
#
# Installs the peers from Debian's packages when missing (`influxdb`, `victoria-metrics`; their
# services are kept from starting), runs `cargo bench --bench http_load -- --peers` (each system
# is started by the benchmark with a fresh data directory and the configuration written in
# benches/http_load/peers/systems.rs, which peers.json repeats), and draws
# target/bench-results/peers.png with matplotlib from a virtualenv under target/.
#
# Default 3 s per cell (+1 s warm-up): about 10 minutes on 2 cores. FILTER runs only the parts
# whose "<part> <system>" contains it, e.g. "InfluxDB" or "queries". Run it with the machine
# otherwise idle: the service under test and the load generator share it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=3
if [[ "${1:-}" == "--seconds" ]]; then
    seconds="$2"
    shift 2
fi

install_peers() {
    local missing=()
    command -v influxd >/dev/null || missing+=(influxdb)
    command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
    [[ ${#missing[@]} -eq 0 ]] && return
    echo "installing ${missing[*]} from Debian's packages"
    # Keep the packages' services from starting (they would listen on every interface).
    local policy=/usr/sbin/policy-rc.d created=""
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    [[ -n "$created" ]] && rm -f "$policy"
    return 0
}

plot() {
    local venv=target/peers-venv
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet matplotlib
    fi
    "$venv/bin/python" scripts/plot-peers.py target/bench-results/peers.json \
        target/bench-results/peers.png
}

install_peers
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --locked --bench http_load -- --peers --seconds "$seconds" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
plot
