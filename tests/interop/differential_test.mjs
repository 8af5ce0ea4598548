#!/usr/bin/env node
// Differential test: random multi-peer scripts replayed on the reference
// (@automerge/automerge 3.5.0) and on EtherPly, which must agree byte for byte.
//
//   node differential_test.mjs --runner PATH --etherply PATH [--seed S] [--count N]
//                              [--jobs N] [--verbose] [--skip-directed] [--script FILE]
//   node differential_test.mjs --self-check [--count N]
//
// First the directed cases (lib/directed.mjs: hand-written scripts for
// reference rules a random script meets only by chance), then N random ones.
// Random case k of a run uses seed S+k (mod 2^32); a failing case prints its own
// seed, and `--seed <that seed> --count 1` replays exactly that case. Its
// script is also written to /tmp/etherply-diff-<seed>.json (`--script FILE`
// replays a saved script as it is) and its shuffled change file to
// /tmp/etherply-diff-<seed>.changes.
//
// Checks, per case:
//   (a) decoding   every change of every peer, made by the reference, shuffled
//                  (some deflated to type-2 chunks) into one file: `etherply doc
//                  json|heads|changes` equal the reference's fully merged
//                  document. Proves the change decoder, out-of-order queueing,
//                  CRDT materialisation and JSON printing.
//   (b) encoding   etherply_script on the same script prints, for every change
//                  step, the same hash and the same change bytes as the
//                  reference's commit / getLastLocalChange. Proves op
//                  generation (counters, preds, object ids, no-op rules) and the
//                  change encoder, byte for byte.
//   (c) round trip the change bytes etherply_script made, loaded by the reference,
//                  give the reference's merged JSON and heads; and the final
//                  per-peer JSON and heads printed by etherply_script equal the
//                  reference's per peer. Proves that what EtherPly writes means
//                  the same to the reference, and that merges apply the same.
// --self-check replaces both programs by reference-based stand-ins
// (lib/js_runner.mjs, lib/fake_etherply.mjs): every case must then pass.
// Closing line: `N passed, N failed`; exit status 1 on any failure.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { compressedChange, hex } from "./lib/chunks.mjs"
import { checkReadable, outputLines } from "./lib/doc_checks.mjs"
import { abnormal, describeRun, mapLimit, run } from "./lib/exec.mjs"
import { DIRECTED } from "./lib/directed.mjs"
import { generateScript } from "./lib/generator.mjs"
import { describeDiff, rawMembers } from "./lib/json.mjs"
import { Rng } from "./lib/random.mjs"
import { handleJson, loadDescription, newPeer, replayScript, runMergeStep, sortedHeads } from "./lib/reference.mjs"
import { Reporter } from "./lib/reporter.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const { values: opts } = parseArgs({
  options: {
    runner: { type: "string" },
    etherply: { type: "string" },
    seed: { type: "string" },
    count: { type: "string", default: "300" },
    jobs: { type: "string", default: String(Math.min(cpus().length, 8)) },
    script: { type: "string" },
    timeout: { type: "string", default: "60" },
    "self-check": { type: "boolean", default: false },
    "skip-directed": { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
})
if (opts["self-check"]) {
  opts.runner ??= join(here, "lib/js_runner.mjs")
  opts.etherply ??= join(here, "lib/fake_etherply.mjs")
}
if (!opts.runner || !opts.etherply) {
  console.error("usage: node differential_test.mjs --runner PATH --etherply PATH [--seed S] [--count N]")
  console.error("       node differential_test.mjs --self-check [--count N]")
  process.exit(2)
}
const RUNNER = resolve(opts.runner)
const ETHERPLY = resolve(opts.etherply)
const TIMEOUT_MS = Number(opts.timeout) * 1000
const COMPRESS_PROBABILITY = 0.15

// ---- the reference's side of a case -----------------------------------------------------

/**
 * Everything the reference says about a script: per-step results and final
 * peers (replayScript), and the document with every peer merged into one.
 */
function referenceOutcome(script) {
  const replay = replayScript(script)
  const merged = newPeer("ff".repeat(16))
  for (const h of replay.handles) runMergeStep(merged, h)
  const changes = replay.steps.filter((s) => s.change).map((s) => s.change)
  return {
    replay,
    merged: { json: handleJson(merged), heads: sortedHeads(merged.getHeads()), changes },
  }
}

// ---- (a) decoding ---------------------------------------------------------------------------

