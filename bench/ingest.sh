#!/usr/bin/env bash
# End-to-end ingest benchmark: release build, `clickstream up` on embedded defaults in a
# temp dir, closed-loop load on /collect at several batch sizes, results as JSON lines in
# bench/results/ingest-<time>.jsonl and a table on stdout. Load goes to 127.0.0.1 only and
# is bounded in time (DURATION seconds per run).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/clickstream-target}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
BATCHES=${BATCHES:-"1 100 1000"}

cargo build --release --locked -p clickstream
bin="$CARGO_TARGET_DIR/release/clickstream"
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CLICKSTREAM_INGEST__HOST=127.0.0.1 CLICKSTREAM_REGISTRY__HOST=127.0.0.1 RUST_LOG=warn \
  "$bin" --data-dir "$data" up --api-port "$port" --registry-port "$rport" --ui-port 0 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/ping" >/dev/null && break
  sleep 0.1
done

mkdir -p bench/results
out="bench/results/ingest-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "clickstream up (embedded log, fsync=always), $CONNECTIONS connections, ${DURATION}s per run, $(nproc) cores"
for batch in $BATCHES; do
  "$bin" bench ingest --url "http://127.0.0.1:$port" --batch-size "$batch" \
    --connections "$CONNECTIONS" --duration-secs "$DURATION" --json | tee -a "$out" >/dev/null
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| batch | events/s | p50 ms | p99 ms | max ms | failed |")
print("|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['batch_size']} | {r['events_per_sec']:,.0f} | {r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} | {r['latency_max_ms']:.2f} | {r['requests_failed'] + r['transport_errors']} |")
PY
rss=$(awk '/VmHWM/ {print $2}' /proc/$server/status 2>/dev/null || echo "?")
echo "server peak RSS: ${rss} kB; results in $out"
