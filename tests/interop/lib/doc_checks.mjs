// Checks of `etherply doc json|heads|changes FILE` against what the reference
// says about the same bytes (an object from loadDescription in reference.mjs).
// Each check returns a list of problems; empty means it passed.
import { changeHeader, changeLine } from "./chunks.mjs"
import { abnormal, describeRun, run } from "./exec.mjs"
import { describeDiff } from "./json.mjs"

/** Splits a program's output into lines, allowing one final newline. */
export function outputLines(stdout) {
  const lines = stdout.split("\n")
  if (lines[lines.length - 1] === "") lines.pop()
  return lines
}

/** `doc json` prints exactly the reference's normalised JSON, on one line. */
export async function checkJson(etherply, file, expected, timeoutMs) {
  const r = await run(etherply, ["doc", "json", file], { timeoutMs })
  if (abnormal(r) || r.code !== 0) return [`doc json: ${describeRun(r)}`]
  const actual = r.stdout.replace(/\n$/, "")
  return actual === expected.json ? [] : [`doc json differs: ${describeDiff(expected.json, actual)}`]
}

/** `doc heads` prints the reference's heads, sorted, one per line. */
export async function checkHeads(etherply, file, expected, timeoutMs) {
  const r = await run(etherply, ["doc", "heads", file], { timeoutMs })
  if (abnormal(r) || r.code !== 0) return [`doc heads: ${describeRun(r)}`]
  const actual = outputLines(r.stdout)
  if (actual.join("\n") === expected.heads.join("\n")) return []
  return [
    `doc heads differ:\n  reference: ${expected.heads.join(" ") || "(none)"}\n  etherply:  ${actual.join(" ") || "(none)"}`,
  ]
}

/** Sorts the deps field of a `doc changes` line, so that dep order does not matter. */
function normaliseChangeLine(line) {
  const f = line.split(" ")
  if (f[5] && f[5] !== "-") f[5] = f[5].split(",").sort().join(",")
  return f.join(" ")
}

/**
 * `doc changes` lists the reference's changes: the same count and hash set
 * (lines in any order), and for each hash the same actor, seq, startOp, time
 * and deps (deps in any order).
 */
export async function checkChanges(etherply, file, expected, timeoutMs) {
  const r = await run(etherply, ["doc", "changes", file], { timeoutMs })
  if (abnormal(r) || r.code !== 0) return [`doc changes: ${describeRun(r)}`]
  const want = new Map()
  for (const c of expected.changes) {
    const h = changeHeader(c)
    want.set(h.hash, changeLine(h))
  }
  const lines = outputLines(r.stdout)
  const got = new Map(lines.map((line) => [line.split(" ")[0], line]))
  const problems = []
  if (lines.length !== want.size) problems.push(`doc changes: ${lines.length} lines, the reference has ${want.size} changes`)
  const missing = [...want.keys()].filter((h) => !got.has(h))
  const extra = [...got.keys()].filter((h) => !want.has(h))
  if (missing.length) problems.push(`doc changes: ${missing.length} hashes missing, e.g. ${missing[0]}`)
  if (extra.length) problems.push(`doc changes: ${extra.length} unknown hashes, e.g. ${extra[0]}`)
  const bad = [...want].filter(([h, line]) => got.has(h) && normaliseChangeLine(got.get(h)) !== line)
  if (bad.length) {
    const [h, line] = bad[0]
    problems.push(`doc changes: ${bad.length} lines differ, e.g.\n  reference: ${line}\n  etherply:  ${got.get(h)}`)
  }
  return problems
}

/** All three commands on one readable file. */
export async function checkReadable(etherply, file, expected, timeoutMs) {
  const results = await Promise.all([
    checkJson(etherply, file, expected, timeoutMs),
    checkHeads(etherply, file, expected, timeoutMs),
    checkChanges(etherply, file, expected, timeoutMs),
  ])
  return results.flat()
}
