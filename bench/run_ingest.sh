#!/usr/bin/env bash
# Durable ingest against RocksDB's own ceiling: EtherPly's acknowledged ops/s
# with 1, 16 and 64 writer connections beside RocksDB's db_bench doing synced
# writes with 1, 16 and 64 threads, and the disk's raw synced-append rate, all
# on the same disk (TMPDIR), in one run. Each writer count runs db_bench, then
# EtherPly's two rows on a fresh server (as db_bench gets a fresh database),
# each for 10 s as db_bench is, so that each ratio compares runs of the same
# length a few seconds apart on a disk whose speed drifts.
#
#   bench/run_ingest.sh [BUILD_DIR]        (default: build beside bench/)
#
# Needs BUILD_DIR/etherply and BUILD_DIR/etherply_load, jq, and db_bench
# (Debian rocksdb-tools, scripts/setup.sh; DB_BENCH=... to use another).
#
# The pairs, each closed loop with one write in flight per writer:
#   db_bench-N       db_bench fillrandom --sync=1 --threads=N, 10 s: N threads
#                    each doing one synced Put at a time (RocksDB groups the
#                    concurrent ones into one WAL write + fsync). Key 24 bytes,
#                    value 200 bytes: one op of ours is a change chunk of about
#                    150 bytes plus the workspace's heads record (32 bytes per
#                    head) in one synced batch.
#   ingest-N-w1      bench/run_load.sh's: N writers in one workspace, one op in
#                    flight each (every op is also broadcast to all N writers)
#   ingestws-N       N writers, each in its own workspace, one op in flight
#                    each: the durable path without the N-way fan-out
# and, beside db_bench's single thread, one writer that does not wait for
# each acknowledgement, as a client sending a user's edits as they come:
#   ingest-1-w4      one writer with up to 4 ops in flight (its ops share
#                    the group commits that db_bench's one thread cannot)
# plus the disk: 500 x (4 KiB write + fdatasync) by dd oflag=dsync, once
# before and once after.
#
# Prints a markdown table with the ratios etherply/db_bench and writes it to
# BUILD_DIR/bench-ingest.md (raw: BUILD_DIR/bench-ingest.jsonl, the load
# tool's lines; BUILD_DIR/bench-ingest-dbbench.txt, db_bench's output).
# Exits non-zero if a run fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
source "$ROOT/bench/lib.sh"
DB_BENCH=${DB_BENCH:-$(command -v db_bench || command -v rocksdb_db_bench || true)}
OUT_MD=$BUILD/bench-ingest.md
OUT_JSONL=$BUILD/bench-ingest.jsonl
OUT_DBB=$BUILD/bench-ingest-dbbench.txt
THREADS="1 16 64"
FSYNC_COUNT=500
PIPELINED=4  # ops in flight of the one-writer row that does not wait

