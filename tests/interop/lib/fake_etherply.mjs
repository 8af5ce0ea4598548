#!/usr/bin/env node
// A stand-in for `etherply doc json|heads|changes FILE`, built on the
// reference. Used only to self-check fixtures_test.mjs and
// differential_test.mjs before (or independently of) the C++ binary:
//   node fixtures_test.mjs --etherply lib/fake_etherply.mjs --with-documents
// FAKE_ETHERPLY_FAULT=json|heads|changes|accept|crash|hang makes it wrong on
// purpose, to check that the tests notice (see README.md).
import { readFileSync } from "node:fs"
import { loadDescription } from "./reference.mjs"
import { changeHeader, changeLine } from "./chunks.mjs"

const FAULT = process.env.FAKE_ETHERPLY_FAULT ?? ""

function load(file) {
  try {
    return loadDescription(readFileSync(file))
  } catch (e) {
    if (FAULT === "accept") return { json: "{}", heads: [], changes: [] }
    if (FAULT === "crash") process.kill(process.pid, "SIGSEGV")
    if (FAULT === "hang") for (;;);
    throw e
  }
}

function main([group, command, file]) {
  if (group !== "doc" || !["json", "heads", "changes"].includes(command) || !file) {
    throw new Error("usage: fake_etherply.mjs doc json|heads|changes FILE")
  }
  const doc = load(file)
  if (FAULT === "json") doc.json = doc.json.replace(/\d/, (d) => String((Number(d) + 1) % 10))
  if (FAULT === "heads") doc.heads = doc.heads.slice(1)
  if (FAULT === "changes") doc.changes = doc.changes.slice(1)
  if (command === "json") return doc.json + "\n"
  if (command === "heads") return doc.heads.map((h) => h + "\n").join("")
  return doc.changes.map((c) => changeLine(changeHeader(c)) + "\n").join("")
}

try {
  process.stdout.write(main(process.argv.slice(2)))
} catch (e) {
  process.stderr.write(`fake_etherply: ${e.message}\n`)
  process.exitCode = 1
}
