#!/usr/bin/env python3
"""Standard SQL questions over one existing data dir, for several builds and DuckDB.

    ~/.cache/clickstream-bench-venv/bin/python bench/sql_ab.py DATA_DIR BIN [BIN ...]

For each binary in turn: `clickstream up` on DATA_DIR with the processor off (so nothing
writes or compacts meanwhile), one query thread, each question over `events` once warm
then timed QUERY_REPS times (default 5) through POST /api/sql; then DuckDB on one thread
over the same active files (`read_parquet` with Hive partitions, the file list from the
Delta log). Prints the medians in ms, a column per engine, and each one's geometric mean.
Used for the A/B comparisons in bench/README.md ("SQL: a Parquet scan of the version's
files"); `bench/run.py`'s ingest step is the full, self-contained measurement.
"""

import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from questions import EVENTS_QUESTIONS as QUESTIONS

REPO = Path(__file__).resolve().parent.parent
REPS = int(os.environ.get("QUERY_REPS", "5"))


def question(name):
    return (REPO / "crates/query/tests/sql" / f"{name}.sql").read_text()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_sql(base, sql):
    body = json.dumps({"sql": sql}).encode()
    request = urllib.request.Request(f"{base}/api/sql", data=body,
                                     headers={"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as answer:
        answer.read()
    return time.perf_counter() - started


def median_ms(run):
    run()
    return statistics.median(run() for _ in range(REPS)) * 1e3


def ours(data, binary):
    api, registry, ui = free_port(), free_port(), free_port()
    env = dict(os.environ, RUST_LOG="warn", CLICKSTREAM_PROCESSOR__ENABLED="false",
               CLICKSTREAM_QUERY__THREADS="1", CLICKSTREAM_INGEST__HOST="127.0.0.1",
               CLICKSTREAM_REGISTRY__HOST="127.0.0.1", CLICKSTREAM_UI__HOST="127.0.0.1",
               CLICKSTREAM_UI__PORT=str(ui))
    server = subprocess.Popen([binary, "--data-dir", data, "up", "--api-port", str(api),
                               "--registry-port", str(registry)], env=env)
    base = f"http://127.0.0.1:{api}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/ping", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        return [median_ms(lambda q=q: post_sql(base, question(q))) for q in QUESTIONS]
    finally:
        server.terminate()
        server.wait()


def duckdb_times(data):
    import deltalake
    import duckdb

    files = deltalake.DeltaTable(str(Path(data) / "lake/clickstream-data/events")).file_uris()
    con = duckdb.connect()
    con.execute("SET threads TO 1")
    listed = ", ".join(f"'{f}'" for f in files)
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true)")

    def timed(sql):
        started = time.perf_counter()
        con.execute(sql).fetchall()
        return time.perf_counter() - started

    return [median_ms(lambda q=q: timed(question(q))) for q in QUESTIONS]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data, binaries = sys.argv[1], sys.argv[2:]
    columns = [(Path(b).name, ours(data, b)) for b in binaries] + [("duckdb", duckdb_times(data))]
    print(f"{'question':36}" + "".join(f"{name[-14:]:>16}" for name, _ in columns))
    for row, name in enumerate(QUESTIONS):
        print(f"{name:36}" + "".join(f"{times[row]:16.1f}" for _, times in columns))
    geomeans = [math.exp(sum(map(math.log, times)) / len(times)) for _, times in columns]
    print(f"{'geometric mean':36}" + "".join(f"{g:16.1f}" for g in geomeans))


if __name__ == "__main__":
    main()
