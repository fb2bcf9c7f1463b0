"""The schema-evolution step: what a site's own, wider events cost.

Ingest at batches of 100 (`up`, processor on) and the processor's drain of a backlog, each
with the seed's events and with a 30-field version of the raw schema (`clickstream bench
ingest --shape wide` registers it, then sends events that fill it: an enum, a record, arrays,
a map, a decimal, timestamps, a uuid, a date). With BASELINE_BIN (a build of an earlier
commit), the seed legs run on it too, in the same run: the cost of following the registry,
against the binary that had the schema compiled in. Legs alternate, EVOLUTION_REPS rounds,
so drift of the shared machine falls on every leg alike; the table shows each round and the
median.
"""

import shutil
import statistics
from pathlib import Path

from harness import BIN, CONFIG, bench_ingest, clickstream_up, drain, log


def legs():
    """(label, server binary, shape) of every leg, the baseline first when there is one."""
    out = [("seed", BIN, "seed"), ("wide (30 fields)", BIN, "wide")]
    if CONFIG["baseline_bin"]:
        out.insert(0, ("baseline, seed", CONFIG["baseline_bin"], "seed"))
    return out


def ingest_leg(work, name, binary, shape):
    server = clickstream_up(work, name, binary=binary)
    try:
        # One second first on every leg: the wide one registers its version and the table
        # evolves before the clock starts.
        bench_ingest(server, "collect", 100, measure_cpu=False, shape=shape, secs=1)
        report = bench_ingest(server, "collect", 100, shape=shape)
        report["peak_rss_mb"] = server.rss()
        return report
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


def drain_leg(work, name, binary, shape):
    result = drain(work, name, binary=binary, shape=shape)
    shutil.rmtree(result.pop("data"), ignore_errors=True)
    return result


def run_evolution(work):
    out = {"legs": [label for label, _, _ in legs()], "ingest_100": {}, "drain": {}}
    for round_ in range(CONFIG["evolution_reps"]):
        for index, (label, binary, shape) in enumerate(legs()):
            name = f"evolution-{round_}-{index}"
            log(f"evolution round {round_ + 1}: {label}")
            out["ingest_100"].setdefault(label, []).append(ingest_leg(work, f"{name}-ingest", binary, shape))
            out["drain"].setdefault(label, []).append(drain_leg(work, f"{name}-drain", binary, shape))
    return out


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def markdown(evolution, baseline_bin):
    """The step's table: per leg, each round's events/s and the median, and the median
    against the seed leg of this build (and of the baseline, when there is one)."""
    lines = [
        "",
        "## Schema evolution (a site's own events)",
        "",
        "Ingest: `clickstream up` (processor on), `/collect` at batches of 100. Drain: `process "
        "--drain` of a backlog sent at batches of 1000. Wide: the raw subject's version with 30 "
        "fields (`bench ingest --shape wide`)"
        + (f"; baseline: `{Path(baseline_bin).name}` from BASELINE_BIN={baseline_bin}" if baseline_bin else "")
        + ". Legs alternate; each round is one figure.",
        "",
        "| measure | leg | each round, events/s | median | / seed (this build) | / baseline seed |",
        "|---|---|---|---:|---:|---:|",
    ]
    for measure, key in (("ingest, batch 100", "ingest_100"), ("processor drain", "drain")):
        runs = evolution[key]
        seed = _median(runs["seed"], "events_per_sec")
        base = runs.get("baseline, seed")
        base = _median(base, "events_per_sec") if base else None
        for label in evolution["legs"]:
            median = _median(runs[label], "events_per_sec")
            rounds = ", ".join(f"{r['events_per_sec']:,.0f}" for r in runs[label])
            over_base = f"{median / base:.2f}×" if base else "–"
            lines.append(f"| {measure} | {label} | {rounds} | {median:,.0f} | {median / seed:.2f}× | {over_base} |")
    return "\n".join(lines) + "\n"
