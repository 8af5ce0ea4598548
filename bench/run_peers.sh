#!/usr/bin/env bash
# Fan-out against two peers, in one run on one machine: EtherPly's sync server
# beside a plain node `ws` relay (bench/relay/relay.mjs: no parsing, no
# storage) and the automerge-repo sync server (bench/repo/server.mjs, NodeFS
# storage), one writer and N readers in one workspace or document.
#
#   bench/run_peers.sh [BUILD_DIR]        (default: build beside bench/)
#
# Needs BUILD_DIR/etherply and BUILD_DIR/etherply_load, node, jq; installs
# bench/package-lock.json (npm ci) if its packages are missing.
#
# Scenarios (SCENARIOS="fanout-100" runs a subset), each run against the three
# servers one after the other (etherply, relay, automerge-repo):
#   fanout-N     N = 10, 100, 1000 readers; the writer sends 1000 ops at
#                200 ops/s, open loop: p50/p99 send→delivery at a pace all
#                three should keep
#   burst-100    100 readers; the writer sends 1000 ops as fast as it may
#                (etherply_load --rate 0 --window 64: 64 ops in flight; the
#                automerge-repo writer makes its 1000 changes at once): the
#                most deliveries/s each server reaches
# etherply and the relay are driven by etherply_load (bench/load.cc), the
# relay speaking just enough of the protocol for it; automerge-repo by
# bench/repo/fanout.mjs (1 + N Repos in one node process). Both clients
# check that every op reaches every reader exactly once.
#
# For the paced rows it also measures the floor of a durable op here:
# etherply_synced_write_bench, synced writes through EtherPly's store at the
# writer's pace (200/s), no network. An op is seen only once it is on disk,
# so with few readers (the relay's p50 then the network alone) no server
# here can beat the relay's p50 plus that write's p50.
#
# Prints a markdown table with the ratios and writes it to
# BUILD_DIR/bench-peers.md (raw JSON lines: BUILD_DIR/bench-peers.jsonl, each
# with the server's CPU % added). Server CPU % is the server process's CPU
# time over the run's wall time (100% = one core); the relay and
# automerge-repo are one Node.js thread each, etherply runs 2 network threads.
# Exits non-zero if a server dies or a run fails its checks.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
source "$ROOT/bench/lib.sh"
ETHERPLY=${ETHERPLY_BIN:-$BUILD/etherply}
LOAD=${LOAD_BIN:-$BUILD/etherply_load}
SYNCED_WRITE=$BUILD/etherply_synced_write_bench
SCENARIOS=${SCENARIOS:-fanout-10 fanout-100 fanout-1000 burst-100}
OUT_MD=$BUILD/bench-peers.md
OUT_JSONL=$BUILD/bench-peers.jsonl

for bin in "$ETHERPLY" "$LOAD" "$SYNCED_WRITE"; do
  [[ -x $bin ]] || { echo "run_peers.sh: $bin is missing: build it first" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "run_peers.sh: jq is required" >&2; exit 1; }
ensure_node_modules "$ROOT/bench"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/etherply-peers.XXXXXX")
ETHERPLY_PID= RELAY_PID= REPO_PID=
cleanup() {
  stop_pid "$ETHERPLY_PID"
  stop_pid "$RELAY_PID"
  stop_pid "$REPO_PID"
  if [[ ${KEEP:-0} == 1 ]]; then echo "run_peers.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

raise_fd_limit 8192 4200  # 1000 readers: 1000 sockets in each client and each server

start_etherply "$ETHERPLY" "$WORK/data"
start_node_server "$WORK/relay.log" "$ROOT/bench/relay/relay.mjs"
RELAY_PID=$NODE_PID RELAY_PORT=$NODE_PORT
start_node_server "$WORK/repo.log" --expose-gc "$ROOT/bench/repo/server.mjs" --storage "$WORK/repo-data"
REPO_PID=$NODE_PID REPO_PORT=$NODE_PORT

load_args() {  # scenario
  case $1 in
    fanout-*) echo "--writers 1 --readers ${1#fanout-} --rate 200 --ops 1000 --window 1000" ;;
    burst-*) echo "--writers 1 --readers ${1#burst-} --rate 0 --ops 1000 --window 64" ;;
    *) echo "run_peers.sh: unknown scenario $1" >&2; return 1 ;;
  esac
}

repo_args() {  # scenario
  case $1 in
    fanout-*) echo "--readers ${1#fanout-} --rate 200 --ops 1000" ;;
    burst-*) echo "--readers ${1#burst-} --rate 0 --ops 1000" ;;
  esac
}

FAILED=0
# Runs one scenario against one server; appends its JSON line (plus server,
# server_cpu_pct) to OUT_JSONL.
run_one() {  # scenario server
  local scenario=$1 server=$2 pid line status=0 c0 c1 t0 t1
  case $server in
    etherply) pid=$ETHERPLY_PID ;;
    relay) pid=$RELAY_PID ;;
    automerge-repo) pid=$REPO_PID ;;
  esac
  echo "run_peers.sh: $scenario on $server" >&2
  c0=$(cpu_ticks "$pid")
  t0=$(date +%s%N)
  # shellcheck disable=SC2046  # the args are a list of flags
  case $server in
    etherply)
      line=$(timeout 600 "$LOAD" --url "ws://127.0.0.1:$ETHERPLY_PORT" --token "$TOKEN" \
        --label "$scenario" $(load_args "$scenario")) || status=$? ;;
    relay)
      line=$(timeout 600 "$LOAD" --url "ws://127.0.0.1:$RELAY_PORT" --token unused \
        --label "$scenario" $(load_args "$scenario")) || status=$? ;;
    automerge-repo)
      # the last line: automerge-repo itself may console.log before it
      line=$(cd "$ROOT/bench" && timeout 600 node repo/fanout.mjs --url "ws://127.0.0.1:$REPO_PORT" \
        --label "$scenario" $(repo_args "$scenario") | tail -1) || status=$? ;;
  esac
  t1=$(date +%s%N)
  kill -0 "$pid" 2>/dev/null || { echo "run_peers.sh: $server DIED during $scenario" >&2; FAILED=1; return; }
  c1=$(cpu_ticks "$pid")
  if [[ -z $line ]]; then
    echo "run_peers.sh: $scenario on $server produced no result (exit $status)" >&2
    FAILED=1
    return
  fi
  ((status == 0)) || FAILED=1
  jq -c --arg server "$server" --argjson pct "$(cpu_pct "$c0" "$c1" "$t0" "$t1")" \
    '. + {server: $server, server_cpu_pct: $pct}' <<<"$line" >>"$OUT_JSONL"
}

