// The Automerge core benchmark, reference side: @automerge/automerge 3.5.0
// through its low-level handle (A.getBackend(doc)), the same scenarios as
// bench/automerge_bench.cc:
//
//   node automerge_bench.mjs trace [--trace PATH] [--limit N]
//       Replays the automerge-paper trace, one h.splice + h.commit(null, 0) per
//       patch, on a text object at root key "text"; the final h.text() must
//       equal endContent (unless --limit), else exit 1.
//   node automerge_bench.mjs mapputs [--limit N]
//       100,000 h.put("_root", "key<i>", i, "int") + h.commit(null, 0).
//
// Positions: the trace counts Unicode code points, the handle's splice takes
// UTF-16 indexes. The two agree when no text in the trace has a character
// beyond the BMP, which is the case for automerge-paper.json.gz (checked at
// every run; the run reports "bmp_only"). If a trace did have such characters,
// the patches are converted to UTF-16 positions before the timed part, by
// replaying them on a plain mirror of the text, so the timed loop is the same.
//
// Run with --expose-gc (bench/run.sh does) so the parse garbage is collected
// before the timed part. Prints one JSON line, as the C++ side does, with
// memory from /proc/self/status (peak reset before the timed part via
// /proc/self/clear_refs; process.resourceUsage().maxRSS if that is missing).
import fs from "node:fs";
import zlib from "node:zlib";
import * as A from "@automerge/automerge";

const DEFAULT_TRACE = new URL("../../shared/bench-data/automerge-paper.json.gz", import.meta.url);
const MAP_PUTS = 100000;
const ACTOR = "0112233445566778899aabbccddeeff0"; // the C++ side's fixed 16 bytes

function die(msg) {
  process.stderr.write(`automerge_bench.mjs: ${msg}\n`);
  process.exit(1);
}

function usage() {
  process.stderr.write(
    "usage: node automerge_bench.mjs trace [--trace PATH] [--limit N]\n" +
      "       node automerge_bench.mjs mapputs [--limit N]\n",
  );
  process.exit(2);
}

// A field of /proc/self/status in kB, or null.
function procStatusKb(field) {
  try {
    const m = fs.readFileSync("/proc/self/status", "utf8").match(new RegExp(`^${field}:\\s*(\\d+)`, "m"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function startMemoryWindow(out) {
  if (typeof globalThis.gc === "function") globalThis.gc();
  out.setup_peak_kb = procStatusKb("VmHWM");
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5");
    out.hwm_reset = true;
  } catch {
    out.hwm_reset = false;
  }
  out.rss_before_kb = procStatusKb("VmRSS") ?? Math.round(process.memoryUsage().rss / 1024);
}

function peakKb() {
  return procStatusKb("VmHWM") ?? process.resourceUsage().maxRSS;
}

const hasNonBmp = (s) => /[\u{10000}-\u{10FFFF}]/u.test(s);

// Patches with code point positions -> UTF-16 positions, by replaying them on
// an array of code points (untimed; only for traces with non-BMP characters).
function toUtf16(start, patches) {
  const cps = [...start];
  return patches.map(([pos, del, ins]) => {
    let upos = 0;
    for (let i = 0; i < pos; i++) upos += cps[i].length;
    let udel = 0;
    for (let i = pos; i < pos + del; i++) udel += cps[i].length;
    cps.splice(pos, del, ...ins);
    return [upos, udel, ins];
  });
}

function runTrace(path, limit) {
  const data = JSON.parse(zlib.gunzipSync(fs.readFileSync(path)).toString("utf8"));
  let patches = [];
  for (const txn of data.txns) for (const p of txn.patches) patches.push(p);
  const fullLength = patches.length;
  if (limit !== undefined && limit < patches.length) patches = patches.slice(0, limit);
  const bmpOnly = !hasNonBmp(data.startContent) && !patches.some((p) => hasNonBmp(p[2]));
  if (!bmpOnly) patches = toUtf16(data.startContent, patches);
  const startContent = data.startContent;
  const endContent = data.endContent;

  const doc = A.init({ actor: ACTOR });
  const h = A.getBackend(doc);
  const text = h.putObject("_root", "text", startContent);
  h.commit(null, 0);

  const out = { bmp_only: bmpOnly };
  startMemoryWindow(out);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < patches.length; i++) {
    const p = patches[i];
    h.splice(text, p[0], p[1], p[2]);
    h.commit(null, 0);
  }
  const t1 = process.hrtime.bigint();
  out.seconds = Number(t1 - t0) / 1e9;
  out.ops = patches.length;
  const peak = peakKb();
  out.changes = h.getChanges([]).length;
  const heads = h.getHeads();
  out.head = heads.length === 1 ? heads[0] : "";

  const finalText = h.text(text);
  out.final_len = [...finalText].length;
  if (patches.length === fullLength && finalText !== endContent) {
    let i = 0;
    while (i < finalText.length && finalText[i] === endContent[i]) i++;
    die(`final text differs from endContent: ${finalText.length} vs ${endContent.length} UTF-16 units, first difference at ${i}`);
  }
  return { out, peak };
}

function runMapPuts(limit) {
  const n = limit !== undefined ? Math.min(limit, MAP_PUTS) : MAP_PUTS;
  const keys = [];
  for (let i = 0; i < n; i++) keys.push("key" + i);
  const doc = A.init({ actor: ACTOR });
  const h = A.getBackend(doc);

  const out = {};
  startMemoryWindow(out);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    h.put("_root", keys[i], i, "int");
    h.commit(null, 0);
  }
  const t1 = process.hrtime.bigint();
  out.seconds = Number(t1 - t0) / 1e9;
  out.ops = n;
  const peak = peakKb();
  out.changes = h.getChanges([]).length;
  const heads = h.getHeads();
  out.head = heads.length === 1 ? heads[0] : "";
  out.final_len = h.keys("_root").length;
  if (out.final_len !== n) die(`expected ${n} keys, got ${out.final_len}`);
  if (h.get("_root", keys[n - 1]) !== n - 1) die("the last key does not hold its value");
  return { out, peak };
}

const args = process.argv.slice(2);
if (args.length < 1) usage();
const scenario = args[0];
let tracePath = DEFAULT_TRACE;
let limit;
for (let i = 1; i < args.length; i++) {
  if (args[i] === "--trace" && i + 1 < args.length) tracePath = args[++i];
  else if (args[i] === "--limit" && i + 1 < args.length) {
    limit = Number(args[++i]);
    if (!Number.isInteger(limit) || limit <= 0) usage();
  } else usage();
}

let r;
if (scenario === "trace") r = runTrace(tracePath, limit);
else if (scenario === "mapputs") r = runMapPuts(limit);
else usage();

const { out, peak } = r;
const line = {
  impl: "reference",
  scenario,
  ops: out.ops,
  seconds: Number(out.seconds.toFixed(6)),
  ops_per_sec: Number((out.ops / out.seconds).toFixed(1)),
  changes: out.changes,
  final_len: out.final_len,
  rss_before_kb: out.rss_before_kb,
  peak_rss_kb: peak,
  setup_peak_kb: out.setup_peak_kb,
  hwm_reset: out.hwm_reset,
  head: out.head,
};
if (out.bmp_only !== undefined) line.bmp_only = out.bmp_only;
process.stdout.write(JSON.stringify(line) + "\n");
