#!/usr/bin/env python3
"""Abuse benchmark, run by hand (see BENCHMARKS.md): the real binary under hostile load.

Scenario `slow`: 2,000 slowloris connections (a request head started, then one byte a second,
reconnecting when cut off) and 500 slow uploads (a 1 MiB PUT whose first 1,000 KiB arrive at
once, then one byte a second) for `--seconds`; meanwhile one normal client measures `GET /api`
and `PUT /api/temperature` latency, compared with the same client on the idle server before.
The server's RSS is sampled throughout.

Scenario `flood`: first the capacity of the server for 1,000-reading batches at 16 clients,
then a flood of 256 clients (16 times as many) sending new batches back to back for
`--seconds`: the offered rate is printed beside the capacity. Reports the accepted requests' latency, the refused ones (503 +
Retry-After), the RSS over time, and checks that no acknowledged reading is lost: the stored
count equals the readings of the acknowledged requests.

Standard library only. Bounded: every phase has a fixed duration, every socket a timeout.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


class Server:
    def __init__(self, binary, env):
        self.dir = tempfile.mkdtemp(prefix="abuse-bench-")
        full_env = dict(os.environ)
        full_env.update({
            "PORT": "0", "BIND_ADDR": "127.0.0.1", "DATA_DIR": self.dir,
            "LOG_FORMAT": "json", "RUST_LOG": "warn,telemetry=info,telemetry::http=warn",
        })
        full_env.update(env)
        self.proc = subprocess.Popen([binary], env=full_env, stdout=subprocess.PIPE, text=True)
        for line in self.proc.stdout:
            event = json.loads(line)
            if event.get("fields", {}).get("message") == "listening" or event.get("message") == "listening":
                self.port = event.get("port") or event["fields"]["port"]
                break
        else:
            raise SystemExit("the server did not start")
        # Keep reading the log, or the server blocks once the pipe is full.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def request(reader, writer, method, path, body=b"", timeout=30):
    head = (f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout)
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    if length:
        await asyncio.wait_for(reader.readexactly(length), timeout)
    return status


BATCH = 1000


def stamp(second):
    """A distinct time for each second from 2021-01-01 (fits 28-day months up to a year)."""
    day, rest = divmod(second, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"2021-{1 + day // 28:02d}-{1 + day % 28:02d} {hours:02d}:{minutes:02d}:{seconds:02d}"


def reading(sensor, second, value=1.0):
    return {"sensorID": sensor, "temperature": value, "time": stamp(second)}


async def normal_client(port, samples, sensor):
    """Sequential GET /api and PUT latencies (ms) on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    gets, puts, errors = [], [], 0
    for i in range(samples):
        started = time.perf_counter()
        status = await request(reader, writer, "GET", "/api")
        gets.append((time.perf_counter() - started) * 1e3)
        body = json.dumps(reading(sensor, i)).encode()
        started = time.perf_counter()
        status_put = await request(reader, writer, "PUT", "/api/temperature", body)
        puts.append((time.perf_counter() - started) * 1e3)
        errors += (status != 200) + (status_put != 200)
        await asyncio.sleep(0.02)
    writer.close()
    return gets, puts, errors


async def slowloris(port, until, counters):
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
            await writer.drain()
            while time.monotonic() < until:
                try:
                    line = await asyncio.wait_for(reader.readline(), 1)
                except asyncio.TimeoutError:
                    writer.write(b"a")
                    await writer.drain()
                    continue
                counters["slow_cut"] += 1  # closed by the server (or answered)
                break
            writer.close()
        except (ConnectionError, OSError):
            counters["slow_cut"] += 1
            await asyncio.sleep(0.5)


async def slow_upload(port, until, counters):
    body_bytes = 1024 * 1024
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write((f"PUT /api/temperature HTTP/1.1\r\nHost: bench\r\n"
                          f"Content-Length: {body_bytes}\r\n\r\n").encode())
            writer.write(b" " * (1000 * 1024))
            await writer.drain()
            while time.monotonic() < until:
                try:
                    line = await asyncio.wait_for(reader.readline(), 1)
                except asyncio.TimeoutError:
                    writer.write(b" ")
                    await writer.drain()
                    continue
                status = line.split()[1].decode() if line else "closed"
                counters[f"upload_{status}"] = counters.get(f"upload_{status}", 0) + 1
                break
            writer.close()
        except (ConnectionError, OSError):
            counters["upload_cut"] += 1
            await asyncio.sleep(0.5)


async def sample_rss(server, until, samples):
    while time.monotonic() < until:
        samples.append(server.rss_mib()[0])
        await asyncio.sleep(0.5)


