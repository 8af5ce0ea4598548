#!/usr/bin/env node
// A stand-in for etherply_script, built on the reference: reads a script on
// stdin, replays it on fresh reference handles and prints the lines
// etherply_script must print. Used by `differential_test.mjs --self-check`.
// JS_RUNNER_FAULT=change|json makes it wrong on purpose, to check that the
// test notices (see README.md).
import { readFileSync } from "node:fs"
import { replayScript, runnerLines } from "./reference.mjs"

try {
  const script = JSON.parse(readFileSync(0, "utf8"))
  const result = replayScript(script)
  const fault = process.env.JS_RUNNER_FAULT
  const last = result.steps.findLast((s) => s.change)
  if (fault === "change" && last) last.change = Uint8Array.from(last.change.map((b, i) => (i === 20 ? b ^ 1 : b)))
  if (fault === "json") result.peers[0].json = result.peers[0].json.replace(/}$/, ',"fault":1}').replace('{,', "{")
  process.stdout.write(runnerLines(result).join("\n") + "\n")
} catch (e) {
  process.stderr.write(`js_runner: ${e.message}\n`)
  process.exitCode = 1
}
