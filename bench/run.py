#!/usr/bin/env python3
"""Runs the whole benchmark and writes bench/results/<time>.json and <time>.md.

Started by bench/run.sh (which builds the binary and the venv). Every server runs on
127.0.0.1 in a temporary directory; every load is bounded in time. Steps:

1. clickstream up (embedded defaults: fsync before every acknowledgement):
   GET /ping (the loopback HTTP ceiling), then POST /collect at each batch size, with the
   server's CPU time per run (/proc) and its peak RSS; then `clickstream generate` adds
   realistic traffic with 5 % invalid events; once the lake has caught up, the standard SQL
   questions (crates/query/tests/sql) are timed through POST /api/sql, through
   `clickstream sql` (a cold process), and with DuckDB over the same Parquet files.
2. The original's ingest, re-created (bench/baseline/app.py, Flask + fastavro on Flask's
   own server as the original ran it): the same /ping and /collect loads.
3. Acknowledgement to queryable at a fixed offered rate (fresh `up`).
4. Processor drain of a backlog (`up` without processor, then `process --drain`).
5. Schema evolution (bench/evolution.py): ingest and drain with the seed's events and with
   a 30-field version of the raw schema, and with BASELINE_BIN's build on the seed's.
6. The edge (bench/edge.py): ingest at batches of 100 open and with write keys and rate
   limits on (far above the load), alternating EDGE_REPS rounds.
7. Segment's tracking API (bench/segment.py): POST /v1/batch with calls as analytics.js
   sends them, plain and gzipped, against /collect, batches of 100, alternating
   SEGMENT_REPS rounds.
8. Memory (bench/memory.py): resident memory of `up` idle with the geo data loaded, and its
   peak catching up a backlog of MEMORY_BACKLOG events; BASELINE_BIN's first when set.
9. Fast (bench/fast.py): ingest at batches of 100 with the processor off and on, at 1000
   with it on, and the drain, beside BASELINE_BIN's build, alternating FAST_REPS rounds.
10. criterion: single-core parse + validate + Avro encode, the value path against the
   compiled one (crates/event/benches); the processor's decode -> Arrow path, fields by
   name against resolved positions (crates/process/benches); the edge's guard.

STEPS (default: all of ingest flask visibility drain evolution edge segment memory fast criterion)
picks which run.
"""

import datetime
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from edge import run_edge
from evolution import run_evolution
from segment import run_segment
from memory import run_memory
from questions import QUERIES
from fast import run_fast
from harness import (BIN, CONFIG, PYTHON, REPO, Server, bench_ingest, clickstream_up, drain, free_port, geo_data,
                     log, run_json)

TABLES = ["events", "invalid_events", "dead_letters", "unique_users_daily"]


