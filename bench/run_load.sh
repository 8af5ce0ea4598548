#!/usr/bin/env bash
# The sync server under load: a fresh `etherply serve` (temporary data dir,
# generated secret) driven by etherply_load (bench/load.cc) through the
# scenarios below, in one run on one machine.
#
#   bench/run_load.sh [BUILD_DIR]        (default: build beside bench/)
#
# Needs BUILD_DIR/etherply and BUILD_DIR/etherply_load (or ETHERPLY_BIN and
# LOAD_BIN), and jq.
#
# Scenarios (SCENARIOS="ingest-16-w64 fanout-100" runs a subset):
#   ingest-N-w1      N = 1, 16, 64 writers in one workspace, each with one op
#                    in flight (it sends the next when its broadcast is back):
#                    latency with N ops at a time
#   ingest-N-w64     the same with up to 64 ops in flight per writer: the most
#                    the server ingests (closed loop, so latency here is mostly
#                    queueing: about N x 64 / throughput)
#                    (ingest: INGEST_OPS ops per writer, default 2000, or 10 s,
#                    whichever ends first)
#   fanout-10        1 writer at 200 ops/s (1000 ops, 5 s), 10 readers, one
#                    workspace; open loop (window 1000): the writer keeps its
#                    pace even when broadcasts fall behind
#   fanout-100       ... 100 readers
#   fanout-1000      ... 1000 readers
#   multi-10         10 workspaces x (4 writers, 4 readers), window 64, 1000
#                    ops per writer or 10 s
#   ingestws-N       N = 1, 16, 64 writers, each in its own workspace, one op
#                    in flight each: durable ingest without the fan-out to the
#                    other writers (not in the default list; bench/run_ingest.sh
#                    runs it beside db_bench)
# Before the scenarios it measures the raw rate of synced appends on the data
# dir's disk (500 x (4 KiB write + fdatasync), by dd oflag=dsync): the ceiling
# on the server's durable group commits per second.
#
# Prints a markdown table (also written to BUILD_DIR/bench-load.md; the raw
# JSON lines of etherply_load, with the server's CPU share added, go to
# BUILD_DIR/bench-load.jsonl). Server CPU % is the server process's CPU time
# over the scenario's wall time, connecting included (100% = one core).
# Exits non-zero if the server dies or any scenario fails its checks (an op
# lost, duplicated or delivered out of the workspace's one order, an error).
# KEEP=1 keeps the temporary directory (data, server log) for a look.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/bench/lib.sh"
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ETHERPLY=${ETHERPLY_BIN:-$BUILD/etherply}
LOAD=${LOAD_BIN:-$BUILD/etherply_load}
SCENARIOS=${SCENARIOS:-ingest-1-w1 ingest-16-w1 ingest-64-w1 ingest-1-w64 ingest-16-w64 ingest-64-w64 fanout-10 fanout-100 fanout-1000 multi-10}
OUT_MD=${OUT_MD:-$BUILD/bench-load.md}  # bench/run_ingest.sh writes elsewhere
OUT_JSONL=${OUT_JSONL:-$BUILD/bench-load.jsonl}
INGEST_OPS=${INGEST_OPS:-2000}
FSYNC_COUNT=500

for bin in "$ETHERPLY" "$LOAD"; do
  [[ -x $bin ]] || { echo "run_load.sh: $bin is missing: build it first" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "run_load.sh: jq is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/etherply-load.XXXXXX")
ETHERPLY_PID=
cleanup() {
  stop_pid "$ETHERPLY_PID"
  if [[ ${KEEP:-0} == 1 ]]; then echo "run_load.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

start_server() {
  start_etherply "$ETHERPLY" "$WORK/data"
  SERVER_PID=$ETHERPLY_PID
  PORT=$ETHERPLY_PORT
}

server_cpu_ticks() { cpu_ticks "$SERVER_PID"; }

scenario_args() {
  case $1 in
    ingest-*-w*)
      local writers=${1#ingest-}
      echo "--writers ${writers%-w*} --window ${1##*-w} --ops $INGEST_OPS --duration 10" ;;
    ingestws-*) echo "--workspaces ${1#ingestws-} --writers 1 --window 1 --ops $INGEST_OPS --duration 10" ;;
    fanout-*) echo "--writers 1 --readers ${1#fanout-} --rate 200 --ops 1000 --window 1000" ;;
    multi-10) echo "--workspaces 10 --writers 4 --readers 4 --ops 1000 --duration 10" ;;
    *) echo "run_load.sh: unknown scenario $1" >&2; return 1 ;;
  esac
}