/** The changes shuffled, some as type-2 chunks: the bytes given to `etherply doc`. */
function shuffledChangeFile(rng, changes) {
  return Buffer.concat(
    rng.shuffle(changes).map((c) => (rng.chance(COMPRESS_PROBABILITY) ? compressedChange(c) : Buffer.from(c))),
  )
}

async function checkDecoding(file, bytes, merged) {
  // The reference must read the shuffled file as the merged document, or
  // the expectation itself is wrong.
  const own = loadDescription(bytes)
  if (own.json !== merged.json || own.heads.join() !== merged.heads.join()) {
    return ["reference: loading the shuffled changes differs from merging the peers (harness problem)"]
  }
  return checkReadable(ETHERPLY, file, merged, TIMEOUT_MS)
}

// ---- (b) and (c): etherply_script ------------------------------------------------------------

/**
 * Parses etherply_script's output: change-step lines, then peer lines whose
 * "json" member is kept as raw text. Throws with a readable message on
 * malformed output.
 */
function parseRunnerOutput(stdout, nSteps, nPeers) {
  const lines = outputLines(stdout)
  if (lines.length !== nSteps + nPeers) {
    throw new Error(`expected ${nSteps} step lines and ${nPeers} peer lines, got ${lines.length} lines`)
  }
  const parse = (line, i) => {
    try {
      return JSON.parse(line)
    } catch (e) {
      throw new Error(`output line ${i + 1} is not JSON (${e.message}): ${line.slice(0, 300)}`)
    }
  }
  const steps = lines.slice(0, nSteps).map(parse)
  const peers = lines.slice(nSteps).map((line, i) => {
    const p = parse(line, nSteps + i)
    return { peer: p.peer, heads: p.heads, json: rawMembers(line).get("json") }
  })
  return { steps, peers }
}

function describeStep(script, i) {
  const step = script.steps[i]
  const ops = JSON.stringify(step.ops)
  return `step ${i} (peer ${step.peer}, ${step.ops.length} ops): ${ops.length > 1500 ? ops.slice(0, 1500) + "…" : ops}`
}

function firstByteDiff(a, b) {
  if (typeof a !== "string" || typeof b !== "string") return ""
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return `, change bytes differ from byte ${i >> 1} (lengths ${a.length / 2} / ${b.length / 2})`
}

/** (b): the same hash and change bytes for every change step; reports the first difference. */
function checkEncoding(script, expected, actual) {
  for (let k = 0; k < expected.length; k++) {
    const want = expected[k]
    const got = actual[k]
    const wantHex = want.change ? hex(want.change) : null
    if (got.step === want.step && got.hash === want.hash && got.change === wantHex) continue
    return [
      `(b) encoding: first differing change step is ${want.step}${firstByteDiff(wantHex, got.change)}`,
      `  ${describeStep(script, want.step)}`,
      `  reference: step ${want.step} hash ${want.hash}\n             change ${wantHex}`,
      `  etherply:  step ${got.step} hash ${got.hash}\n             change ${got.change}`,
    ]
  }
  return []
}

/** (c): EtherPly's changes mean the same to the reference; final peers agree. */
function checkRoundTrip(outcome, actual) {
  const problems = []
  const bytes = Buffer.concat(actual.steps.filter((s) => s.change).map((s) => Buffer.from(s.change, "hex")))
  try {
    const loaded = loadDescription(bytes)
    if (loaded.json !== outcome.merged.json) {
      problems.push(`(c) round trip: JSON of EtherPly's changes loaded by the reference ${describeDiff(outcome.merged.json, loaded.json)}`)
    }
    if (loaded.heads.join() !== outcome.merged.heads.join()) {
      problems.push(`(c) round trip: heads of EtherPly's changes loaded by the reference: ${loaded.heads} (expected ${outcome.merged.heads})`)
    }
  } catch (e) {
    problems.push(`(c) round trip: the reference cannot load EtherPly's changes: ${e.message}`)
  }
  outcome.replay.peers.forEach((want, p) => {
    const got = actual.peers[p]
    if (got.peer !== p) problems.push(`(c) peer line ${p} is for peer ${got.peer}`)
    if (got.json !== want.json) problems.push(`(c) final JSON of peer ${p}: ${describeDiff(want.json, got.json)}`)
    if ((got.heads ?? []).join() !== want.heads.join()) {
      problems.push(`(c) final heads of peer ${p}:\n  reference: ${want.heads.join(" ")}\n  etherply:  ${(got.heads ?? []).join(" ")}`)
    }
  })
  return problems
}

