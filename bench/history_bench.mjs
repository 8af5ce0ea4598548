// The history API benchmark: the real `etherply serve`, a workspace with
// 100,000 changes, and the time to list it and to show it at old heads.
//
//   node bench/history_bench.mjs [--changes N] [--sockets S] [--window W]
//                                [--keys K] [--repeats R] [--walk-repeats R]
//
// Needs the end-to-end tests' packages (ws): `(cd tests/e2e && npm ci)`; the
// server is started by tests/e2e/lib/server.mjs, so the binary is
// $ETHERPLY_BIN (default build/etherply).
//
// 1. Fill: S WebSocket clients (default 4), each with its own token sub (so 4
//    Automerge actors), send N ops in all (default 100,000), each one change,
//    pipelined: each client keeps up to W (default 256) of its own ops in
//    flight, counting its own echoes. Keys cycle over K distinct root keys
//    (default 10,000; K/S per client), values are ints. Reported: the time from the
//    first send to the last echo, and ops/s.
// 2. Timed, each over HTTP with keep-alive (median of R, default 5):
//    - the newest page, GET /v1/history/{ws}?limit=100
//    - a page from the middle, limit 100 with a cursor at 50 %
//    - a walk of every page at limit=1000 (100 pages; median of
//      --walk-repeats, default 3); the first walk also checks that it saw
//      every change exactly once, later walks that they saw the same
//    - GET /v1/history/{ws}/state?heads=H for H the change at 10 %, 50 %
//      and 90 % of the history (oldest first)
//    twice: "warm", with a read-only WebSocket client connected (the
//    workspace stays in memory), then "cold", with no client connected (the
//    server loads the workspace from its store for each request).
// 3. Prints a markdown table. Writes a "History API" section to
//    doc/benchmarks.md only if that file does not exist; otherwise prints
//    the section for merging.
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { createRequire } from "node:module"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"

import { writeWindowed } from "./writers.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, "..")
const E2E = path.join(ROOT, "tests", "e2e")