# Runs one scenario; appends its JSON line (plus server_cpu_pct) to OUT_JSONL.
run_scenario() {
  local label=$1 args line status=0 cpu0 cpu1 t0 t1 pct
  args=$(scenario_args "$label")
  echo "run_load.sh: $label: $args" >&2
  cpu0=$(server_cpu_ticks)
  t0=$(date +%s%N)
  # shellcheck disable=SC2086  # args is a list of flags
  line=$(timeout 600 "$LOAD" --url "ws://127.0.0.1:$PORT" --token "$TOKEN" --label "$label" $args) ||
    status=$?
  t1=$(date +%s%N)
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "run_load.sh: THE SERVER DIED during $label" >&2; FAILED=1; return; }
  cpu1=$(server_cpu_ticks)
  pct=$(cpu_pct "$cpu0" "$cpu1" "$t0" "$t1")
  if [[ -z $line ]]; then
    echo "run_load.sh: $label produced no result (exit $status)" >&2
    FAILED=1
    return
  fi
  ((status == 0)) || FAILED=1
  jq -c --argjson pct "$pct" '. + {server_cpu_pct: $pct}' <<<"$line" >>"$OUT_JSONL"
}

print_table() {
  local load_before=$1 load_after=$2
  echo "| scenario | connections | window, rate | ops acked | ops/s | send→broadcast p50 / p99 / max ms | deliveries | deliveries/s | send→delivery p50 / p99 / max ms | server msgs out/s | checks | client CPU | server CPU |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
  jq -r '
    def ms: (. / 10 | round) / 100;
    def lat(s): if s.n == 0 then "–" else "\(s.p50 | ms) / \(s.p99 | ms) / \(s.max | ms)" end;
    def checks: if .ok then "ok"
      else "FAILED: lost \(.lost), dup \(.duplicates), order \(.order_mismatches), errors \(.errors) (\(.reason))" end;
    "| \(.label) | \(.config.workspaces) × (\(.config.writers) w + \(.config.readers) r) | \(.config.window)\(if .config.rate > 0 then ", \(.config.rate)/s" else "" end) | \(.ops_acked) | \(.ops_per_s) | \(lat(.broadcast_us)) | \(.deliveries) | \(.deliveries_per_s) | \(lat(.delivery_us)) | \(.receptions_per_s) | \(checks) | \(.client_cpu_pct)% | \(.server_cpu_pct)% |"
  ' "$OUT_JSONL"
  echo
  echo "Where the writer's send→broadcast goes, split at the server's timestamp (taken when the op reaches its workspace, before the durable write):"
  echo
  echo "| scenario | send→apply p50 / p99 ms | apply→broadcast p50 / p99 ms |"
  echo "|---|---:|---:|"
  jq -r '
    def ms: (. / 10 | round) / 100;
    "| \(.label) | \(.send_to_apply_us.p50 | ms) / \(.send_to_apply_us.p99 | ms) | \(.apply_to_broadcast_us.p50 | ms) / \(.apply_to_broadcast_us.p99 | ms) |"
  ' "$OUT_JSONL"
  echo
  echo "Disk of the data dir: $FSYNC_RATE synced 4 KiB appends/s ($FSYNC_COUNT × write + fdatasync, dd oflag=dsync), measured just before the scenarios."
  echo "Machine: nproc $(nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); load average before: $load_before; after: $load_after."
  echo "Server: etherply serve defaults (--threads 2), RocksDB synced writes, group commit; client and server on the same host over loopback."
}

raise_fd_limit 8192 2100  # 1000 readers: 1000 sockets in the tool, 1000 in the server
: >"$OUT_JSONL"
FSYNC_RATE=$(fsync_rate "$WORK" $FSYNC_COUNT)
echo "run_load.sh: disk: $FSYNC_RATE synced appends/s" >&2
start_server
FAILED=0
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for scenario in $SCENARIOS; do
  run_scenario "$scenario"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
warnings=$(grep -c -E ' (WARN|ERROR) ' "$WORK/data.log" || true)
((warnings == 0)) || { echo "run_load.sh: the server logged $warnings warnings/errors:" >&2; grep -E ' (WARN|ERROR) ' "$WORK/data.log" | head -5 >&2; }
print_table "$load_before" "$load_after" | tee "$OUT_MD"
echo "run_load.sh: table written to $OUT_MD" >&2
exit $FAILED
