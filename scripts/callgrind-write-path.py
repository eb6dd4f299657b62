#!/usr/bin/env python3
"""Instructions per stored reading of the write path, under valgrind's callgrind.

Runs the given telemetry binary (a release build) under callgrind on a fresh data directory,
once per workload, sends a few warm-up writes, zeroes the counters, sends a fixed number of
writes one after another on one keep-alive connection, dumps the counters and stops the
server. Instruction counts do not depend on what else runs on the machine, unlike readings/s.

The readings are those of the peer benchmark (benches/http_load/peers/data.rs): 1,000 sensors
`s0`..`s999`, every reading new, reading k is sensor k % 1000 at start + (k / 1000) * 10 s
(start: 30 days ago, a whole hour), two-decimal temperatures; JSON with RFC 3339 times, line
protocol with nanosecond timestamps.

    scripts/callgrind-write-path.py target/release/telemetry [workload ...]

Workloads: json1000, json100, lp1000, single (all by default). Prints one line per workload
and keeps each dump (callgrind.out.<workload>) in the output directory (--out, default
target/callgrind) for `callgrind_annotate`.
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SENSORS = 1000
START = (int(time.time()) - 30 * 86400) // 3600 * 3600
INTERVAL = 10

# name: (kind, readings per request, warm-up requests, measured requests)
WORKLOADS = {
    "json1000": ("json", 1000, 3, 20),
    "json100": ("json", 100, 10, 100),
    "lp1000": ("lp", 1000, 3, 20),
    "single": ("json", 1, 20, 300),
}


def reading(k):
    centi = (k * 2654435761) % 5000 - 1000
    sign = "-" if centi < 0 else ""
    return k % SENSORS, START + (k // SENSORS) * INTERVAL, f"{sign}{abs(centi) // 100}.{abs(centi) % 100:02}"


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def json_body(start, count):
    items = []
    for k in range(start, start + count):
        sensor, t, value = reading(k)
        items.append(f'{{"sensorID":"s{sensor}","time":"{rfc3339(t)}","temperature":{value}}}')
    return items[0] if count == 1 else "[" + ",".join(items) + "]"


def line_body(start, count):
    lines = []
    for k in range(start, start + count):
        sensor, t, value = reading(k)
        lines.append(f"temperature,sensor=s{sensor} value={value} {t}000000000\n")
    return "".join(lines)


def wait_for_port(log_path, process, deadline):
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited: {open(log_path).read()}")
        with open(log_path) as log:
            match = re.search(r'"port":\s*(\d+)', log.read())
        if match:
            return int(match.group(1))
        time.sleep(0.2)
    sys.exit("the server did not start")


def run(binary, name, out_dir):
    kind, size, warm, measured = WORKLOADS[name]
    data = tempfile.mkdtemp(prefix=f"callgrind-{name}-")
    log_path = os.path.join(data, "server.log")
    dump = os.path.join(out_dir, f"callgrind.out.{name}")
    env = dict(os.environ, PORT="0", BIND_ADDR="127.0.0.1", DATA_DIR=os.path.join(data, "db"),
               LOG_FORMAT="json", RUST_LOG="info", SHUTDOWN_GRACE_SECONDS="5")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}", binary],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        port = wait_for_port(log_path, process, time.time() + 300)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        k = 0

        def send():
            nonlocal k
            if kind == "json":
                body, method, path = json_body(k, size), "PUT", "/api/temperature"
                headers = {"Content-Type": "application/json"}
            else:
                body, method, path = line_body(k, size), "POST", "/write?db=bench"
                headers = {"Content-Type": "text/plain"}
            connection.request(method, path, body=body.encode(), headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status not in (200, 204):
                sys.exit(f"{name}: {response.status} {answer[:300]!r}")
            k += size

        for _ in range(warm):
            send()
        subprocess.run(["callgrind_control", "-z", str(process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.time()
        for _ in range(measured):
            send()
        elapsed = time.time() - started
        subprocess.run(["callgrind_control", "-d", name, str(process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        shutil.rmtree(data, ignore_errors=True)
    # The explicit dump is <dump>.<n>, written with the counters since the zeroing.
    dumps = sorted(f for f in os.listdir(out_dir) if f.startswith(f"callgrind.out.{name}."))
    ir = None
    for line in open(os.path.join(out_dir, dumps[-1])):
        if line.startswith(("summary:", "totals:")):
            ir = int(line.split()[1])
    readings = measured * size
    print(f"{name:9} {measured:4} requests x {size:4} readings: {ir:>14,} Ir, "
          f"{ir / readings:>9,.0f} Ir/reading ({elapsed:.1f} s under callgrind)", flush=True)
    return dumps[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary")
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--out", default="target/callgrind")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.workloads:
        for stale in os.listdir(args.out):
            if stale == f"callgrind.out.{name}" or stale.startswith(f"callgrind.out.{name}."):
                os.remove(os.path.join(args.out, stale))
        run(os.path.abspath(args.binary), name, args.out)


if __name__ == "__main__":
    main()