let WebSocket
try {
  WebSocket = createRequire(path.join(E2E, "package.json"))("ws")
} catch {
  console.error("history_bench: the ws package is missing; run (cd tests/e2e && npm ci) first")
  process.exit(2)
}
const { startServer, httpRequest, BIN } = await import(path.join(E2E, "lib", "server.mjs"))

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isSafeInteger(v) || v <= 0) {
    console.error(`history_bench: --${name} needs a positive integer`)
    process.exit(2)
  }
  return v
}
const N = arg("changes", 100_000)
const S = arg("sockets", 4)
const W = arg("window", 256)
const K = arg("keys", 10_000)
const R = arg("repeats", 5)
const WALK_R = arg("walk-repeats", 3)
const WS = "bench-history"

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const ms = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))
const kb = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`)

function die(msg) {
  console.error(`history_bench: ${msg}`)
  process.exit(1)
}

async function get(url, token) {
  const t0 = performance.now()
  const r = await httpRequest(url, { headers: { Authorization: `Bearer ${token}` }, timeoutMs: 600_000 })
  const dt = performance.now() - t0
  if (r.status !== 200) die(`GET ${url}: ${r.status} ${r.text.slice(0, 300)}`)
  return { dt, json: JSON.parse(r.text), bytes: r.body.length }
}

/** Fills the workspace; resolves the fill time in ms. */
async function fill(srv) {
  const kper = Math.ceil(K / S)
  const per = Array.from({ length: S }, (_, s) => Math.floor(N / S) + (s < N % S ? 1 : 0))
  const clients = await Promise.all(
    per.map(
      (_, s) =>
        new Promise((resolve, reject) => {
          const token = srv.mintToken({ workspace: WS, sub: `writer-${s}` })
          const ws = new WebSocket(`${srv.wsUrl}/v1/sync/${WS}`, { headers: { Authorization: `Bearer ${token}` } })
          // Resolved on the init message (the first), so every client has
          // joined before the clock starts.
          ws.once("message", () => resolve(ws))
          ws.once("error", reject)
          setTimeout(() => reject(new Error(`writer ${s}: no init within 10 s`)), 10_000).unref()
        }),
    ),
  )
  const t0 = performance.now()
  await Promise.all(
    clients.map(
      (ws, s) =>
        writeWindowed(ws, {
          prefix: `w${s}-`,
          count: per[s],
          window: W,
          key: (n) => `w${s}-k${n % kper}`,
          value: (n) => n * S + s, // globally distinct op number
        }),
    ),
  )
  const dt = performance.now() - t0
  for (const ws of clients) ws.close()
  return dt
}

/** Opens a read-only client and resolves it after its init. */
function reader(srv) {
  return new Promise((resolve, reject) => {
    const token = srv.mintToken({ workspace: WS, sub: "bench-reader", scope: "read" })
    const ws = new WebSocket(`${srv.wsUrl}/v1/sync/${WS}`, { headers: { Authorization: `Bearer ${token}` } })
    ws.once("message", () => resolve(ws))
    ws.once("error", reject)
    setTimeout(() => reject(new Error("reader: no init within 60 s")), 60_000).unref()
  })
}

const closeWs = (ws) =>
  new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve()
    ws.once("close", resolve)
    ws.close()
  })

async function main() {
  const srv = await startServer()
  try {
    const cpu = os.cpus()[0]?.model ?? "?"
    console.error(`history_bench: ${BIN}, ${os.cpus().length} cores (${cpu}), node ${process.version}`)
    console.error(`history_bench: filling ${N} changes over ${S} sockets (window ${W}, ${K} keys)...`)
    const fillMs = await fill(srv)
    console.error(`history_bench: filled in ${(fillMs / 1000).toFixed(1)} s (${Math.round(N / (fillMs / 1000))} ops/s)`)
    const token = srv.mintToken({ workspace: WS, scope: "read", sub: "bench" })
    const base = `${srv.url}/v1/history/${WS}`

    // One walk of every page at limit 1000; hashes oldest first.
    const walk = async () => {
      const t0 = performance.now()
      const hashes = []
      let cursor = null
      let pages = 0
      let bytes = 0
      for (;;) {
        const r = await get(`${base}?limit=1000${cursor ? `&cursor=${cursor}` : ""}`, token)
        pages++
        bytes += r.bytes
        for (const c of r.json.changes) hashes.push(c.hash)
        if (r.json.next === null) break
        cursor = r.json.next
      }
      return { dt: performance.now() - t0, hashes: hashes.reverse(), pages, bytes }
    }
    let first = null // the first walk: checked, and gives the hashes
    let stateKeys = 0
    let stateBytes = 0

    const stats = (dts, bytes) => ({ median: median(dts), min: Math.min(...dts), max: Math.max(...dts), bytes })
    // Runs every timed request once more in `phase`; returns {key: stats}.
    const runPhase = async (phase) => {
      const out = {}
      const walks = []
      for (let i = 0; i < WALK_R; i++) {
        const w = await walk()
        console.error(`history_bench: ${phase}: walk ${i + 1}/${WALK_R}: ${w.pages} pages in ${ms(w.dt)} ms`)
        if (!first) {
          first = w
          if (w.hashes.length !== N) die(`the walk listed ${w.hashes.length} changes, not ${N}`)
          if (new Set(w.hashes).size !== N) die("the walk listed a change twice")
        } else if (w.hashes.join() !== first.hashes.join()) {
          die("two walks listed different histories")
        }
        walks.push(w.dt)
      }
      const hashes = first.hashes
      const timed = async (key, url) => {
        const dts = []
        let bytes = 0
        for (let i = 0; i < R; i++) {
          const r = await get(url, token)
          dts.push(r.dt)
          bytes = r.bytes
        }
        console.error(`history_bench: ${phase}: ${key}: median ${ms(median(dts))} ms of ${dts.map(ms).join(", ")}`)
        out[key] = stats(dts, bytes)
      }
      await timed("newest", `${base}?limit=100`)
      await timed("middle", `${base}?limit=100&cursor=${hashes[Math.floor(N / 2)]}`)
      out.walk = stats(walks, first.bytes)
      for (const pct of [10, 50, 90])
        await timed(`state${pct}`, `${base}/state?heads=${hashes[Math.floor((N * pct) / 100) - 1]}`)
      // Sanity: the state at 90 % has every key (each was written by then).
      const st = await get(`${base}/state?heads=${hashes[Math.floor(N * 0.9) - 1]}`, token)
      stateKeys = Object.keys(st.json.data).length
      stateBytes = st.bytes
      const expectKeys = Math.ceil(K / S) * S
      if (N >= 4 * K && stateKeys !== expectKeys) die(`state at 90 % has ${stateKeys} keys, expected ${expectKeys}`)
      return out
    }

    // Warm: a read-only client stays connected, so the workspace stays loaded.
    const r = await reader(srv)
    const warm = await runPhase("warm")
    await closeWs(r)
    await new Promise((res) => setTimeout(res, 500))
    // Cold: nothing connected; the server loads the workspace for each request.
    const cold = await runPhase("cold")

    const labels = [
      ["newest", "newest page (`?limit=100`)"],
      ["middle", "a page at 50 % (`?limit=100&cursor=…`)"],
      ["walk", `walk all ${first.pages} pages (\`?limit=1000\`)`],
      ["state10", "state at the change at 10 % (`/state?heads=…`)"],
      ["state50", "state at the change at 50 % (`/state?heads=…`)"],
      ["state90", "state at the change at 90 % (`/state?heads=…`)"],
    ]
    const cell = (x) => `${ms(x.median)} ms (${ms(x.min)}–${ms(x.max)})`
    const table = [
      "| request | warm: a client connected | cold: no client connected | response |",
      "|---|---:|---:|---:|",
      ...labels.map(
        ([k, label]) => `| ${label} | ${cell(warm[k])} | ${cell(cold[k])} | ${kb(warm[k].bytes)}${k === "walk" ? " in all" : ""} |`,
      ),
    ].join("\n")
    const section = `## History API

\`node bench/history_bench.mjs\` (bench/history_bench.mjs; needs \`(cd tests/e2e &&
npm ci)\` for \`ws\`) starts the real \`etherply serve\` (default flags, a fresh data
dir), fills one workspace with ${N.toLocaleString("en-US")} changes, and times the history API over
HTTP with keep-alive from one client.

Fill: ${S} WebSocket clients, each its own token sub (so ${S} actors), ${N.toLocaleString("en-US")} ops in
all, one change each, pipelined with up to ${W} of each client's ops in flight; keys
cycle over ${(Math.ceil(K / S) * S).toLocaleString("en-US")} distinct root keys, values are ints. An op counts
when its sender gets it back: durable, and broadcast to all ${S} clients.

Each figure is the wall time of the HTTP request as the client sees it: the median
of ${R} requests (min–max in brackets); a walk is ${first.pages} requests in a row, median of
${WALK_R} walks. Two columns, because the server keeps a workspace in memory only
while a client is connected or an op is in flight: **warm** has a read-only
WebSocket client connected throughout; **cold** has none, so every HTTP request
loads the workspace's ${N.toLocaleString("en-US")} changes from RocksDB first.

Machine: ${os.cpus().length} cores (${cpu}), Node ${process.version}.

**Fill**: ${N.toLocaleString("en-US")} changes in ${(fillMs / 1000).toFixed(1)} s, ${Math.round(N / (fillMs / 1000)).toLocaleString("en-US")} ops/s.

${table}

The state at 90 % holds ${stateKeys.toLocaleString("en-US")} root keys (${kb(stateBytes)} of JSON).
`
    console.log(table)
    console.log()
    const target = path.join(ROOT, "doc", "benchmarks.md")
    if (!fs.existsSync(target)) {
      fs.writeFileSync(target, `# Benchmarks\n\n${section}`)
      console.log(`wrote the section "History API" to ${target}`)
    } else {
      console.log(`${target} exists: not written. The section to merge into it:\n`)
      console.log(section)
    }
  } finally {
    await srv.cleanup()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
