#!/usr/bin/env bash
# The whole benchmark in one command: builds release (unless CLICKSTREAM_BIN names a
# binary), installs the Python side (Flask + fastavro baseline, DuckDB) into a venv, then
# bench/run.py drives everything on 127.0.0.1 with bounded load and writes
# bench/results/<time>.json and <time>.md (the table, also printed).
#
#   ./bench/run.sh                 # full run, release build, about 10 minutes
#   QUICK=1 ./bench/run.sh         # seconds per step instead of tens: a smoke test
#   CLICKSTREAM_BIN=path/to/clickstream QUICK=1 CRITERION_PROFILE=dev ./bench/run.sh
#
# Knobs (environment): QUICK, CLICKSTREAM_BIN, CONNECTIONS (32), INGEST_SECS (10),
# BATCHES ("1 100 1000"), EVOLUTION_REPS (2), EDGE_REPS (3), SEGMENT_REPS (3), SEGMENT_POOL (1000), MEMORY_BACKLOG (1500000), MEMORY_SETTLE_SECS (20), STEPS, BASELINE_BIN, VIS_RATE (2000), VIS_SECS (20), BACKLOG_SECS (5), QUERY_REPS (5),
# CRITERION_PROFILE (bench; `dev` for a quick check), SKIP_CRITERION, SKIP_FLASK,
# SKIP_QUERIES, BENCH_VENV (~/.cache/clickstream-bench-venv).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/clickstream-target}
venv=${BENCH_VENV:-$HOME/.cache/clickstream-bench-venv}

if [ -z "${CLICKSTREAM_BIN:-}" ]; then
  echo "==> building clickstream (release)"
  cargo build --release --locked -p clickstream
  export CLICKSTREAM_BIN="$CARGO_TARGET_DIR/release/clickstream"
fi

requirements=bench/requirements.txt
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the Python side of the bench into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$venv/.requirements.sha256"
fi

exec "$venv/bin/python" bench/run.py "$@"
