"""The memory step: how much `clickstream up` holds, idle and catching up a backlog.

For this build (and BASELINE_BIN first, when set, for a before/after in one run), with every
enricher on and DB-IP City Lite where `up` looks for it:

- idle: `up` started on an empty data directory, ready, then MEMORY_SETTLE_SECS more (both
  streams' processors have loaded their enrichers by then); resident memory read from
  /proc/<pid>/status: VmRSS, split into RssAnon (the heap: what the process allocated) and
  RssFile (pages of mapped files: the binary, and the geo files' pages touched);
- catch-up: a backlog of at least MEMORY_BACKLOG events (the seed's, ids made unique, at
  batches of 1000 on 16 connections) written by `up` with the processor off; then `up` with
  it on, on the same data, until the end-to-end lag (`clickstream_pipeline_lag_records` on
  /metrics) is 0: the peak resident memory over that (VmHWM) and the time it took.

Before each `up` starts, the binary's and the geo files' pages are dropped from the page
cache (posix_fadvise DONTNEED): the kernel maps the cached pages around each page a process
faults in, so a binary just built (all of it cached) showed ~10-20 MB more file-backed
memory than the same start-up from a cold cache, which is what decided between two legs.

MEMORY_ENV ("NAME=value ...") is set for this build's `up` (not the baseline's): for trying
allocator or flush settings side by side with the baseline.

The issue's targets: idle <= 150 MB with the geo data loaded, catch-up of 1.5 M events
<= 300 MB.
"""

import os
import re
import time
import urllib.request

from harness import BIN, CONFIG, clickstream_up, geo_data, knob, load_cmd, log, run_json

SETTLE_SECS = knob("MEMORY_SETTLE_SECS", 20, 5)
EXTRA_ENV = dict(pair.split("=", 1) for pair in knob("MEMORY_ENV", "", "").split())
BACKLOG = knob("MEMORY_BACKLOG", 1_500_000, 100_000)
CATCH_UP_LIMIT_SECS = 1800


def status_mb(pid):
    """VmRSS, RssAnon, RssFile and VmHWM of `pid`, in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def evict_from_page_cache(binary):
    """Drops the clean cached pages of `binary` and of the geo files, so each leg starts cold."""
    for path in [binary, *geo_data()]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def idle(work, label, binary, env):
    evict_from_page_cache(binary)
    server = clickstream_up(work, f"memory-idle-{label}", env=env, binary=binary)
    try:
        time.sleep(SETTLE_SECS)
        memory = status_mb(server.proc.pid)
    finally:
        server.stop()
    log(f"memory {label}: idle {memory['VmRSS']:.0f} MB (anonymous {memory['RssAnon']:.0f} MB)")
    return memory


def lag_records(server):
    with urllib.request.urlopen(f"{server.base}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.search(r"^clickstream_pipeline_lag_records(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(found[1]) if found else None


def catch_up(work, label, binary, env):
    name = f"memory-backlog-{label}"
    writer = clickstream_up(work, name, env={"CLICKSTREAM_PROCESSOR__ENABLED": "false"}, binary=binary)
    backlog = 0
    try:
        while backlog < BACKLOG:
            backlog += run_json(load_cmd(writer, "collect", 1000, 16, 2))["events_acked"]
    finally:
        writer.stop()
    evict_from_page_cache(binary)
    server = clickstream_up(work, name, env=env, binary=binary)
    started = time.monotonic()
    try:
        while True:
            lag = lag_records(server)
            if lag == 0:
                break
            if time.monotonic() - started > CATCH_UP_LIMIT_SECS:
                raise SystemExit(f"{label}: {lag} records still behind after {CATCH_UP_LIMIT_SECS} s")
            time.sleep(0.5)
        seconds = time.monotonic() - started
        memory = status_mb(server.proc.pid)
    finally:
        server.stop()
    log(f"memory {label}: caught up {backlog:,} events in {seconds:.0f} s, peak {memory['VmHWM']:.0f} MB")
    return {"backlog_events": backlog, "seconds": seconds, "events_per_sec": backlog / seconds, **memory}


def run_memory(work):
    legs = [("this build", BIN, EXTRA_ENV)]
    if CONFIG["baseline_bin"]:
        legs.insert(0, ("baseline", CONFIG["baseline_bin"], {}))
    out = {}
    for index, (label, binary, env) in enumerate(legs):
        out[label] = {"binary": binary, "env": env, "idle": idle(work, f"{index}", binary, env),
                      "catch_up": catch_up(work, f"{index}", binary, env)}
    return out


def markdown(memory):
    lines = [
        "",
        "## Memory",
        "",
        f"`clickstream up`, every enricher on, DB-IP City Lite loaded. Idle: {SETTLE_SECS} s after "
        f"ready; catch-up: a backlog of at least {BACKLOG:,} events written with the processor off, "
        "then `up` until the end-to-end lag is 0 (peak = VmHWM). MB = MiB.",
        "",
        "| build | idle RSS | idle anonymous | idle file-backed | backlog | catch-up s | events/s | peak RSS (target 300) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, leg in memory.items():
        i, c = leg["idle"], leg["catch_up"]
        env = " ".join(f"{k}={v}" for k, v in leg.get("env", {}).items())
        label = f"{label} ({env})" if env else label
        lines.append(
            f"| {label} | {i['VmRSS']:.0f} | {i['RssAnon']:.0f} | {i['RssFile']:.0f} | {c['backlog_events']:,} "
            f"| {c['seconds']:.0f} | {c['events_per_sec']:,.0f} | {c['VmHWM']:.0f} |")
    return "\n".join(lines) + "\n"