def sql_api(base, query):
    body = json.dumps({"sql": query}).encode()
    request = urllib.request.Request(f"{base}/api/sql", data=body, headers={"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as answer:
        rows = json.loads(answer.read())["rows"]
    return rows, time.perf_counter() - started


def wait_for_lake(server, expected):
    """Seconds until `events` holds `expected` rows (or the catch-up limit passes)."""
    started = time.time()
    while True:
        rows, _ = sql_api(server.base, "SELECT count(*) AS n FROM events")
        n = rows[0]["n"] if rows else 0
        if n >= expected or time.time() - started > CONFIG["catch_up_secs"]:
            return {"rows": n, "expected": expected, "seconds": time.time() - started, "caught_up": n >= expected}
        time.sleep(0.5)


def median_time(fn, reps):
    fn()  # warm: file listings and caches, as a dashboard's second query would see them
    return statistics.median(fn() for _ in range(reps))


def query_threads():
    """The query engine's threads in `up` as the bench starts it: `query.threads`, by
    default half the cores (at least one), as `crates/query/src/config.rs` says."""
    configured = int(os.environ.get("CLICKSTREAM_QUERY__THREADS", "0") or 0)
    return configured or max(1, (os.cpu_count() or 2) // 2)


def time_queries(server):
    """Each standard question: ours (warm, via /api/sql; cold, via `clickstream sql`) and
    DuckDB over the Parquet files the Delta log lists as active, DuckDB with as many
    threads as our engine (the comparison) and with its default, every core (for the
    record)."""
    import deltalake
    import duckdb

    lake = server.data / "lake" / "clickstream-data"
    threads = query_threads()
    con = duckdb.connect()
    default_threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    files_per_table = {}
    for table in TABLES:
        if not (lake / table / "_delta_log").is_dir():
            continue
        files = deltalake.DeltaTable(str(lake / table)).file_uris()
        files_per_table[table] = len(files)
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listing}], hive_partitioning = true)")
    results = []
    for name in QUERIES:
        sql = (REPO / "crates" / "query" / "tests" / "sql" / f"{name}.sql").read_text()
        tables = [t for t in TABLES if re.search(rf"\b{t}\b", sql)]
        if any(not files_per_table.get(t) for t in tables):
            results.append({"query": name, "skipped": "a table it reads has no files"})
            continue
        ours_rows, _ = sql_api(server.base, sql)
        ours = median_time(lambda: sql_api(server.base, sql)[1], CONFIG["query_reps"])
        started = time.perf_counter()
        # `--`: the files start with a `-- comment`, which would read as a flag.
        cold = subprocess.run([BIN, "--data-dir", str(server.data), "sql", "--format", "json", "--", sql],
                              capture_output=True, text=True, timeout=600)
        if cold.returncode != 0:
            log(f"clickstream sql failed on {name}: {cold.stderr[-500:]}")
        cold_secs = time.perf_counter() - started

        def duck():
            started = time.perf_counter()
            con.execute(sql).fetchall()
            return time.perf_counter() - started

        duck_rows = con.execute(sql).fetchall()
        con.execute(f"SET threads TO {default_threads}")
        duck_all_secs = median_time(duck, CONFIG["query_reps"])
        con.execute(f"SET threads TO {threads}")
        duck_secs = median_time(duck, CONFIG["query_reps"])
        results.append({
            "query": name,
            "ours_ms": ours * 1e3,
            "ours_cold_process_ms": cold_secs * 1e3 if cold.returncode == 0 else None,
            "duckdb_ms": duck_secs * 1e3,
            "duckdb_all_threads_ms": duck_all_secs * 1e3,
            "ratio_ours_to_duckdb": ours / duck_secs if duck_secs else None,
            "rows": len(ours_rows),
            "rows_agree": len(ours_rows) == len(duck_rows),
        })
        log(f"query {name}: ours {ours * 1e3:.1f} ms, DuckDB {duck_secs * 1e3:.1f} ms")
    return {"files": files_per_table, "threads": threads, "duckdb_default_threads": default_threads,
            "queries": results}


def run_ours(work):
    server = clickstream_up(work, "ours")
    try:
        out = {"ping": bench_ingest(server, "ping", 1, measure_cpu=False), "ingest": []}
        for batch in CONFIG["batches"]:
            out["ingest"].append(bench_ingest(server, "collect", batch))
        loaded = sum(r["events_acked"] for r in out["ingest"])
        generated = run_json([
            BIN, "generate", server.base, "--synthetic", "--count", str(CONFIG["generated_events"]),
            "--invalid-share", "0.05", "--seed", "1", "--rate", "max", "--json", "--no-progress",
        ])
        out["generator"] = generated
        log(f"generate: {generated['events_sent']:,} events at {generated['achieved_rate']:,.0f} events/s")
        out["lake_catch_up"] = wait_for_lake(server, loaded + generated["events_accepted_valid"])
        out["peak_rss_mb"] = server.rss()
    finally:
        server.stop()
    if os.environ.get("SKIP_QUERIES"):
        out["query"] = None
        return out
    # The questions are timed on the same lake with nothing else running: right after a
    # catch-up, the pipeline's background work (a compaction due, the unique-users
    # refresh) shares the cores with both engines, and the ratio moved 1.17-2.46x
    # between runs when they were timed on the loaded server.
    server = clickstream_up(work, "ours", env={"CLICKSTREAM_PROCESSOR__ENABLED": "false"})
    try:
        out["query"] = time_queries(server)
        return out
    finally:
        server.stop()


def run_flask(work):
    if os.environ.get("SKIP_FLASK"):
        return None
    port = free_port()
    app = REPO / "bench" / "baseline" / "app.py"
    env = {"BASELINE_LOG": str(Path(work) / "baseline-log.bin")}
    server = Server("flask", [PYTHON, str(app), str(port)], port, work, env)
    try:
        out = {"ping": bench_ingest(server, "ping", 1, measure_cpu=False), "ingest": []}
        for batch in CONFIG["batches"]:
            out["ingest"].append(bench_ingest(server, "collect", batch))
        out["peak_rss_mb"] = server.rss()
        return out
    finally:
        server.stop()