async function checkRunner(script, outcome) {
  const r = await run(RUNNER, [], { input: JSON.stringify(script), timeoutMs: TIMEOUT_MS })
  if (abnormal(r) || r.code !== 0) return [`etherply_script: ${describeRun(r)}`]
  let actual
  try {
    actual = parseRunnerOutput(r.stdout, outcome.replay.steps.length, script.peers.length)
  } catch (e) {
    return [`etherply_script output: ${e.message}`]
  }
  return [...checkEncoding(script, outcome.replay.steps, actual.steps), ...checkRoundTrip(outcome, actual)]
}

// ---- a case ---------------------------------------------------------------------------------

function summary(script, outcome) {
  const changes = outcome.merged.changes.length
  const merges = script.steps.filter((s) => s.step === "merge").length
  return `peers=${script.peers.length} steps=${script.steps.length} changes=${changes} merges=${merges}`
}

/**
 * One case. `spec`: {name, id, seed, script?: () => script}; without a
 * script function the script is generated from the seed. The seed also
 * drives the shuffling of check (a).
 */
async function runCase(spec, tmp) {
  const rng = new Rng(spec.seed)
  let script, outcome
  try {
    script = spec.script ? spec.script() : generateScript(rng)
    outcome = referenceOutcome(script)
  } catch (e) {
    return { spec, script, problems: [`generator/reference error: ${e.stack}`] }
  }
  const bytes = shuffledChangeFile(rng, outcome.merged.changes)
  const file = join(tmp, `case-${spec.id}.changes`)
  writeFileSync(file, bytes)
  const [decoding, runner] = await Promise.all([checkDecoding(file, bytes, outcome.merged), checkRunner(script, outcome)])
  const problems = [...decoding.map((p) => (p.startsWith("doc ") ? `(a) ${p}` : p)), ...runner]
  return { spec, script, bytes, problems, summary: summary(script, outcome) }
}

/** Keeps a failing case's script and change file in /tmp; returns what to print. */
function saveFailure(result) {
  const saved = []
  const base = `/tmp/etherply-diff-${result.spec.id}`
  if (result.script) {
    writeFileSync(`${base}.json`, JSON.stringify(result.script) + "\n")
    saved.push(`script: ${base}.json`)
  }
  if (result.bytes) {
    writeFileSync(`${base}.changes`, result.bytes)
    saved.push(`changes (shuffled): ${base}.changes`)
  }
  const replay = result.spec.directed || opts.script ? `--script ${base}.json` : `--seed ${result.spec.seed} --count 1`
  return [`replay: ${replay}`, ...saved]
}

function report(reporter, result) {
  const name = `${result.spec.name}${result.summary ? ` (${result.summary})` : ""}`
  if (result.problems.length) {
    reporter.fail(name, [...result.problems, ...saveFailure(result)])
  } else {
    reporter.pass(name)
  }
}

/** The cases of this run: a given script; or the directed cases, then `--count` random ones. */
function caseSpecs(baseSeed) {
  if (opts.script) {
    const script = JSON.parse(readFileSync(opts.script, "utf8"))
    return [{ name: `script ${opts.script}`, id: "script", seed: baseSeed, script: () => script }]
  }
  const directed = opts["skip-directed"]
    ? []
    : Object.entries(DIRECTED).map(([name, script]) => ({ name: `directed ${name}`, id: `directed-${name}`, seed: 0, script, directed: true }))
  const random = Array.from({ length: Number(opts.count) }, (_, k) => {
    const seed = (baseSeed + k) >>> 0
    return { name: `case seed=${seed}`, id: String(seed), seed }
  })
  return [...directed, ...random]
}

async function main() {
  const baseSeed = opts.seed !== undefined ? Number(opts.seed) >>> 0 : Date.now() >>> 0
  const specs = caseSpecs(baseSeed)
  const count = specs.length
  console.log(`seed ${baseSeed}, ${count} cases${opts["self-check"] ? " (self-check: reference stand-ins)" : ""}`)
  console.log(`runner: ${RUNNER}\netherply: ${ETHERPLY}`)
  const tmp = mkdtempSync(join(tmpdir(), "etherply-diff-"))
  const reporter = new Reporter({ verbose: opts.verbose })
  try {
    // Cases run concurrently; their results are reported in seed order.
    const results = new Array(count)
    let reported = 0
    const flush = () => {
      for (; reported < count && results[reported]; reported++) {
        report(reporter, results[reported])
        if (!opts.verbose && (reported + 1) % 50 === 0) console.log(`… ${reported + 1}/${count}`)
      }
    }
    await mapLimit(specs, Number(opts.jobs), async (spec, k) => {
      results[k] = await runCase(spec, tmp)
      flush()
    })
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  reporter.finish()
}

await main()
