#!/usr/bin/env node
// Save interop test: `etherply doc save` and `doc merge` against the
// reference (@automerge/automerge 3.5.0), which is the oracle at test time.
//
//   node save_test.mjs --etherply PATH [--seed S] [--count N] [--fixtures DIR] [--jobs N]
//
// What it proves:
//   fixtures   For docs/* and valid/* of the shared fixtures: `doc save FILE`
//              gives bytes the reference loads to the same JSON, heads and
//              changes (the same change chunks, hence hashes and metadata) as
//              A.save(A.load(FILE)).
//   random     N documents built by the differential generator
//              (lib/generator.mjs) on the reference: saved by EtherPly from
//              the reference's change chunks and from the reference's own
//              save, compared with the reference's save as above.
//   merge      `doc merge A B` of two divergent peers of a random script
//              equals A.save(A.merge(A.load(A), A.load(B))) as above.
// Bytes: every save must equal the reference's byte for byte, except that
// DEFLATE streams may differ (the reference deflates with zlib-rs, we with
// zlib: the same columns compress to different bytes). So each comparison is
// "identical", "identical but for DEFLATE" (every column equal once
// inflated), or a failure. Merges are the exception: the reference applies
// the other document's changes in an order of its own (not yet reproduced),
// so a merge's change rows may come in another valid order; that is counted
// as "different" bytes, not a failure. The shares are printed.
// Closing line: `N passed, N failed`; exit status 1 on any failure.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { documentDifference, hex } from "./lib/chunks.mjs"
import { abnormal, describeRun, mapLimit, run } from "./lib/exec.mjs"
import { generateScript } from "./lib/generator.mjs"
import { refJson } from "./lib/json.mjs"
import { Rng } from "./lib/random.mjs"
import { A, replayScript, runMergeStep } from "./lib/reference.mjs"
import { Reporter } from "./lib/reporter.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const { values: opts } = parseArgs({
  options: {
    etherply: { type: "string" },
    seed: { type: "string" },
    count: { type: "string", default: "100" },
    fixtures: { type: "string" },
    jobs: { type: "string", default: String(Math.min(cpus().length, 8)) },
  },
})
if (!opts.etherply) {
  console.error("usage: node save_test.mjs --etherply PATH [--seed S] [--count N] [--fixtures DIR]")
  process.exit(2)
}
const ETHERPLY = resolve(opts.etherply)
const FIXTURES = resolve(opts.fixtures ?? process.env.ETHERPLY_FIXTURES ?? join(here, "../../../shared/automerge/fixtures"))
const TIMEOUT_MS = 120000

/** What the reference makes of some bytes: JSON, heads and change chunks (hex, sorted). */
function describe(bytes) {
  const doc = A.load(bytes)
  return {
    json: refJson(A.toJS(doc)),
    heads: A.getHeads(doc).slice().sort().join(" "),
    changes: A.getAllChanges(doc).map(hex).sort(),
  }
}

/**
 * Compares our saved bytes with the reference's save of the same document.
 * Returns {problems, bytes: "identical" | "deflate" | "different"}.
 */
function compareSaves(ours, reference, { strictBytes = true } = {}) {
  const problems = []
  let got
  try {
    got = describe(ours)
  } catch (e) {
    return { problems: [`the reference cannot load our save: ${e.message}`], bytes: "different" }
  }
  const want = describe(reference)
  if (got.json !== want.json) problems.push("JSON differs")
  if (got.heads !== want.heads) problems.push(`heads differ: ours ${got.heads}, reference ${want.heads}`)
  if (got.changes.length !== want.changes.length) {
    problems.push(`${got.changes.length} changes, the reference ${want.changes.length}`)
  } else if (got.changes.some((c, i) => c !== want.changes[i])) {
    problems.push("the changes differ (hashes or metadata)")
  }
  if (Buffer.compare(ours, Buffer.from(reference)) === 0) return { problems, bytes: "identical" }
  let where
  try {
    where = documentDifference(ours, reference)
  } catch (e) {
    where = e.message
  }
  if (where === null) return { problems, bytes: "deflate" }
  if (!strictBytes) return { problems, bytes: "different", note: where }
  problems.push(`bytes differ beyond DEFLATE: ${where} (ours ${ours.length} bytes, reference ${reference.length})`)
  return { problems, bytes: "different" }
}

async function etherply(args) {
  const r = await run(ETHERPLY, args, { timeoutMs: TIMEOUT_MS })
  if (abnormal(r) || r.code !== 0) throw new Error(`etherply ${args.join(" ")}: ${describeRun(r)}`)
}

