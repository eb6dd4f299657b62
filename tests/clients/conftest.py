"""A fresh telemetry server per test: the real binary ($TELEMETRY_BIN) on 127.0.0.1, port 0,
the embedded store in a temporary directory. Its address is read from its JSON start-up log."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


class Server:
    def __init__(self, url: str):
        self.url = url

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)

    def readings(self, sensor: str) -> list[tuple[str, float]]:
        page = self.get(f"/api/readings?sensorID={sensor}&limit=1000")
        assert page["next"] is None
        return [(r["time"], r["temperature"]) for r in page["readings"]]


@pytest.fixture
def server(tmp_path: Path):
    binary = os.environ.get("TELEMETRY_BIN", "target/debug/telemetry")
    log_path = tmp_path / "server.log"
    env = dict(
        os.environ,
        BIND_ADDR="127.0.0.1",
        PORT="0",
        DATA_DIR=str(tmp_path / "data"),
        LOG_FORMAT="json",
        RUST_LOG="warn,telemetry=info",
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            for line in log_path.read_text().splitlines():
                try:
                    port = json.loads(line).get("fields", {}).get("port") or json.loads(line).get("port")
                except json.JSONDecodeError:
                    continue
                if port:
                    break
            if port is None:
                assert process.poll() is None, log_path.read_text()
                time.sleep(0.05)
        assert port, "the server did not log its port:\n" + log_path.read_text()
        yield Server(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=30)
