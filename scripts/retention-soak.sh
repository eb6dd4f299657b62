#!/usr/bin/env bash
# Retention soak benchmark (by hand, see BENCHMARKS.md): the real binary on a fresh DATA_DIR
# with RETENTION_RAW=1m (and the rollup levels at their defaults), constant ingest of readings
# stamped "now", and every SAMPLE_SECONDS a line with the database file's size, the process's
# RSS, the readings stored and deleted so far. Under a steady write-and-expire load the file and
# the RSS must stop growing once the first minute has expired.
#
#   scripts/retention-soak.sh            # 10 minutes, 2,000 readings/s, the release binary
#   SOAK_SECONDS=180 BIN=target/debug/telemetry scripts/retention-soak.sh
#
# Environment: BIN (default target/release/telemetry, built if missing), SOAK_SECONDS (600),
# RATE (readings per second, 2000), BATCH (readings per request, 100), SENSORS (50),
# SAMPLE_SECONDS (15), RETENTION_RAW (1m), PORT (18087). Binds 127.0.0.1 only; every loop is
# bounded by SOAK_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${BIN:-target/release/telemetry}"
if [[ ! -x "$bin" ]]; then
    cargo build --release --locked --bin telemetry
fi
port="${PORT:-18087}"
data="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT

BIND_ADDR=127.0.0.1 PORT="$port" DATA_DIR="$data" RETENTION_RAW="${RETENTION_RAW:-1m}" \
    RUST_LOG=warn "$bin" >"$data.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/api" >/dev/null && break
    sleep 0.1
done

python3 - "$port" "$pid" "$data/telemetry.redb" <<'EOF'
import datetime, http.client, json, os, sys, time

port, pid, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
seconds = int(os.environ.get("SOAK_SECONDS", "600"))
rate = int(os.environ.get("RATE", "2000"))
batch = int(os.environ.get("BATCH", "100"))
sensors = int(os.environ.get("SENSORS", "50"))
sample_every = int(os.environ.get("SAMPLE_SECONDS", "15"))

def rss_mib():
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def metric(conn, name):
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")

conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
start = time.monotonic()
next_sample = start
sent = 0
seq = 0
print(f"RETENTION_RAW={os.environ.get('RETENTION_RAW', '1m')} rate={rate}/s batch={batch} sensors={sensors} for {seconds} s")
print(f"{'t (s)':>6} {'stored':>10} {'deleted':>10} {'file MiB':>9} {'RSS MiB':>8}")
while True:
    now = time.monotonic()
    elapsed = now - start
    if elapsed >= seconds:
        break
    if now >= next_sample:
        stored = metric(conn, 'telemetry_readings_total{outcome="stored"}')
        deleted = metric(conn, "telemetry_retention_deleted_readings_total")
        size = os.path.getsize(path) / 2**20
        print(f"{elapsed:6.0f} {stored:10.0f} {deleted:10.0f} {size:9.1f} {rss_mib():8.1f}", flush=True)
        next_sample += sample_every
    # Keep to the rate: readings due by now, one batch at a time.
    if sent >= rate * elapsed:
        time.sleep(0.002)
        continue
    stamp = datetime.datetime.now(datetime.timezone.utc)
    body = []
    for i in range(batch):
        seq += 1
        at = stamp + datetime.timedelta(microseconds=seq % 1_000_000)
        body.append({"sensorID": f"s{seq % sensors}", "time": at.isoformat().replace("+00:00", "Z"),
                     "temperature": (seq % 4000) / 100 - 10})
    conn.request("PUT", "/api/temperature", json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        print(f"PUT answered {response.status}", file=sys.stderr)
    sent += batch
EOF