async def scenario_slow(binary, seconds):
    server = Server(binary, {})
    try:
        base_get, base_put, base_errors = await normal_client(server.port, 200, "base")
        rss_before = server.rss_mib()[0]
        until = time.monotonic() + seconds
        counters = {"slow_cut": 0, "upload_cut": 0}
        rss = []
        attackers = [slowloris(server.port, until, counters) for _ in range(2000)]
        attackers += [slow_upload(server.port, until, counters) for _ in range(500)]
        async def measured():
            await asyncio.sleep(min(5, seconds / 3))  # let the attack build up
            return await normal_client(server.port, 200, "attacked")
        results = await asyncio.gather(measured(), sample_rss(server, until, rss), *attackers,
                                       return_exceptions=True)
        if isinstance(results[0], BaseException):
            raise results[0]
        got, put, errors = results[0]
        _, peak = server.rss_mib()
        return {
            "idle GET /api ms p50/p99": (percentile(base_get, 50), percentile(base_get, 99)),
            "idle PUT ms p50/p99": (percentile(base_put, 50), percentile(base_put, 99)),
            "attacked GET /api ms p50/p99": (percentile(got, 50), percentile(got, 99)),
            "attacked PUT ms p50/p99": (percentile(put, 50), percentile(put, 99)),
            "errors idle/attacked": (base_errors, errors),
            "RSS MiB before / max during / peak (VmHWM)": (rss_before, max(rss), peak),
            "attack counters": counters,
        }
    finally:
        server.stop()


async def batch_writer(port, until, sensor, stats):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    second = 0
    while time.monotonic() < until:
        body = ("[" + ",".join(
            f'{{"sensorID":"{sensor}","temperature":1.5,"time":"{stamp(second + k)}"}}'
            for k in range(BATCH)) + "]").encode()
        started = time.perf_counter()
        try:
            status = await request(reader, writer, "PUT", "/api/temperature", body)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            stats["broken"] += 1
            return
        took = (time.perf_counter() - started) * 1e3
        if status == 200:
            stats["accepted"].append(took)
            stats["acked_readings"] += BATCH
            second += BATCH
        elif status == 503:
            stats["refused"].append(took)
            await asyncio.sleep(0.05)  # a client honouring Retry-After would wait 1 s
        else:
            stats["other"][status] = stats["other"].get(status, 0) + 1
    writer.close()


async def stored_count(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["Count"]


async def scenario_flood(binary, seconds):
    server = Server(binary, {})
    try:
        def fresh():
            return {"accepted": [], "refused": [], "broken": 0, "other": {}, "acked_readings": 0}
        capacity = fresh()
        until = time.monotonic() + seconds
        await asyncio.gather(*[batch_writer(server.port, until, f"cap{i}", capacity)
                               for i in range(16)])
        rate = len(capacity["accepted"]) / seconds
        flood = fresh()
        rss = []
        until = time.monotonic() + seconds
        await asyncio.gather(sample_rss(server, until, rss),
                             *[batch_writer(server.port, until, f"flood{i}", flood)
                               for i in range(256)])
        offered = (len(flood["accepted"]) + len(flood["refused"])) / seconds
        count = await stored_count(server.port)
        acked = capacity["acked_readings"] + flood["acked_readings"]
        return {
            "capacity (16 clients), 1,000-reading batches/s": rate,
            "capacity p50/p99 ms": (percentile(capacity["accepted"], 50),
                                    percentile(capacity["accepted"], 99)),
            "flood (256 clients) offered batches/s": offered,
            "flood accepted batches/s": len(flood["accepted"]) / seconds,
            "flood accepted p50/p99/max ms": (percentile(flood["accepted"], 50),
                                              percentile(flood["accepted"], 99),
                                              max(flood["accepted"], default=float("nan"))),
            "flood refused 503": len(flood["refused"]),
            "flood refused p99 ms": percentile(flood["refused"], 99),
            "flood other statuses / broken": (flood["other"], flood["broken"]),
            "RSS MiB min/max during flood": (min(rss), max(rss)),
            "acknowledged readings / stored count": (acked, count),
            "no acknowledged reading lost": count == acked,
        }
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["slow", "flood", "all"])
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "telemetry"))
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        raise SystemExit(f"{args.binary} is missing: cargo build --release (or pass --binary)")
    load = os.getloadavg()
    print(f"# {args.binary}, {os.cpu_count()} cores, load average {load[0]:.1f} before")
    for name in (["slow", "flood"] if args.scenario == "all" else [args.scenario]):
        run = scenario_slow if name == "slow" else scenario_flood
        result = asyncio.run(run(args.binary, args.seconds))
        print(f"## {name}")
        for key, value in result.items():
            if isinstance(value, tuple):
                value = " / ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in value)
            elif isinstance(value, float):
                value = f"{value:.1f}"
            print(f"{key}: {value}")
    print(f"# load average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    sys.exit(main())
