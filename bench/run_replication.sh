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
# Then the replication path alone, without node A's own ingest in front of
# it (CATCHUP_OPS ops, default 64000, written by 16 writers to 16 workspaces
# while the other side is away; CATCHUP=0 skips these):
#   catchup-apply    node B stopped while A takes the ops (A publishes them
#                    all); B started again: ops/s from its start until it has
#                    received and durably applied every one (its /v1/status)
#   catchup-publish  nats-server stopped while A takes the ops (they wait in
#                    A's outbox); nats-server started again: ops/s from A's
#                    reconnection until its outbox is empty (published and
#                    acknowledged by JetStream), and until B has applied them
# These are the figures to set beside raw JetStream publishing: the rate at
# which ops already durable on one node flow through NATS to another. A
# second raw figure publishes the same way while two durable pull consumers
# receive every message (as both nodes' consumers do): what the server can
# carry when it also delivers, the fairer baseline for the end to end rate.
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
: >"$WORK/nats.log"
# start_nats: (re)starts nats-server on NATS_PORT with its store in
# $WORK/nats; sets NATS_PID once it is ready.
start_nats() {
  local ready
  ready=$(grep -c "Server is ready" "$WORK/nats.log" || true)
  "$NATS" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >>"$WORK/nats.log" 2>&1 &
  NATS_PID=$!
  PIDS+=($NATS_PID)
  for _ in $(seq 100); do
    (($(grep -c "Server is ready" "$WORK/nats.log" || true) > ready)) && return
    sleep 0.1
  done
  cat "$WORK/nats.log" >&2
  return 1
}
start_nats

export ETHERPLY_JWT_SECRET
ETHERPLY_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')

