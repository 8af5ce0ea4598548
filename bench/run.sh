#!/usr/bin/env bash
# The Automerge core benchmark: EtherPly's C++ Automerge side by side with the
# reference (@automerge/automerge 3.5.0, low-level handle), in the same run.
#
#   bench/run.sh BUILD_DIR        (make bench runs it with the project's build)
#
# Scenarios (see bench/automerge_bench.cc and bench/automerge_bench.mjs):
#   trace    the automerge-paper editing trace, one change per edit, final text checked
#   mapputs  100,000 map puts, one change each
# Each scenario runs REPEATS times (default 3) per implementation, each run in a
# fresh process, the two implementations alternating; the table keeps the
# median of each figure. Memory is each program's own reading of
# /proc/self/status: "peak" is VmHWM during the timed part (reset just before
# it), "growth" is that peak minus VmRSS just before it (what the document
# cost, without the runtime and the loaded input).
#
# Prints a markdown table and writes it to BUILD_DIR/bench-automerge.md (the
# raw JSON lines go to BUILD_DIR/bench-automerge.jsonl). Exits non-zero if any
# run fails, a wrong final text included, or if the two sides do not end on the
# same change hash (same actor, time 0 and ops: the changes must be identical).
#
# Environment: REPEATS (default 3), TRACE (default ../shared/bench-data/
# automerge-paper.json.gz beside the repository), SCENARIOS (default
# "trace mapputs").
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bench/run.sh BUILD_DIR" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "$1" && pwd)
BENCH_DIR=$ROOT/bench
CXX_BENCH=$BUILD/etherply_bench_automerge
TRACE=${TRACE:-$ROOT/../shared/bench-data/automerge-paper.json.gz}
REPEATS=${REPEATS:-3}
SCENARIOS=${SCENARIOS:-trace mapputs}
OUT_MD=$BUILD/bench-automerge.md
OUT_JSONL=$BUILD/bench-automerge.jsonl

if [[ ! -x $CXX_BENCH ]]; then
  echo "bench/run.sh: $CXX_BENCH is missing: build the target etherply_bench_automerge" >&2
  exit 1
fi
if [[ ! -f $TRACE ]]; then
  echo "bench/run.sh: no trace at $TRACE (set TRACE=...)" >&2
  exit 1
fi
source "$BENCH_DIR/lib.sh"
ensure_node_modules "$BENCH_DIR"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$OUT_JSONL"
run_one() {  # impl scenario
  local line
  if [[ $1 == etherply ]]; then
    line=$("$CXX_BENCH" "$2" --trace "$TRACE")
  else
    line=$(cd "$BENCH_DIR" && node --expose-gc automerge_bench.mjs "$2" --trace "$TRACE")
  fi
  echo "$line" >>"$OUT_JSONL"
  echo "  $line" >&2
}
for scenario in $SCENARIOS; do
  for ((i = 1; i <= REPEATS; i++)); do
    echo "bench: $scenario, run $i of $REPEATS" >&2
    run_one etherply "$scenario"
    run_one reference "$scenario"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

node --input-type=module - "$OUT_JSONL" "$OUT_MD" "$load_before" "$load_after" "$(nproc)" <<'EOF'
import fs from "node:fs";
const [jsonl, outMd, loadBefore, loadAfter, nproc] = process.argv.slice(2);
const runs = fs.readFileSync(jsonl, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mb = (kb) => (kb / 1024).toFixed(1);
const scenarios = [...new Set(runs.map((r) => r.scenario))];
const rows = [
  "| scenario | ops | etherply s | reference s | speedup (ref/etherply) | etherply peak RSS MB | reference peak RSS MB | memory ratio (ref/etherply) | etherply growth MB | reference growth MB | growth ratio (ref/etherply) |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
];
const spread = [];
const headNotes = [];
let headsDiffer = false;
for (const sc of scenarios) {
  const heads = (impl) => [...new Set(runs.filter((r) => r.scenario === sc && r.impl === impl).map((r) => r.head))];
  const he = heads("etherply"), hr = heads("reference");
  if (he.length === 1 && hr.length === 1 && he[0] === hr[0] && he[0]) {
    headNotes.push(`- ${sc}: both sides end on the same change hash ${he[0].slice(0, 16)}…: the same changes, byte for byte`);
  } else {
    headsDiffer = true;
    headNotes.push(`- ${sc}: HEADS DIFFER: etherply ${he.join(",")} vs reference ${hr.join(",")}`);
  }
  const stat = (impl) => {
    const rs = runs.filter((r) => r.scenario === sc && r.impl === impl);
    return {
      n: rs.length,
      ops: rs[0]?.ops,
      secs: rs.map((r) => r.seconds),
      s: median(rs.map((r) => r.seconds)),
      peak: median(rs.map((r) => r.peak_rss_kb)),
      growth: median(rs.map((r) => r.peak_rss_kb - r.rss_before_kb)),
      reset: rs.every((r) => r.hwm_reset),
    };
  };
  const e = stat("etherply");
  const r = stat("reference");
  rows.push(
    `| ${sc} | ${e.ops} | ${e.s.toFixed(3)} | ${r.s.toFixed(3)} | ${(r.s / e.s).toFixed(1)}x | ` +
      `${mb(e.peak)} | ${mb(r.peak)} | ${(r.peak / e.peak).toFixed(2)} | ` +
      `${mb(e.growth)} | ${mb(r.growth)} | ${(r.growth / e.growth).toFixed(2)} |`,
  );
  const fmt = (xs) => xs.map((x) => x.toFixed(3)).join(", ");
  spread.push(`- ${sc}: etherply runs ${fmt(e.secs)} s; reference runs ${fmt(r.secs)} s` +
    (e.reset && r.reset ? "" : " (peak RSS not reset: whole-process peaks)"));
}
const text = [
  ...rows,
  "",
  `Medians of ${runs.length / (2 * scenarios.length)} runs per cell, each a fresh process, the two implementations alternating.`,
  `Load average (1/5/15 min) before: ${loadBefore}; after: ${loadAfter}; nproc ${nproc}.`,
  ...spread,
  ...headNotes,
  "",
].join("\n");
fs.writeFileSync(outMd, text);
process.stdout.write(text);
if (headsDiffer) process.exit(3);
EOF
echo "bench: table written to $OUT_MD" >&2
