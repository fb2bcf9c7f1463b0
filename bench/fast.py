"""The fast-and-small step (issue 16): the throughput figures of ingest and the processor
beside a baseline build, in one run.

Per leg (BASELINE_BIN's build first when set, then this build), legs alternating for
FAST_REPS rounds so drift of the shared machine falls on both alike:
- ingest at batches of 100 with the processor off (`processor.enabled = false`): what
  validation, encoding and the log's appends cost alone;
- ingest at batches of 100 and of 1000 with the processor on (every enricher, geo data when
  scripts/setup-geoip has fetched it): the two sharing the machine as they do in `up`;
- the processor's drain of a backlog (`process --drain`, every enricher on).
The issue's targets are printed beside each median.
"""

import shutil
import statistics
from pathlib import Path

from harness import BIN, CONFIG, bench_ingest, clickstream_up, drain, log

MEASURES = [
    # key, label, target events/s
    ("ingest_100_off", "ingest, batch 100, processor off", 300_000),
    ("ingest_100_on", "ingest, batch 100, processor on", 200_000),
    ("ingest_1000_on", "ingest, batch 1000, processor on", None),
    ("drain", "processor drain, every enricher on", 200_000),
]


def legs():
    out = [("this build", BIN)]
    if CONFIG["baseline_bin"]:
        out.insert(0, ("baseline", CONFIG["baseline_bin"]))
    return out


def ingest(work, name, binary, batch, processor):
    env = None if processor else {"CLICKSTREAM_PROCESSOR__ENABLED": "false"}
    server = clickstream_up(work, name, env=env, binary=binary)
    try:
        bench_ingest(server, "collect", batch, measure_cpu=False, secs=1)
        return bench_ingest(server, "collect", batch)
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


def run_fast(work):
    out = {"legs": [label for label, _ in legs()], **{key: {} for key, _, _ in MEASURES}}
    for round_ in range(CONFIG["fast_reps"]):
        for index, (label, binary) in enumerate(legs()):
            name = f"fast-{round_}-{index}"
            log(f"fast round {round_ + 1}: {label}")
            runs = {
                "ingest_100_off": lambda: ingest(work, f"{name}-100-off", binary, 100, False),
                "ingest_100_on": lambda: ingest(work, f"{name}-100-on", binary, 100, True),
                "ingest_1000_on": lambda: ingest(work, f"{name}-1000-on", binary, 1000, True),
                "drain": lambda: _drain(work, f"{name}-drain", binary),
            }
            for key, run in runs.items():
                out[key].setdefault(label, []).append(run())
    return out


def _drain(work, name, binary):
    result = drain(work, name, binary=binary)
    shutil.rmtree(result.pop("data"), ignore_errors=True)
    return result


def _median(runs):
    return statistics.median(r["events_per_sec"] for r in runs)


def markdown(fast, baseline_bin):
    lines = [
        "",
        "## Fast (issue 16): ingest and the processor beside the baseline",
        "",
        "`clickstream up` on embedded defaults, `/collect` loads of "
        f"{CONFIG['ingest_secs']} s after 1 s of warm-up, drain of {CONFIG['backlog_secs']} s of "
        "backlog at batches of 1000"
        + (f"; baseline: `{Path(baseline_bin).name}` (BASELINE_BIN={baseline_bin})" if baseline_bin else "")
        + ". Legs alternate; each round is one figure.",
        "",
        "| measure | leg | each round, events/s | median | / baseline | target |",
        "|---|---|---|---:|---:|---:|",
    ]
    for key, label, target in MEASURES:
        runs = fast[key]
        base = _median(runs["baseline"]) if "baseline" in runs else None
        for leg in fast["legs"]:
            median = _median(runs[leg])
            rounds = ", ".join(f"{r['events_per_sec']:,.0f}" for r in runs[leg])
            ratio = f"{median / base:.2f}×" if base else "–"
            goal = f"{target:,}" if target and leg == "this build" else ""
            lines.append(f"| {label} | {leg} | {rounds} | {median:,.0f} | {ratio} | {goal} |")
    return "\n".join(lines) + "\n"
