#!/usr/bin/env bash
# Processor throughput with every enricher on vs every enricher off, release build,
# embedded defaults, on 127.0.0.1: one ingest backlog (BACKLOG_SECS of load, processor
# off), copied twice, then `clickstream process --drain` over each copy, once with the
# default [enrich] (all on; geo with DB-IP City Lite when scripts/setup-geoip has put it
# in data/geoip, else off), once with all on but duplicates, and once with all enrichers
# off. `bench ingest` gives every event a fresh id, so the backlog holds no duplicates;
# the middle run shows what the duplicate check itself costs. Prints the three rates.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/clickstream-target}
BACKLOG_SECS=${BACKLOG_SECS:-5}

# SKIP_BUILD=1 and CLICKSTREAM_BIN=... run an already built binary.
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p clickstream
bin=${CLICKSTREAM_BIN:-$CARGO_TARGET_DIR/release/clickstream}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export CLICKSTREAM_INGEST__HOST=127.0.0.1 CLICKSTREAM_REGISTRY__HOST=127.0.0.1 RUST_LOG=warn
wait_up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/ping" >/dev/null && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }

data="$work/backlog"; api=$(free_port); reg=$(free_port)
CLICKSTREAM_PROCESSOR__ENABLED=false "$bin" --data-dir "$data" up --api-port "$api" --registry-port "$reg" &
server=$!; pids+=("$server"); wait_up "$api"
"$bin" bench ingest --url "http://127.0.0.1:$api" --batch-size 1000 --connections 16 --duration-secs "$BACKLOG_SECS" --json >"$work/backlog.json"
kill -TERM "$server"; wait "$server" || true
cp -a "$data" "$work/on"; cp -a "$data" "$work/on-nodup"; mv "$data" "$work/off"
if ls data/geoip/*.mmdb >/dev/null 2>&1; then
  for d in on on-nodup; do mkdir -p "$work/$d/geoip"; ln -s "$repo"/data/geoip/*.mmdb "$work/$d/geoip/"; done
  geo="DB-IP City Lite"
else
  geo="none (run scripts/setup-geoip)"
fi

drain() { # data dir, extra env... -> the drain line
  local dir=$1; shift
  "$bin" --data-dir "$dir" registry --port "$reg" & local registry=$!
  env "$@" CLICKSTREAM_REGISTRY__URL="http://127.0.0.1:$reg" "$bin" --data-dir "$dir" process --drain | tail -2 | tr '\n' ' '

  kill "$registry"; wait "$registry" 2>/dev/null || true
}
on=$(drain "$work/on" X=1)
nodup=$(drain "$work/on-nodup" CLICKSTREAM_ENRICH__DUPLICATES__ENABLED=false)
off=$(drain "$work/off" \
  CLICKSTREAM_ENRICH__USER_AGENT__ENABLED=false CLICKSTREAM_ENRICH__GEO__ENABLED=false \
  CLICKSTREAM_ENRICH__REFERRER__ENABLED=false CLICKSTREAM_ENRICH__CAMPAIGN__ENABLED=false \
  CLICKSTREAM_ENRICH__BOTS__ENABLED=false CLICKSTREAM_ENRICH__SESSIONS__ENABLED=false \
  CLICKSTREAM_ENRICH__DUPLICATES__ENABLED=false)
echo "backlog: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events_acked"])' "$work/backlog.json") events; geo data: $geo"
echo "enrichers on:                  $on"
echo "enrichers on, duplicates off:  $nodup"
echo "enrichers off:                 $off"