[[ -n $DB_BENCH && -x $DB_BENCH ]] || { echo "run_ingest.sh: db_bench not found (apt-get install rocksdb-tools)" >&2; exit 1; }
command -v jq >/dev/null || { echo "run_ingest.sh: jq is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/etherply-ingest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT


# db_bench with N threads; prints "ops_per_s p50_us p99_us".
db_bench_run() {
  local threads=$1 out
  rm -rf "$WORK/dbb"
  out=$("$DB_BENCH" --db="$WORK/dbb" --benchmarks=fillrandom --sync=1 --threads="$threads" \
    --num=1000000 --duration=10 --key_size=24 --value_size=200 --histogram=1 2>&1)
  printf '=== db_bench --threads=%s\n%s\n' "$threads" "$out" >>"$OUT_DBB"
  awk '/^fillrandom/ { for (i = 1; i <= NF; i++) if ($i == "ops/sec") ops = $(i - 1) }
       /^Percentiles:/ { p50 = $3; p99 = $7 }
       END { if (ops == "") exit 1; print ops, p50, p99 }' <<<"$out"
}

: >"$OUT_DBB"
FSYNC_BEFORE=$(fsync_rate "$WORK" $FSYNC_COUNT)
echo "run_ingest.sh: disk: $FSYNC_BEFORE synced appends/s" >&2
declare -A DBB
status=0
: >"$OUT_JSONL"
for t in $THREADS; do
  echo "run_ingest.sh: db_bench --threads=$t" >&2
  DBB[$t]=$(db_bench_run "$t")
  echo "  ${DBB[$t]}" >&2
  scenarios="ingest-$t-w1 ingestws-$t"
  [[ $t == 1 ]] && scenarios+=" ingest-1-w$PIPELINED"
  SCENARIOS=$scenarios INGEST_OPS=1000000 OUT_MD=$WORK/load.md OUT_JSONL=$WORK/load.jsonl \
    "$ROOT/bench/run_load.sh" "$BUILD" >/dev/null || status=$?
  cat "$WORK/load.jsonl" >>"$OUT_JSONL"
done
FSYNC_AFTER=$(fsync_rate "$WORK" $FSYNC_COUNT)

{
  echo "| writers | db_bench ops/s (p50 / p99 ms) | ingest-N-w1 ops/s (p50 / p99 ms) | ratio | ingestws-N ops/s (p50 / p99 ms) | ratio | server CPU (w1, ws) |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  for t in $THREADS; do
    read -r dops dp50 dp99 <<<"${DBB[$t]}"
    jq -rs --arg t "$t" --arg dops "$dops" --arg dp50 "$dp50" --arg dp99 "$dp99" '
      def ms: (. / 10 | round) / 100;
      def row(l): (map(select(.label == l)) | first);
      def cell(r): "\(r.ops_per_s) (\(r.broadcast_us.p50 | ms) / \(r.broadcast_us.p99 | ms))";
      def ratio(r): ((r.ops_per_s / ($dops | tonumber) * 100 | round) / 100 | tostring) + "x";
      row("ingest-\($t)-w1") as $a | row("ingestws-\($t)") as $b |
      "| \($t) | \($dops | tonumber | round) (\(($dp50 | tonumber) / 1000 | . * 100 | round / 100) / \(($dp99 | tonumber) / 1000 | . * 100 | round / 100)) | \(cell($a)) | \(ratio($a)) | \(cell($b)) | \(ratio($b)) | \($a.server_cpu_pct)%, \($b.server_cpu_pct)% |"
    ' "$OUT_JSONL"
  done
  read -r dops _ <<<"${DBB[1]}"
  jq -rs --arg dops "$dops" --arg l "ingest-1-w$PIPELINED" '
    map(select(.label == $l)) | first |
    "\nOne writer with up to \(.config.window) ops in flight (\($l)): \(.ops_per_s) ops/s (p50 \(.broadcast_us.p50 / 10 | round / 100) / p99 \(.broadcast_us.p99 / 10 | round / 100) ms), \((.ops_per_s / ($dops | tonumber) * 100 | round) / 100)x db_bench with one thread."
  ' "$OUT_JSONL"
  echo
  echo "Disk (${TMPDIR:-/tmp}): $FSYNC_BEFORE synced 4 KiB appends/s before, $FSYNC_AFTER after ($FSYNC_COUNT × write + fdatasync, dd oflag=dsync)."
  echo "db_bench $("$DB_BENCH" --version 2>&1 | head -1 | sed 's/db_bench version //'): fillrandom --sync=1 --key_size=24 --value_size=200 --duration=10, a fresh database per row; etherply: 10 s per row, value 32 bytes, a fresh server per writer count, run right after db_bench's row."
  echo "Checks of the load tool (every op to every connection of its workspace, once, in one order): $(jq -rs 'map(if .ok then "ok" else "\(.label) FAILED" end) | unique | join(", ")' "$OUT_JSONL")."
  echo "Machine: nproc $(nproc); load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$OUT_MD"
echo "run_ingest.sh: table written to $OUT_MD" >&2
exit $status
