#!/usr/bin/env bash
# Growth: one workspace grown to GROWTH_MAX changes (default 1,000,000) through
# a fresh `etherply serve`, probing op latency and server memory on the way,
# then the load time of the workspace after a restart, beside the reference
# (@automerge/automerge 3.5) loading the same document in the same run.
#
#   bench/run_growth.sh [BUILD_DIR]          GROWTH_MAX=100000 for a short run
#
# Steps, for each size in 1,000 / 10,000 / 100,000 / 1,000,000 (up to
# GROWTH_MAX): fill the workspace with etherply_load (16 writers, 64 ops in
# flight each; every op a new key, so every op is a new change), then probe:
# 1 writer, one op at a time, 1,000 ops: send→broadcast p50/p99 (durable and
# broadcast), and the server's VmRSS. Then: export the document
# (GET /v1/workspaces/{id}/doc: its change chunks), restart the server, and
# time the first request that needs the workspace (GET /v1/history?limit=1:
# the cold load from RocksDB); the reference times A.load of the exported
# changes and of its own save() of them (bench/growth_ref.mjs), each in a
# fresh process.
#
# Prints a markdown table (also BUILD_DIR/bench-growth.md). Needs jq, curl, node.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ETHERPLY=$BUILD/etherply
LOAD=$BUILD/etherply_load
MAX=${GROWTH_MAX:-1000000}
OUT_MD=$BUILD/bench-growth.md
WS=growth-0
PROBE_OPS=1000
FILL_WRITERS=16

for bin in "$ETHERPLY" "$LOAD"; do
  [[ -x $bin ]] || { echo "run_growth.sh: $bin is missing" >&2; exit 1; }
done
for tool in jq curl node; do
  command -v $tool >/dev/null || { echo "run_growth.sh: $tool is required" >&2; exit 1; }
done
source "$ROOT/bench/lib.sh"
ensure_node_modules "$ROOT/bench"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/etherply-growth.XXXXXX")
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "run_growth.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ulimit -n 4096 2>/dev/null || true

export ETHERPLY_JWT_SECRET
ETHERPLY_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
STARTS=0
start_server() {  # a fresh log per start: wait_for_port reads the first port in it
  STARTS=$((STARTS + 1))
  "$ETHERPLY" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" --max-message-bytes 1048576 \
    2>"$WORK/server-$STARTS.log" &
  SERVER_PID=$!
  PORT=$(wait_for_port "$SERVER_PID" "$WORK/server-$STARTS.log" \
    '.*etherply listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*')
}
stop_server() {
  stop_pid "$SERVER_PID"
  SERVER_PID=
}
rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

start_server
TOKEN=$("$ETHERPLY" token --sub growth --scope "read write" --workspace "$WS" --ttl 4h)
load() {  # load LABEL ARGS...: one etherply_load run on the workspace; prints its JSON line
  local label=$1
  shift
  timeout 3600 "$LOAD" --url "ws://127.0.0.1:$PORT" --token "$TOKEN" --workspace-prefix growth \
    --label "$label" --drain-timeout 120 "$@" 2>"$WORK/load-$label.log"
}

changes=0
next_op=0
rows=()
for size in 1000 10000 100000 1000000; do
  ((size <= MAX)) || break
  need=$((size - changes - PROBE_OPS))
  if ((need > 0)); then
    per=$(((need + FILL_WRITERS - 1) / FILL_WRITERS))
    echo "run_growth.sh: filling to $size changes ($FILL_WRITERS x $per ops)" >&2
    line=$(load "fill-$size" --writers $FILL_WRITERS --window 64 --ops "$per" --first-op "$next_op") ||
      { echo "run_growth.sh: fill to $size failed: $line" >&2; tail -5 "$WORK/load-fill-$size.log" >&2; exit 1; }
    changes=$((changes + FILL_WRITERS * per))
    next_op=$((next_op + per))
  fi
  line=$(load "probe-$size" --writers 1 --window 1 --ops $PROBE_OPS --first-op "$next_op") ||
    { echo "run_growth.sh: probe at $size failed: $line" >&2; tail -5 "$WORK/load-probe-$size.log" >&2; exit 1; }
  changes=$((changes + PROBE_OPS))
  next_op=$((next_op + PROBE_OPS))
  rows+=("$(jq -r --arg c "$changes" --arg rss "$(rss_mb)" \
    '"| \($c) | \(.broadcast_us.p50 / 1000) / \(.broadcast_us.p99 / 1000) | \(.ops_per_s) | \($rss) |"' <<<"$line")")
  echo "run_growth.sh: ${rows[-1]}" >&2
done

curl -sf -H "Authorization: Bearer $TOKEN" -o "$WORK/doc.changes" "http://127.0.0.1:$PORT/v1/workspaces/$WS/doc"
stop_server
start_server
load_s=$(curl -sf -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/v1/history/$WS?limit=1")
loaded_rss=$(rss_mb)
ref=$(node --max-old-space-size=16384 "$ROOT/bench/growth_ref.mjs" "$WORK/doc.changes")

{
  echo "| changes | op send→broadcast p50 / p99 ms | probe ops/s | server RSS MB |"
  echo "|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  jq -r --arg ours "$load_s" --arg rss "$loaded_rss" --arg n "$changes" '
    "Load after a restart, \($n) changes: **etherply \($ours) s** (cold, from RocksDB; server RSS after: \($rss) MB); reference in a fresh process: A.load of the same change chunks \(.load_changes_s) s (peak RSS \(.changes_peak_rss_mb) MB), A.load of its save() \(.load_saved_s) s (peak RSS \(.saved_peak_rss_mb) MB). Ratio etherply / reference (saved): \((($ours | tonumber) / .load_saved_s * 100 | round) / 100)x."' <<<"$ref"
  echo
  echo "Machine: nproc $(nproc); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$OUT_MD"