# start_node NAME: (re)starts a node; sets PORT_<NAME> and PID_<NAME>.
start_node() {
  local name=$1 port
  : >"$WORK/$name.log"
  "$ETHERPLY" serve --listen 127.0.0.1:0 --data-dir "$WORK/$name" --nats-url "nats://127.0.0.1:$NATS_PORT" \
    --node-id "$name" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  printf -v "PID_$name" '%s' "$!"
  port=$(wait_for_port $! "$WORK/$name.log" '.*etherply listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*')
  printf -v "PORT_$name" '%s' "$port"
}
# The polls below use bash alone (/dev/tcp; no curl, jq, date or sleep
# process): on a machine busy with a catch-up, starting those processes took
# 100-200 ms a poll, up to a fifth of the catch-up being timed.
# status_field PORT FIELD: sets FIELD to a field of the node's /v1/status
# replication object ("null" if it cannot be read), and STATUS to the reply.
status_field() {
  local fd
  FIELD=null
  STATUS=
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || return 0
  printf 'GET /v1/status HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
  IFS= read -r -d '' -u "$fd" STATUS || true
  exec {fd}>&-
  if [[ $STATUS =~ \"replication\":.*\"$2\":([0-9]+|true|false) ]]; then FIELD=${BASH_REMATCH[1]}; fi
  return 0
}
# replication PORT FIELD: prints that field.
replication() {
  status_field "$1" "$2"
  echo "$FIELD"
}
exec {NEVER_READY}<> <(:) # `read -t` on it sleeps without a process
now_ns() { echo "${EPOCHREALTIME/./}000"; }
# until_true TIMEOUT_S COMMAND...: polls COMMAND every 20 ms until it
# succeeds; prints the nanosecond clock then. Fails on the timeout.
until_true() {
  local deadline=$((${EPOCHREALTIME%.*} + $1))
  shift
  while ! "$@"; do
    ((${EPOCHREALTIME%.*} < deadline)) || { echo "run_replication.sh: timed out waiting for: $*" >&2; return 1; }
    read -r -t 0.02 -u "$NEVER_READY" _ || true
  done
  now_ns
}
at_least() { status_field "$1" "$2"; [[ $FIELD =~ ^[0-9]+$ ]] && ((FIELD >= $3)); }
is_true() { status_field "$1" "$2"; [[ $FIELD == true ]]; }
start_node a
start_node b
# Wait until both see each other (announcements) and the stream is ready.
for _ in $(seq 100); do
  is_true "$PORT_a" stream_ready && [[ $STATUS =~ \"peers\":\[\{ ]] && break
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

# The catch-up scenarios: CATCHUP_OPS ops from 16 writers in 16 workspaces
# on node A while B or NATS is away; each adds one JSON line to CATCHUP_JSON.
# (Not run in a subshell: they restart servers that must outlive them.)
CATCHUP_OPS=${CATCHUP_OPS:-64000}
CATCHUP_PER_WRITER=$((CATCHUP_OPS / 16))
CATCHUP_OPS=$((CATCHUP_PER_WRITER * 16))
fill_a() {  # label
  timeout 600 "$LOAD" --url "ws://127.0.0.1:$PORT_a" --token "$TOKEN" --label "$1" --writers 1 \
    --workspaces 16 --window 64 --ops "$CATCHUP_PER_WRITER" --workspace-prefix "$1" >/dev/null
}
rate() { awk -v n="$1" -v ns=$(($3 - $2)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'; }
catchup_apply() {
  local published_a t0 t1 line
  published_a=$(replication "$PORT_a" published)
  stop_pid "$PID_b"
  fill_a catchup-apply || return 1
  until_true 120 at_least "$PORT_a" published "$((published_a + CATCHUP_OPS))" >/dev/null || return 1
  t0=$(now_ns)
  start_node b
  t1=$(until_true 300 at_least "$PORT_b" received "$CATCHUP_OPS") || return 1
  printf -v line '{"label":"catchup-apply","ok":true,"ops":%d,"apply_per_s":%s,"seconds":%s}' "$CATCHUP_OPS" \
    "$(rate "$CATCHUP_OPS" "$t0" "$t1")" "$(awk -v ns=$((t1 - t0)) 'BEGIN { print ns / 1e9 }')"
  CATCHUP_JSON+=("$line")
}
catchup_publish() {
  local published_a received_b t0 t1 t2 line
  published_a=$(replication "$PORT_a" published)
  received_b=$(replication "$PORT_b" received)
  stop_pid "$NATS_PID"
  fill_a catchup-publish || return 1
  start_nats
  t0=$(until_true 60 is_true "$PORT_a" stream_ready) || return 1
  t1=$(until_true 300 at_least "$PORT_a" published "$((published_a + CATCHUP_OPS))") || return 1
  t2=$(until_true 300 at_least "$PORT_b" received "$((received_b + CATCHUP_OPS))") || return 1
  printf -v line '{"label":"catchup-publish","ok":true,"ops":%d,"publish_per_s":%s,"end_to_end_per_s":%s}' \
    "$CATCHUP_OPS" "$(rate "$CATCHUP_OPS" "$t0" "$t1")" "$(rate "$CATCHUP_OPS" "$t0" "$t2")"
  CATCHUP_JSON+=("$line")
}
CATCHUP_JSON=()
if [[ ${CATCHUP:-1} == 1 ]]; then
  for scenario in catchup_apply catchup_publish; do
    echo "run_replication.sh: ${scenario/_/-}: $CATCHUP_OPS ops" >&2
    if $scenario; then echo "  ${CATCHUP_JSON[-1]}" >&2; else FAILED=1; fi
  done
fi

echo "run_replication.sh: raw JetStream" >&2
RAW=$("$JSBENCH" --url "nats://127.0.0.1:$NATS_PORT" --messages 100000 --bytes 150 --batch 512 \
  --latency-samples 2000)
# The same publishing while two durable pull consumers (one per node, as
# each node's consumer receives every change) fetch and acknowledge every
# message: the JetStream side of what replication asks of the server.
echo "run_replication.sh: raw JetStream with 2 consumers" >&2
RAW_CONSUMED=$("$JSBENCH" --url "nats://127.0.0.1:$NATS_PORT" --messages 100000 --bytes 150 \
  --batch 512 --latency-samples 200 --consumers 2)
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
  if ((${#CATCHUP_JSON[@]})); then
    echo "| catch-up | ops | ops/s | ratio to raw JetStream publishing | ratio to raw publishing with 2 consumers |"
    echo "|---|---:|---:|---:|---:|"
    for line in "${CATCHUP_JSON[@]}"; do
      jq -r --argjson raw "$(jq .publish_per_s <<<"$RAW")" \
        --argjson raw2 "$(jq .publish_consumed_per_s <<<"$RAW_CONSUMED")" '
        def row(what; v): "| \(.label) \(what) | \(.ops) | \(v) | \(v / $raw * 100 | round / 100)x | \(v / $raw2 * 100 | round / 100)x |";
        if .label == "catchup-apply" then row("(B applies)"; .apply_per_s)
        else row("(A publishes)"; .publish_per_s), row("(A to B, end to end)"; .end_to_end_per_s) end
      ' <<<"$line"
    done
    echo
  fi
  jq -r '"Raw JetStream, same nats-server, same client library (nats.c 3.4): \(.messages) messages of \(.bytes) bytes published asynchronously \(.batch) at a time with message IDs: **\(.publish_per_s) msgs/s**; one at a time, publish → arrival at a push consumer: p50 \(.latency_us.p50 / 1000) ms, p99 \(.latency_us.p99 / 1000) ms."' <<<"$RAW"
  jq -r '"The same publishing while two durable pull consumers (one per node) each fetch every message, 256 at a time, acknowledging each fetch once (AckAll): **\(.publish_consumed_per_s) msgs/s** published and consumed by both."' <<<"$RAW_CONSUMED"
  echo
  echo "Machine: nproc $(nproc); load average before: $load_before; after: $load_after. nats-server $("$NATS" --version | awk '{print $NF}'), JetStream file storage; two etherply nodes (defaults), all on one host over loopback."
} | tee "$OUT_MD"
for line in "${CATCHUP_JSON[@]}"; do echo "$line" >>"$OUT_JSONL"; done
echo "$RAW" >>"$OUT_JSONL"
echo "$RAW_CONSUMED" >>"$OUT_JSONL"
exit $FAILED
