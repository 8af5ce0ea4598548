#!/usr/bin/env bash
# Replication under load: one nats-server (JetStream, file storage) and two
# `etherply serve` nodes replicating through it, driven by etherply_load
# (bench/load.cc) with the writers on node A and the readers on node B; side
# by side, in the same run, raw JetStream publishing and publish→consume
# latency through the same client library (bench/jetstream_bench.cc).
#
#   bench/run_replication.sh [BUILD_DIR]     (default: build beside bench/)
#
# Scenarios (SCENARIOS="..." for a subset):
#   local-w1       1 writer on A, one op at a time, 1 reader on A: the
#                  single-node baseline of the same run
#   cross-w1       the same with the reader on B: cross-node latency
#   cross-w64      1 writer on A with 64 ops in flight, 1 reader on B
#   cross-16-w64   16 writers on A, 64 in flight each, 1 reader on B:
#                  replicated throughput
# (2000 ops per writer or 10 s, whichever ends first.) Every op must reach
# every connection exactly once, in one order, or the run fails.
#
# Prints a markdown table (also BUILD_DIR/bench-replication.md; raw JSON lines
# in BUILD_DIR/bench-replication.jsonl). Needs nats-server, jq, and
# BUILD_DIR/{etherply,etherply_load,etherply_jetstream_bench}.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
source "$ROOT/bench/lib.sh"
ETHERPLY=$BUILD/etherply
LOAD=$BUILD/etherply_load
JSBENCH=$BUILD/etherply_jetstream_bench
NATS=${NATS_SERVER_BIN:-$(command -v nats-server || echo /usr/sbin/nats-server)}
SCENARIOS=${SCENARIOS:-local-w1 cross-w1 cross-w64 cross-16-w64}
OUT_MD=$BUILD/bench-replication.md
OUT_JSONL=$BUILD/bench-replication.jsonl

for bin in "$ETHERPLY" "$LOAD" "$JSBENCH" "$NATS"; do
  [[ -x $bin ]] || { echo "run_replication.sh: $bin is missing" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "run_replication.sh: jq is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/etherply-repl.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "run_replication.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

NATS_PORT=$(free_port)
mkdir -p "$WORK/nats"
"$NATS" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q "Server is ready" "$WORK/nats.log" && break; sleep 0.1; done
grep -q "Server is ready" "$WORK/nats.log" || { cat "$WORK/nats.log" >&2; exit 1; }

export ETHERPLY_JWT_SECRET
ETHERPLY_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')

# start_node NAME: starts a node; sets PORT_<NAME>.
start_node() {
  local name=$1 port
  : >"$WORK/$name.log"
  "$ETHERPLY" serve --listen 127.0.0.1:0 --data-dir "$WORK/$name" --nats-url "nats://127.0.0.1:$NATS_PORT" \
    --node-id "$name" 2>"$WORK/$name.log" &
  PIDS+=($!)
  port=$(wait_for_port $! "$WORK/$name.log" '.*etherply listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*')
  printf -v "PORT_$name" '%s' "$port"
}
start_node a
start_node b
# Wait until both see each other (announcements) and the stream is ready.
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$PORT_a/v1/status" | jq -e '.replication.stream_ready and (.replication.peers | length > 0)' >/dev/null 2>&1 && break
  sleep 0.1
done
TOKEN=$("$ETHERPLY" token --sub etherply-load --scope "read write" --workspace '*' --ttl 2h)

scenario_args() {
  case $1 in
    local-w1) echo "--writers 1 --readers 1 --window 1 --reader-url ws://127.0.0.1:$PORT_a" ;;
    cross-w1) echo "--writers 1 --readers 1 --window 1 --reader-url ws://127.0.0.1:$PORT_b" ;;
    cross-w64) echo "--writers 1 --readers 1 --window 64 --reader-url ws://127.0.0.1:$PORT_b" ;;
    cross-16-w64) echo "--writers 16 --readers 1 --window 64 --reader-url ws://127.0.0.1:$PORT_b" ;;
    *) echo "run_replication.sh: unknown scenario $1" >&2; return 1 ;;
  esac
}

: >"$OUT_JSONL"
FAILED=0
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for scenario in $SCENARIOS; do
  args=$(scenario_args "$scenario")
  echo "run_replication.sh: $scenario: $args" >&2
  # shellcheck disable=SC2086
  line=$(timeout 600 "$LOAD" --url "ws://127.0.0.1:$PORT_a" --token "$TOKEN" --label "$scenario" \
    --ops 2000 --duration 10 $args) || FAILED=1
  [[ -n $line ]] && echo "$line" >>"$OUT_JSONL" || FAILED=1
done
echo "run_replication.sh: raw JetStream" >&2
RAW=$("$JSBENCH" --url "nats://127.0.0.1:$NATS_PORT" --messages 100000 --bytes 150 --batch 512 \
  --latency-samples 2000)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "| scenario | writers (node A) × window | reader | ops acked | ops/s | send→broadcast p50 / p99 ms (at A) | deliveries/s | send→delivery p50 / p99 / max ms | checks |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---|"
  jq -r '
    def ms: (. / 10 | round) / 100;
    def checks: if .ok then "ok" else "FAILED: lost \(.lost), dup \(.duplicates), order \(.order_mismatches) (\(.reason))" end;
    "| \(.label) | \(.config.writers) × \(.config.window) | \(if (.label | startswith("local")) then "A" else "B" end) | \(.ops_acked) | \(.ops_per_s) | \(.broadcast_us.p50 | ms) / \(.broadcast_us.p99 | ms) | \(.deliveries_per_s) | \(.delivery_us.p50 | ms) / \(.delivery_us.p99 | ms) / \(.delivery_us.max | ms) | \(checks) |"
  ' "$OUT_JSONL"
  echo
  jq -r '"Raw JetStream, same nats-server, same client library (nats.c 3.4): \(.messages) messages of \(.bytes) bytes published asynchronously \(.batch) at a time with message IDs: **\(.publish_per_s) msgs/s**; one at a time, publish → arrival at a push consumer: p50 \(.latency_us.p50 / 1000) ms, p99 \(.latency_us.p99 / 1000) ms."' <<<"$RAW"
  echo
  echo "Machine: nproc $(nproc); load average before: $load_before; after: $load_after. nats-server $("$NATS" --version | awk '{print $NF}'), JetStream file storage; two etherply nodes (defaults), all on one host over loopback."
} | tee "$OUT_MD"
echo "$RAW" >>"$OUT_JSONL"
exit $FAILED
