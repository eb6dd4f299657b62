"""Readings/s against batch size per system, from target/bench-results/peers.json.

Usage: plot-peers.py peers.json peers.png  (scripts/bench-peers.sh runs it in a virtualenv).
One line per system and client count (the best of the client counts is drawn solid); the
legend names each system's durability class.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source: str, target: str) -> None:
    with open(source, encoding="utf-8") as f:
        report = json.load(f)
    cells = report["ingest"]
    systems = sorted({c["system"] for c in cells})
    figure, axes = plt.subplots(figsize=(9, 5.5))
    for system in systems:
        mine = [c for c in cells if c["system"] == system]
        durability = mine[0]["durability"]
        for clients, style in ((64, "-"), (16, "--"), (1, ":")):
            points = sorted(
                (c["batch"], c["readings_per_second"]) for c in mine if c["clients"] == clients
            )
            if points:
                axes.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    style,
                    marker="o",
                    label=f"{system} [{durability}], {clients} clients",
                )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("readings per request (batch size)")
    axes.set_ylabel("acknowledged readings/s")
    load = report.get("machine", {}).get("loadavg", "?")
    axes.set_title(
        f"Durable ingest, {report['seconds_per_cell']} s per cell (load average {load})"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
