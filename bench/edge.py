"""The edge step: what write keys and rate limits cost ingest.

`clickstream up` (processor on) loaded at batches of 100, once open (no write keys, no rate
limits: the defaults) and once guarded: a write key required, its name stamped on every
event (the `X-Source` header and the `source` column), and token buckets per key and per
client address with rates far above the load, so every request pays for the checks and
none is refused. The load sends the same `X-Write-Key` header to both, so the bytes on the
wire are the same. Legs alternate for EDGE_REPS rounds, so drift of the shared machine
falls on both alike; the table shows each round and the median.
"""

import os
import shutil
import statistics
from pathlib import Path

from harness import CONFIG, bench_ingest, clickstream_up, log

WRITE_KEY = "bench-write-key-0123456789abcdef"
GUARDED = f"""
[auth.write_keys]
bench = "{WRITE_KEY}"

[limits]
key_events_per_sec = 100000000
key_burst = 100000000
ip_events_per_sec = 100000000
ip_burst = 100000000
"""


def ingest_leg(work, name, guarded):
    env = {}
    if guarded:
        config = Path(work) / f"{name}.toml"
        config.write_text(GUARDED)
        env["CLICKSTREAM_CONFIG"] = str(config)
    server = clickstream_up(work, name, env=env)
    try:
        bench_ingest(server, "collect", 100, measure_cpu=False, secs=1)
        report = bench_ingest(server, "collect", 100)
        report["peak_rss_mb"] = server.rss()
        if report["requests_failed"]:
            raise SystemExit(f"{name}: {report['requests_failed']} requests refused; the limits bound")
        return report
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


def run_edge(work):
    # Read by the load tool (`clickstream bench ingest`), a process of its own: both legs
    # send the key, so the requests are byte for byte the same.
    os.environ["CLICKSTREAM_BENCH_WRITE_KEY"] = WRITE_KEY
    out = {"open": [], "guarded": []}
    for round_ in range(CONFIG["edge_reps"]):
        for label in ("open", "guarded"):
            log(f"edge round {round_ + 1}: {label}")
            out[label].append(ingest_leg(work, f"edge-{round_}-{label}", label == "guarded"))
    return out


def markdown(edge):
    """Each round's events/s, the median, and guarded against open."""
    median = {label: statistics.median(r["events_per_sec"] for r in runs) for label, runs in edge.items()}
    lines = [
        "",
        "## The edge: write keys and rate limits",
        "",
        "`clickstream up` (processor on), `/collect` at batches of 100. Open: the defaults. Guarded: "
        "a write key required and stamped on every event, rate limits per key and per address far "
        "above the load. Legs alternate; each round is one figure.",
        "",
        "| leg | each round, events/s | median | p99 ms (median) | / open |",
        "|---|---|---:|---:|---:|",
    ]
    for label, runs in edge.items():
        rounds = ", ".join(f"{r['events_per_sec']:,.0f}" for r in runs)
        p99 = statistics.median(r["latency_p99_ms"] for r in runs)
        lines.append(f"| {label} | {rounds} | {median[label]:,.0f} | {p99:.1f} | {median[label] / median['open']:.3f}× |")
    return "\n".join(lines) + "\n"
