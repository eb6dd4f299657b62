"""The official InfluxDB client libraries write to telemetry as they would to InfluxDB, and
/api/stats and /api/readings then show exactly the readings they sent.

- `influxdb-client` (InfluxDB 2): the batching `write_api` with gzip enabled, to /api/v2/write;
- `influxdb` (InfluxDB 1): `write_points`, to /write, with credentials (accepted, ignored).

Temperatures are computed the ordinary way in binary floats, so the bodies carry values such
as 15.799999999999997; the server stores them rounded to the micro-degree."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import influxdb
import influxdb_client
from influxdb_client.client import _base
from influxdb_client.client.write_api import WriteOptions

START = datetime(2021, 10, 4, 9, 0, tzinfo=timezone.utc)


def temperature(i: int) -> float:
    return (i * 37) % 1000 / 10 - 20


def stored(value: float) -> float:
    """What the server stores: the literal text rounded to 6 places, half away from zero."""
    return float(Decimal(repr(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def rfc3339(at: datetime) -> str:
    """As the server shows times: UTC, fraction digits in groups of 3 only when there are any."""
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond % 1000:
        text += f".{at.microsecond:06d}"
    elif at.microsecond:
        text += f".{at.microsecond // 1000:03d}"
    return text + "Z"


def test_v2_client_batching_write_api_with_gzip(server, monkeypatch):
    # Record what the client puts on the wire, to prove the bodies are gzip.
    bodies: list[bytes] = []
    original = _base._Configuration.update_request_body

    def recording(self, path, body):
        out = original(self, path, body)
        bodies.append(out)
        return out

    monkeypatch.setattr(_base._Configuration, "update_request_body", recording)
    errors, batches = [], []
    points = [
        influxdb_client.Point("temperature")
        .tag("sensorID", f"v2-{i % 4}")
        .tag("room", "lab")
        .field("value", temperature(i))
        .field("battery", 97)
        .time(START + timedelta(seconds=i, microseconds=250), influxdb_client.WritePrecision.NS)
        for i in range(1200)
    ]
    assert any("15.799999999999997" in p.to_line_protocol() for p in points)
    with influxdb_client.InfluxDBClient(
        url=server.url, token="any-token", org="any-org", enable_gzip=True
    ) as client:
        options = WriteOptions(batch_size=500, flush_interval=10_000, max_retries=0)
        with client.write_api(
            write_options=options,
            success_callback=lambda conf, data: batches.append(conf),
            error_callback=lambda conf, data, error: errors.append(error),
        ) as write_api:
            write_api.write(bucket="sensors", record=points)
            # Sent again (a retry after a lost answer): duplicates, no error.
            write_api.write(bucket="sensors", record=points[:100])
    assert errors == []
    assert len(batches) >= 3
    assert bodies and all(body[:2] == b"\x1f\x8b" for body in bodies), "gzip bodies"
    assert server.get("/api/stats")["Count"] == 1200
    for sensor in range(4):
        expected = [
            (rfc3339(START + timedelta(seconds=i, microseconds=250)), stored(temperature(i)))
            for i in range(sensor, 1200, 4)
        ]
        got = []
        page = server.get(f"/api/readings?sensorID=v2-{sensor}&limit=1000")
        got += [(r["time"], r["temperature"]) for r in page["readings"]]
        assert page["next"] is None
        assert got == expected


def test_v1_client_write_points(server):
    host, port = server.url.removeprefix("http://").split(":")
    client = influxdb.InfluxDBClient(
        host=host, port=int(port), username="sensor", password="secret", database="telemetry"
    )
    points = [
        {
            "measurement": "temperature",
            "tags": {"sensorID": "v1"},
            "time": rfc3339(START + timedelta(minutes=i)),
            "fields": {"value": temperature(i) * 1.0},
        }
        for i in range(300)
    ]
    # Lines of other measurements are ignored.
    points.append({"measurement": "cpu", "tags": {"host": "a"}, "fields": {"idle": 99.0}})
    assert client.write_points(points, time_precision="s", batch_size=100) is True
    assert client.write_points(points[:10], time_precision="s") is True
    assert server.get("/api/stats")["Count"] == 300
    stats = server.get("/api/stats?sensorID=v1")
    assert stats["Minimum"] == min(stored(temperature(i)) for i in range(300))
    assert stats["Maximum"] == max(stored(temperature(i)) for i in range(300))
    assert server.readings("v1")[:3] == [
        (rfc3339(START + timedelta(minutes=i)), stored(temperature(i))) for i in range(3)
    ]
    assert len(server.readings("v1")) == 300
    # A conflicting value is refused with the client's own error type, and nothing changes.
    conflicting = [dict(points[0], fields={"value": 99.0})]
    try:
        client.write_points(conflicting, time_precision="s")
    except influxdb.exceptions.InfluxDBClientError as error:
        assert error.code == 409
        assert "immutable" in str(error)
    else:
        raise AssertionError("a conflicting write must fail")
    assert server.readings("v1")[0][1] == stored(temperature(0))
