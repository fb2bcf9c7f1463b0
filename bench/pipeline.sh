#!/usr/bin/env bash
# Processor and lake benchmark, release build, embedded defaults, everything on 127.0.0.1:
#  1. backlog drain: `up` with the processor off takes BACKLOG_SECS of ingest load, then
#     `clickstream process --drain` commits the backlog to the lake: events/s;
#  2. visibility: a fresh `up` is offered RATE events/s (and LOW_RATE) for VIS_SECS; each
#     request's ack-to-queryable time is measured through the SQL API;
#  3. Parquet file sizes of the events table after each run.
# Results: bench/results/pipeline-<time>.jsonl and a table on stdout.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/clickstream-target}
BACKLOG_SECS=${BACKLOG_SECS:-5}
RATE=${RATE:-10000}
LOW_RATE=${LOW_RATE:-1000}
VIS_SECS=${VIS_SECS:-20}

cargo build --release --locked -p clickstream
bin="$CARGO_TARGET_DIR/release/clickstream"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export CLICKSTREAM_INGEST__HOST=127.0.0.1 CLICKSTREAM_REGISTRY__HOST=127.0.0.1 RUST_LOG=warn
wait_up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/ping" >/dev/null && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }
file_stats() { # dir -> "count median_bytes mean_bytes"
  find "$1" -name '*.parquet' -printf '%s\n' | sort -n | awk '{a[NR]=$1; s+=$1} END {if (NR==0) print 0, 0, 0; else print NR, a[int((NR+1)/2)], int(s/NR)}'
}
mkdir -p bench/results
out="bench/results/pipeline-$(date -u +%Y%m%dT%H%M%SZ).jsonl"

# 1. Backlog, then drain.
data="$work/drain"; api=$(free_port); reg=$(free_port)
CLICKSTREAM_PROCESSOR__ENABLED=false "$bin" --data-dir "$data" up --api-port "$api" --registry-port "$reg" --ui-port 0 &
server=$!; pids+=("$server"); wait_up "$api"
"$bin" bench ingest --url "http://127.0.0.1:$api" --batch-size 1000 --connections 16 --duration-secs "$BACKLOG_SECS" --json >"$work/backlog.json"
kill -TERM "$server"; wait "$server" || true
"$bin" --data-dir "$data" registry --port "$reg" & pids+=("$!")
drain=$(CLICKSTREAM_REGISTRY__URL="http://127.0.0.1:$reg" "$bin" --data-dir "$data" process --drain | tail -1)
read -r files median mean <<<"$(file_stats "$data/lake/clickstream-data/events")"
python3 - "$work/backlog.json" "$drain" "$files" "$median" "$mean" >>"$out" <<'PY'
import json, re, sys
backlog = json.load(open(sys.argv[1]))
m = re.search(r"drained (\d+) events and (\d+) invalid events in ([\d.]+) s: (\d+) events/s", sys.argv[2])
print(json.dumps({"run": "drain", "backlog_events": backlog["events_acked"], "events": int(m[1]), "seconds": float(m[3]),
                  "events_per_sec": int(m[4]), "files": int(sys.argv[3]), "median_file_bytes": int(sys.argv[4]), "mean_file_bytes": int(sys.argv[5])}))
PY

# 2. Visibility at a fixed rate, high and low.
for rate in "$RATE" "$LOW_RATE"; do
  data="$work/vis-$rate"; api=$(free_port)
  "$bin" --data-dir "$data" up --api-port "$api" --registry-port "$(free_port)" --ui-port 0 &
  server=$!; pids+=("$server"); wait_up "$api"
  report=$("$bin" bench visibility --url "http://127.0.0.1:$api" --rate "$rate" --duration-secs "$VIS_SECS" --json)
  kill -TERM "$server"; wait "$server" || true
  read -r files median mean <<<"$(file_stats "$data/lake/clickstream-data/events")"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(run="visibility", files=int(sys.argv[2]), median_file_bytes=int(sys.argv[3]), mean_file_bytes=int(sys.argv[4])); print(json.dumps(r))' \
    "$report" "$files" "$median" "$mean" >>"$out"
done

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    if r["run"] == "drain":
        print(f"processor drain: {r['events']:,} events in {r['seconds']:.1f} s = {r['events_per_sec']:,} events/s; "
              f"events files: {r['files']}, median {r['median_file_bytes']/1e6:.2f} MB")
print()
print("| offered events/s | ack→queryable p50 ms | p99 ms | max ms | requests missing | events files | median file KB |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r["run"] == "visibility":
        print(f"| {r['offered_rate']:,} | {r['visible_p50_ms']:.0f} | {r['visible_p99_ms']:.0f} | {r['visible_max_ms']:.0f} | "
              f"{r['requests_missing']} | {r['files']} | {r['median_file_bytes']/1e3:.0f} |")
print(f"\nresults in {sys.argv[1]}")
PY
