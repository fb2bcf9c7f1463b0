#!/usr/bin/env bash
# Ingest throughput and ack latency of `clickstream up` on each backend, side by side in one
# run: embedded log + file lake (the default), Kafka (librdkafka's mock cluster, hosted by
# `clickstream bench mock-kafka`) + file lake, and embedded log + S3 lake (moto's S3
# server). Load: `clickstream bench ingest`, bounded, on 127.0.0.1.
#
#   ./bench/backends.sh                       # release build, 10 s per backend
#   CLICKSTREAM_BIN=... SECS=3 ./bench/backends.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/clickstream-target}
secs=${SECS:-10}
batch=${BATCH:-100}
conns=${CONNECTIONS:-32}
moto=${CLICKSTREAM_MOTO_SERVER:-$HOME/.cache/clickstream-venv/bin/moto_server}
if [ -z "${CLICKSTREAM_BIN:-}" ]; then
  cargo build --release --locked -p clickstream
  CLICKSTREAM_BIN="$CARGO_TARGET_DIR/release/clickstream"
fi
bin=$CLICKSTREAM_BIN
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_ping() {
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/ping" >/dev/null && return 0
    sleep 0.1
  done
  echo "server on :$1 did not come up" >&2
  return 1
}

run_mode() {
  local mode=$1 port=$2
  shift 2
  mkdir -p "$work/$mode"
  env "$@" RUST_LOG=warn "$bin" --data-dir "$work/$mode" up --api-port "$port" \
    --registry-port 0 --ui-port 0 >"$work/$mode.log" 2>&1 &
  local up=$!
  pids+=("$up")
  wait_ping "$port"
  printf '%-22s ' "$mode"
  "$bin" bench ingest --url "http://127.0.0.1:$port" --batch-size "$batch" \
    --connections "$conns" --duration-secs "$secs"
  kill "$up"
  wait "$up" 2>/dev/null || true
}

run_mode "embedded log, file" 61101

"$bin" bench mock-kafka >"$work/kafka.txt" 2>"$work/kafka.log" &
pids+=("$!")
for _ in $(seq 1 100); do [ -s "$work/kafka.txt" ] && break; sleep 0.1; done
run_mode "kafka (mock), file" 61102 KAFKA_BOOTSTRAP_SERVERS="$(head -1 "$work/kafka.txt")"

if [ -x "$moto" ]; then
  moto_port=61199
  "$moto" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$moto_port/" >/dev/null && break; sleep 0.1; done
  run_mode "embedded log, s3 (moto)" 61103 MINIO_ENDPOINT="http://127.0.0.1:$moto_port" \
    MINIO_ROOT_USER=bench MINIO_ROOT_PASSWORD=bench
else
  echo "moto_server not found at $moto (scripts/test installs it): S3 mode skipped" >&2
  exit 1
fi