/** `doc save` of `input` (bytes), compared with `reference` (bytes of A.save). */
async function saveCase(tmp, id, input, reference) {
  const inFile = join(tmp, `${id}.in`)
  const outFile = join(tmp, `${id}.out`)
  writeFileSync(inFile, input)
  await etherply(["doc", "save", inFile, outFile])
  return compareSaves(readFileSync(outFile), reference)
}

function fixtureTests(tmp) {
  const tests = []
  for (const dir of ["docs", "valid"]) {
    for (const name of readdirSync(join(FIXTURES, dir)).sort()) {
      tests.push({
        name: `fixture ${dir}/${name}`,
        run: () => {
          const input = readFileSync(join(FIXTURES, dir, name))
          return saveCase(tmp, `${dir}-${name}`, input, A.save(A.load(input)))
        },
      })
    }
  }
  return tests
}

/** A random script's peers, all merged into the first: the reference's handle. */
function randomDocument(seed) {
  const script = generateScript(new Rng(seed))
  const { handles } = replayScript(script)
  return handles
}

function randomTests(tmp, baseSeed, count) {
  const tests = []
  for (let k = 0; k < count; k++) {
    const seed = (baseSeed + k) >>> 0
    tests.push({
      name: `random seed=${seed} from change chunks`,
      run: () => {
        const handles = randomDocument(seed)
        for (const h of handles.slice(1)) runMergeStep(handles[0], h)
        const changes = Buffer.concat(handles[0].getChanges([]))
        return saveCase(tmp, `changes-${seed}`, changes, A.save(A.load(changes)))
      },
    })
    tests.push({
      name: `random seed=${seed} from the reference's save`,
      run: () => {
        const handles = randomDocument(seed)
        for (const h of handles.slice(1)) runMergeStep(handles[0], h)
        const saved = handles[0].save()
        return saveCase(tmp, `saved-${seed}`, saved, saved)
      },
    })
    tests.push({
      name: `merge seed=${seed}`,
      run: async () => {
        const [a, b] = randomDocument(seed).map((h) => h.save())
        // Rarely the reference's immutable JS layer throws while applying the
        // patches of a merge ("cannot increment a non-numeric value",
        // "Reflect.get called on non-object"); there is then no oracle.
        let expected
        try {
          expected = A.save(A.merge(A.load(a), A.load(b)))
        } catch (e) {
          return { skipped: `the reference's A.merge throws on these histories: ${e?.message ?? e}` }
        }
        const fa = join(tmp, `merge-${seed}-a`)
        const fb = join(tmp, `merge-${seed}-b`)
        const out = join(tmp, `merge-${seed}.out`)
        writeFileSync(fa, a)
        writeFileSync(fb, b)
        await etherply(["doc", "merge", fa, fb, out])
        return compareSaves(readFileSync(out), expected, { strictBytes: false })
      },
    })
  }
  return tests
}

async function main() {
  const baseSeed = opts.seed !== undefined ? Number(opts.seed) >>> 0 : Date.now() >>> 0
  const count = Number(opts.count)
  console.log(`fixtures: ${FIXTURES}`)
  console.log(`etherply: ${ETHERPLY}; seed ${baseSeed}, ${count} random documents`)
  const tmp = mkdtempSync(join(tmpdir(), "etherply-save-"))
  try {
    const tests = [...fixtureTests(tmp), ...randomTests(tmp, baseSeed, count)]
    const results = await mapLimit(tests, Number(opts.jobs), async (t) => {
      try {
        return await t.run()
      } catch (e) {
        return { problems: [`test error: ${e.stack}`], bytes: "different" }
      }
    })
    const reporter = new Reporter({ verbose: false })
    const shares = {}
    tests.forEach((t, i) => {
      if (results[i].skipped) return reporter.skip(t.name, results[i].skipped)
      const kind = t.name.split(" ")[0]
      shares[kind] ??= { identical: 0, deflate: 0, different: 0 }
      shares[kind][results[i].bytes]++
      reporter.record(t.name, results[i].problems)
    })
    for (const [kind, s] of Object.entries(shares)) {
      const total = s.identical + s.deflate + s.different
      const pct = (n) => `${((100 * n) / total).toFixed(1)}%`
      console.log(
        `${kind}: ${s.identical}/${total} byte-identical (${pct(s.identical)}), ` +
          `${s.deflate} identical but for DEFLATE (${pct(s.deflate)}), ${s.different} different`,
      )
    }
    reporter.finish()
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

await main()
