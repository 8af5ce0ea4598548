#!/usr/bin/env bash
# Save and cold-load benchmark: EtherPly side by side with the reference
# (@automerge/automerge 3.5.0) in the same run.
#
#   bench/save_bench.sh BUILD_DIR     (needs the target etherply_bench_save)
#
# Documents: "trace", the automerge-paper editing trace replayed by the
# reference (one change per patch, as bench/run.sh does) and saved; and the
# fixture docs/egwalker-C1.automerge. Per document and implementation, each in
# a fresh process, alternating, REPEATS times (default 3), medians kept:
#   save   load the document (untimed), time save, keep the saved size
#   load   time the load of the document file (a cold process), with the
#          process's wall time and max RSS from /usr/bin/time
# Prints a markdown table (also BUILD_DIR/bench-save.md).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: bench/save_bench.sh BUILD_DIR" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "$1" && pwd)
TRACE=${TRACE:-$ROOT/../shared/bench-data/automerge-paper.json.gz}
EGWALKER=${EGWALKER:-$ROOT/../shared/automerge/fixtures/docs/egwalker-C1.automerge}
REPEATS=${REPEATS:-3}
CXX=$BUILD/etherply_bench_save
[[ -x $CXX ]] || { echo "save_bench.sh: build the target etherply_bench_save" >&2; exit 1; }
source "$ROOT/bench/lib.sh"
ensure_node_modules "$ROOT/bench"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
JSONL=$BUILD/bench-save.jsonl
: >"$JSONL"

(cd "$ROOT/bench" && node save_bench.mjs trace "$TRACE" "$WORK/trace.automerge") >&2
cp "$EGWALKER" "$WORK/egwalker-C1.automerge"

run() {  # impl doc op
  local out=$WORK/$1-$2.saved args line rss
  if [[ $1 == etherply ]]; then args=("$CXX"); else args=(node "$ROOT/bench/save_bench.mjs"); fi
  if [[ $3 == save ]]; then args+=(save "$WORK/$2.automerge" "$out"); else args+=(load "$WORK/$2.automerge"); fi
  line=$(cd "$ROOT/bench" && /usr/bin/time -o "$WORK/time" -f "%M %e" "${args[@]}")
  read -r rss wall <"$WORK/time"
  line="${line%\}},\"doc\":\"$2\",\"max_rss_kb\":$rss,\"wall\":$wall}"
  echo "$line" >>"$JSONL"
  echo "  $line" >&2
}
for doc in trace egwalker-C1; do
  for ((i = 1; i <= REPEATS; i++)); do
    for op in save load; do run etherply $doc $op; run reference $doc $op; done
  done
done

node --input-type=module - "$JSONL" "$BUILD/bench-save.md" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'JS'
import fs from "node:fs";
const [jsonl, outMd, load] = process.argv.slice(2);
const runs = fs.readFileSync(jsonl, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const get = (doc, impl, op, f) => median(runs.filter((r) => r.doc === doc && r.impl === impl && r.op === op).map(f));
const rows = [
  "| document | | etherply | reference | ratio (etherply/reference) |",
  "|---|---|---:|---:|---:|",
];
for (const doc of [...new Set(runs.map((r) => r.doc))]) {
  const line = (what, op, f, fmt) => {
    const e = get(doc, "etherply", op, f), r = get(doc, "reference", op, f);
    rows.push(`| ${doc} | ${what} | ${fmt(e)} | ${fmt(r)} | ${(e / r).toFixed(2)}x |`);
  };
  const s = (x) => x.toFixed(3), mb = (kb) => (kb / 1024).toFixed(1);
  line("save s", "save", (r) => r.seconds, s);
  line("saved bytes", "save", (r) => r.bytes, (x) => String(x));
  line("load s (in process)", "load", (r) => r.seconds, s);
  line("load process wall s", "load", (r) => r.wall, (x) => x.toFixed(2));
  line("load peak RSS MB", "load", (r) => r.max_rss_kb, mb);
  line("save process peak RSS MB", "save", (r) => r.max_rss_kb, mb);
}
const text = [...rows, "", `Medians of ${runs.length / 8} runs per cell, fresh processes, alternating; load average after: ${load}.`, ""].join("\n");
fs.writeFileSync(outMd, text);
process.stdout.write(text);
JS