: >"$OUT_JSONL"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for scenario in $SCENARIOS; do
  for server in etherply relay automerge-repo; do
    run_one "$scenario" "$server"
  done
done
FLOOR=
if [[ " $SCENARIOS " == *" fanout-"* ]]; then
  echo "run_peers.sh: synced writes at 200/s (the floor of a paced durable op)" >&2
  FLOOR=$("$SYNCED_WRITE" "$WORK/synced-write" 1000 200)
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "| scenario | server | deliveries | deliveries/s | send→delivery p50 / p99 / max ms | checks | client CPU | server CPU |"
  echo "|---|---|---:|---:|---:|---|---:|---:|"
  jq -r '
    def ms: (. / 10 | round) / 100;
    def checks: if .ok then "ok" else "FAILED: lost \(.lost), dup \(.duplicates) (\(.reason))" end;
    "| \(.label) | \(.server) | \(.deliveries) / \(.deliveries_expected) | \(.deliveries_per_s) | \(.delivery_us.p50 | ms) / \(.delivery_us.p99 | ms) / \(.delivery_us.max | ms) | \(checks) | \(.client_cpu_pct)% | \(.server_cpu_pct)% |"
  ' "$OUT_JSONL"
  echo
  echo "Ratios (latency: peer's / etherply's, above 1 = etherply faster; deliveries/s: etherply's / peer's):"
  echo
  echo "| scenario | relay p50 / etherply p50 | relay p99 / etherply p99 | etherply / relay deliveries/s | repo p50 / etherply p50 | repo p99 / etherply p99 | etherply / repo deliveries/s |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  jq -rs '
    def r2: . * 100 | round / 100;
    def ratio(a; b): if b == 0 or b == null or a == null then "–" else (a / b | r2 | tostring) + "x" end;
    group_by(.label)[] |
    (map(select(.server == "etherply")) | first) as $e |
    (map(select(.server == "relay")) | first) as $r |
    (map(select(.server == "automerge-repo")) | first) as $a |
    "| \($e.label) | \(ratio($r.delivery_us.p50; $e.delivery_us.p50)) | \(ratio($r.delivery_us.p99; $e.delivery_us.p99)) | \(ratio($e.deliveries_per_s; $r.deliveries_per_s)) | \(ratio($a.delivery_us.p50; $e.delivery_us.p50)) | \(ratio($a.delivery_us.p99; $e.delivery_us.p99)) | \(ratio($e.deliveries_per_s; $a.deliveries_per_s)) |"
  ' "$OUT_JSONL"
  if [[ -n $FLOOR ]]; then
    echo
    echo "A paced durable op (seen only once on disk) against the relay's p50 plus the p50 of a synced write through EtherPly's store at 200/s, no network ($(jq -r '.write_us | "p50 \(.p50) µs, p99 \(.p99) µs, max \(.max) µs"' <<<"$FLOOR") over 1000 writes). With few readers, where the relay's p50 is the network alone, that sum is the floor:"
    echo
    echo "| scenario | relay p50 ms | synced write p50 ms | sum ms | etherply p50 ms | etherply / sum | 2x relay p50 ms |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    jq -rs --argjson w "$(jq '.write_us.p50' <<<"$FLOOR")" '
      def ms: (. / 10 | round) / 100;
      group_by(.label)[] | select(.[0].label | startswith("fanout-")) |
      (map(select(.server == "etherply")) | first) as $e |
      (map(select(.server == "relay")) | first) as $r |
      "| \($e.label) | \($r.delivery_us.p50 | ms) | \($w | ms) | \($r.delivery_us.p50 + $w | ms) | \($e.delivery_us.p50 | ms) | \($e.delivery_us.p50 / ($r.delivery_us.p50 + $w) * 100 | round / 100)x | \(2 * $r.delivery_us.p50 | ms) |"
    ' "$OUT_JSONL"
  fi
  echo
  echo "Servers: etherply serve defaults (--threads 2, synced RocksDB writes); relay: node $(node --version), ws $(jq -r .version "$ROOT/bench/node_modules/ws/package.json"); automerge-repo $(jq -r .version "$ROOT/bench/node_modules/@automerge/automerge-repo/package.json") with NodeFS storage. Clients: etherply_load (one thread) for etherply and the relay, bench/repo/fanout.mjs (one node process) for automerge-repo; all on the same host over loopback."
  echo "Machine: nproc $(nproc); load average before: $load_before; after: $load_after."
} | tee "$OUT_MD"
for log in "$WORK/data.log" "$WORK/relay.log" "$WORK/repo.log"; do
  if grep -q -E ' (WARN|ERROR) |Error' "$log"; then
    echo "run_peers.sh: $log has warnings or errors:" >&2
    grep -E ' (WARN|ERROR) |Error' "$log" | head -5 >&2
  fi
done
echo "run_peers.sh: table written to $OUT_MD" >&2
exit $FAILED