def run_visibility(work):
    server = clickstream_up(work, "visibility")
    try:
        report = run_json([
            BIN, "bench", "visibility", "--url", server.base, "--rate", str(CONFIG["vis_rate"]),
            "--duration-secs", str(CONFIG["vis_secs"]), "--json",
        ])
        log(f"ack to queryable at {report['offered_rate']:,} events/s: p50 {report['visible_p50_ms']:.0f} ms, "
            f"p99 {report['visible_p99_ms']:.0f} ms")
        return report
    finally:
        server.stop()


def run_drain(work):
    result = drain(work, "drain")
    del result["data"]
    return result


def cargo_bench(package, bench, group):
    """Runs one criterion group (CRITERION_PROFILE, CRITERION_SECS) and returns the
    directory of its estimates."""
    cmd = ["cargo", "bench", "--locked", "-p", package, "--bench", bench]
    if CONFIG["criterion_profile"] != "bench":
        cmd += ["--profile", CONFIG["criterion_profile"]]
    secs = str(CONFIG["criterion_secs"])
    cmd += ["--", "--warm-up-time", secs, "--measurement-time", secs, "--noplot", group]
    log(" ".join(cmd))
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "criterion" / group


def mean_ns(group_dir, name):
    estimates = group_dir / name / "new" / "estimates.json"
    return json.loads(estimates.read_text())["mean"]["point_estimate"]


def run_criterion():
    if os.environ.get("SKIP_CRITERION"):
        return None
    out = {}
    group = cargo_bench("clickstream-event", "validate_encode", "batch_of_100")
    for name in ("parse_only", "parse_validate_encode", "compiled"):
        ns_per_batch = mean_ns(group, name)
        out[name] = {"ns_per_100_events": ns_per_batch, "events_per_sec": 100 / (ns_per_batch * 1e-9)}
    log(f"criterion: value path {out['parse_validate_encode']['events_per_sec']:,.0f} events/s, compiled "
        f"{out['compiled']['events_per_sec']:,.0f} events/s on one core")
    # What the edge adds to the same request when write keys and rate limits are on.
    group = cargo_bench("clickstream-edge", "guard", "edge_guard")
    for name in ("validate_100_events", "write_key_check", "request_of_100_events"):
        out[f"edge_{name}"] = {"ns": mean_ns(group, name)}
    guard, request = out["edge_request_of_100_events"]["ns"], out["edge_validate_100_events"]["ns"]
    log(f"criterion: the edge adds {guard:,.0f} ns to a request of 100 events ({guard / request:.2%} of its validation)")
    # The processor's decode -> Arrow path: fields by name, at resolved positions of a value
    # tree, and read straight from the record by the compiled reader.
    group = cargo_bench("clickstream-process", "decode_rows", "records_1000")
    for name in ("by_name", "resolved", "compiled"):
        ns = mean_ns(group, name)
        out[f"decode_rows_{name}"] = {"ns_per_1000_records": ns, "records_per_sec": 1000 / (ns * 1e-9)}
    log(f"criterion: decode -> Arrow {out['decode_rows_by_name']['records_per_sec']:,.0f} records/s by name, "
        f"{out['decode_rows_resolved']['records_per_sec']:,.0f} resolved, "
        f"{out['decode_rows_compiled']['records_per_sec']:,.0f} compiled")
    return out


def machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    binaries = {"binary_bytes": Path(BIN).stat().st_size}
    if CONFIG["baseline_bin"]:
        binaries["baseline_binary_bytes"] = Path(CONFIG["baseline_bin"]).stat().st_size
    return {"cores": os.cpu_count(), "cpu": model, "load_average_at_start": os.getloadavg(), "commit": commit,
            "binary": BIN, **binaries, "geo_data": [f.name for f in geo_data()]}


def main():
    import report

    started = datetime.datetime.now(datetime.timezone.utc)
    results = {"started": started.isoformat(timespec="seconds"), "machine": machine(), "config": CONFIG}
    steps = {
        "ingest": ("clickstream", run_ours),
        "flask": ("flask", run_flask),
        "visibility": ("visibility", run_visibility),
        "drain": ("drain", run_drain),
        "evolution": ("evolution", run_evolution),
        "edge": ("edge", run_edge),
        "segment": ("segment", run_segment),
        "memory": ("memory", run_memory),
        "fast": ("fast", run_fast),
    }
    with tempfile.TemporaryDirectory(prefix="clickstream-bench-") as work:
        for step, (key, run) in steps.items():
            results[key] = run(work) if step in CONFIG["steps"] else None
    results["criterion"] = run_criterion() if "criterion" in CONFIG["steps"] else None
    results["ratios"] = report.ratios(results) if results["clickstream"] else []
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / started.strftime("%Y%m%dT%H%M%SZ")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    table = report.markdown(results)
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(f"results: {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
