#!/usr/bin/env node
// Fixture interop test: EtherPly's `doc json|heads|changes` against the
// reference (@automerge/automerge 3.5.0) on the shared fixture files.
//
//   node fixtures_test.mjs --etherply PATH [--with-documents] [--fixtures DIR]
//                          [--timeout SECONDS] [--jobs N]
//
// What it proves:
//   valid/*, docs/*            EtherPly reads each file to the same JSON, heads and
//                              change list as A.load. Files holding a document
//                              chunk (type 0) are only checked with
//                              --with-documents (or ETHERPLY_WITH_DOCUMENTS=1);
//                              otherwise they are reported as skipped.
//   ... as change chunks       The same documents re-expressed as the reference's
//                              change chunks (A.getAllChanges, concatenated):
//                              exercises the change decoder on real histories
//                              (brave-ape-49: 184 changes, egwalker-C1: 93,152).
//   ... reversed               The same, in reverse order: every change arrives
//                              before its deps and must be queued.
//   invalid/*                  `doc json` rejects the file: non-zero exit, a message
//                              on stderr, nothing on stdout, no crash (signal or
//                              sanitizer report) and no hang (10 s). The shared
//                              fixtures' and ours beside this script (found by
//                              fuzzing; each one the reference refuses too).
// Closing line: `N passed, N failed[, N skipped]`; exit status 1 on any failure.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { CHUNK_DOCUMENT, chunkTypes } from "./lib/chunks.mjs"
import { checkReadable as checkReadableWith } from "./lib/doc_checks.mjs"
import { abnormal, mapLimit, run } from "./lib/exec.mjs"
import { A, loadDescription } from "./lib/reference.mjs"
import { Reporter } from "./lib/reporter.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const { values: opts } = parseArgs({
  options: {
    etherply: { type: "string" },
    "with-documents": { type: "boolean", default: false },
    fixtures: { type: "string" },
    timeout: { type: "string", default: "120" },
    jobs: { type: "string", default: String(Math.min(cpus().length, 8)) },
  },
})
if (!opts.etherply) {
  console.error("usage: node fixtures_test.mjs --etherply PATH [--with-documents] [--fixtures DIR]")
  process.exit(2)
}
const ETHERPLY = resolve(opts.etherply)
const WITH_DOCUMENTS = opts["with-documents"] || ["1", "true", "yes"].includes(process.env.ETHERPLY_WITH_DOCUMENTS)
const FIXTURES = resolve(opts.fixtures ?? process.env.ETHERPLY_FIXTURES ?? join(here, "../../../shared/automerge/fixtures"))
const TIMEOUT_MS = Number(opts.timeout) * 1000
const INVALID_TIMEOUT_MS = 10000
const OUR_INVALID = join(here, "invalid")

const listDir = (dir) => readdirSync(join(FIXTURES, dir)).sort()

async function checkReadable(file, expected) {
  return checkReadableWith(ETHERPLY, file, expected, TIMEOUT_MS)
}

// ---- the tests ---------------------------------------------------------------------------

function sameDescription(a, b) {
  return a.json === b.json && a.heads.join() === b.heads.join()
}

/** Tests for one valid or docs file: as it is, and re-expressed as change chunks. */
function readableTests(dir, name, tmp) {
  const path = join(FIXTURES, dir, name)
  const bytes = readFileSync(path)
  const label = `${dir}/${name}`
  let expected
  try {
    expected = loadDescription(bytes)
  } catch (e) {
    return [{ name: label, run: async () => [`the reference cannot load it: ${e.message}`] }]
  }
  const tests = []
  const types = chunkTypes(bytes) ?? []
  if (types.includes(CHUNK_DOCUMENT) && !WITH_DOCUMENTS) {
    tests.push({ name: label, skip: "skipped (document chunks: part 2)" })
  } else {
    tests.push({ name: label, run: () => checkReadable(path, expected) })
  }

  const variants = [["as change chunks", expected.changes]]
  if (expected.changes.length > 1 && expected.changes.length <= 1000) {
    variants.push(["as change chunks, reversed", expected.changes.slice().reverse()])
  }
  for (const [variant, changes] of variants) {
    const file = join(tmp, `${dir}-${name}-${variant.replace(/\W+/g, "_")}.changes`)
    writeFileSync(file, Buffer.concat(changes))
    tests.push({
      name: `${label} ${variant}`,
      run: async () => {
        // The reference must read its own changes back to the same document.
        const again = loadDescription(readFileSync(file))
        if (!sameDescription(again, expected)) return ["the reference reads these change chunks differently (harness problem)"]
        return checkReadable(file, expected)
      },
    })
  }
  return tests
}

/** An invalid file is rejected cleanly by `doc json`. */
function invalidTest(dir, name) {
  const path = join(dir, name)
  return {
    name: `${dir === OUR_INVALID ? "interop/" : ""}invalid/${name}`,
    run: async () => {
      const problems = []
      try {
        A.load(readFileSync(path))
        problems.push("the reference accepts this file (harness problem)")
      } catch {
        // expected: the reference rejects it too
      }
      const r = await run(ETHERPLY, ["doc", "json", path], { timeoutMs: INVALID_TIMEOUT_MS })
      const why = abnormal(r)
      if (why) return [...problems, `doc json: ${why}`]
      if (r.code === 0) problems.push("doc json accepted an invalid file (exit status 0)")
      if (!r.stderr.trim()) problems.push("doc json printed no message on stderr")
      if (r.stdout.length) problems.push(`doc json printed output for an invalid file: ${r.stdout.slice(0, 200)}`)
      return problems
    },
  }
}

async function main() {
  console.log(`fixtures: ${FIXTURES}`)
  console.log(`etherply: ${ETHERPLY}${WITH_DOCUMENTS ? " (with documents)" : ""}`)
  const tmp = mkdtempSync(join(tmpdir(), "etherply-fixtures-"))
  try {
    const tests = [
      ...["valid", "docs"].flatMap((dir) => listDir(dir).flatMap((name) => readableTests(dir, name, tmp))),
      ...listDir("invalid").map((name) => invalidTest(join(FIXTURES, "invalid"), name)),
      ...readdirSync(OUR_INVALID).sort().map((name) => invalidTest(OUR_INVALID, name)),
    ]
    const reporter = new Reporter()
    const results = await mapLimit(tests, Number(opts.jobs), async (t) => {
      if (t.skip) return null
      try {
        return await t.run()
      } catch (e) {
        return [`test error: ${e.stack}`]
      }
    })
    tests.forEach((t, i) => (t.skip ? reporter.skip(t.name, t.skip) : reporter.record(t.name, results[i])))
    reporter.finish()
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

await main()
