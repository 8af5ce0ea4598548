// The reference's side of bench/run_growth.sh: loads a file of change chunks
// with @automerge/automerge 3.5 (A.load), saves it, and loads the save; each
// load in a fresh node process, timed around A.load alone.
//
//   node bench/growth_ref.mjs CHANGES_FILE
//   -> {"changes":N,"load_changes_s":..,"changes_peak_rss_mb":..,
//       "load_saved_s":..,"saved_peak_rss_mb":..}
import { spawnSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import * as A from "@automerge/automerge"

const [, self, file, mode] = process.argv
if (mode === "--child") {
  const bytes = new Uint8Array(fs.readFileSync(file))
  const t0 = process.hrtime.bigint()
  const doc = A.load(bytes)
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  const out = { s, changes: A.getAllChanges(doc).length, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }
  const saveTo = process.argv[4]
  if (saveTo) fs.writeFileSync(saveTo, A.save(doc))
  console.log(JSON.stringify(out))
  process.exit(0)
}
if (!file) {
  console.error("usage: node bench/growth_ref.mjs CHANGES_FILE")
  process.exit(2)
}
const child = (f, saveTo) => {
  const args = ["--max-old-space-size=16384", self, f, "--child"]
  if (saveTo) args.push(saveTo)
  const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 20 })
  if (r.status !== 0) throw new Error(`reference load failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
}
const saved = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "growth-ref-")), "doc.automerge")
const fromChanges = child(file, saved)
const fromSave = child(saved)
fs.rmSync(path.dirname(saved), { recursive: true, force: true })
console.log(JSON.stringify({
  changes: fromChanges.changes,
  load_changes_s: +fromChanges.s.toFixed(3),
  changes_peak_rss_mb: Math.round(fromChanges.peak_rss_mb),
  load_saved_s: +fromSave.s.toFixed(3),
  saved_peak_rss_mb: Math.round(fromSave.peak_rss_mb),
}))
