// The webhook benchmark: does a receiver, fast or slow, slow down ops?
//
//   node bench/webhook_bench.mjs [--ops N] [--sockets S] [--window W]
//                                [--workspaces K] [--seq M] [--repeats R]
//                                [--slow-ms D]
//
// Needs the end-to-end tests' packages (ws): `(cd tests/e2e && npm ci)`; the
// server is started by tests/e2e/lib/server.mjs, so the binary is
// $ETHERPLY_BIN (default build/etherply). Each receiver is
// tests/e2e/lib/webhook_receiver.mjs, a node HTTP server on 127.0.0.1, run in
// a child process of its own (so its work does not stall the clients' event
// loop).
//
// Three configurations, each on a fresh server (fresh data dir):
//   none   no --webhook-url: no event is recorded or sent
//   fast   a receiver that answers 200 at once
//   slow   a receiver that answers 200 after D ms (default 1000), every request
// all three started at once and measured in turns (none, fast, slow, none, ...):
//   1. Throughput, R rounds (default 5): S WebSocket writers (default 4), one
//      per workspace (K workspaces, default S, so the webhook sender can use
//      all of its 4 connections), send N ops in all (default 10000),
//      pipelined: each keeps up to W (default 64) of its own ops in flight,
//      counting its own echoes. Reported: the median ops/s, from the first
//      send to the last echo. The receivers are not waited for between
//      rounds: the fast one is delivering a backlog during later rounds (the
//      case to measure), the slow one holds 4 requests open all the time.
//   2. Latency, R rounds: one writer, M / R sequential op round trips per
//      round (M default 1000; the next op when the echo is back): p50, p99.
//   3. Delivery: events the receivers got in all, and the fast receiver's
//      rate while it had a backlog (over the whole measurement).
//
// Prints a markdown section (for doc/benchmarks.md; this script writes no file).
import { fork } from "node:child_process"
import os from "node:os"
import path from "node:path"
import { createRequire } from "node:module"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"

import { writeWindowed } from "./writers.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, "..")
const E2E = path.join(ROOT, "tests", "e2e")
const SELF = fileURLToPath(import.meta.url)

// --- the receiver, in a child process: `webhook_bench.mjs --receiver-child DELAY_MS` ---------
if (process.argv[2] === "--receiver-child") {
  const delayMs = Number(process.argv[3])
  const { startReceiver } = await import(path.join(E2E, "lib", "webhook_receiver.mjs"))
  // Only counts are kept (the bodies of tens of thousands of requests are not needed).
  let delivered = 0
  let requests = 0
  const rx = await startReceiver({
    respond: () => {
      requests++
      return { status: 200, delayMs }
    },
  })
  // The recorder keeps every request; count the answered ones and drop them.
  setInterval(() => {
    const keep = rx.requests.filter((r) => r.respondedAt === null)
    delivered += rx.requests.filter((r) => r.respondedAt !== null && r.status === 200).length
    rx.requests.length = 0
    rx.requests.push(...keep)
  }, 50)
  process.on("message", (m) => {
    if (m === "count") {
      const answered = rx.requests.filter((r) => r.respondedAt !== null && r.status === 200).length
      process.send({ delivered: delivered + answered, requests })
    } else if (m === "exit") {
      rx.close().then(() => process.exit(0))
    }
  })
  process.send({ url: rx.url })
} else {
  await main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}

async function main() {
  let WebSocket
  try {
    WebSocket = createRequire(path.join(E2E, "package.json"))("ws")
  } catch {
    console.error("webhook_bench: the ws package is missing; run (cd tests/e2e && npm ci) first")
    process.exit(2)
  }
  const { startServer, httpRequest, BIN } = await import(path.join(E2E, "lib", "server.mjs"))
  const { webhookSecret } = await import(path.join(E2E, "lib", "webhook_receiver.mjs"))

  function arg(name, dflt) {
    const i = process.argv.indexOf(`--${name}`)
    if (i < 0) return dflt
    const v = Number(process.argv[i + 1])
    if (!Number.isSafeInteger(v) || v <= 0) {
      console.error(`webhook_bench: --${name} needs a positive integer`)
      process.exit(2)
    }
    return v
  }
  const N = arg("ops", 10000)
  const S = arg("sockets", 4)
  const W = arg("window", 64)
  const K = arg("workspaces", S)
  const M = arg("seq", 1000)
  const R = arg("repeats", 5)
  const SLOW_MS = arg("slow-ms", 1000)

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b)
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
  }
  const log = (msg) => console.error(`webhook_bench: ${msg}`)
  const die = (msg) => {
    console.error(`webhook_bench: ${msg}`)
    process.exit(1)
  }

  /** Opens a writer on `ws` as `sub`; resolves after its init. */
  const openWriter = (srv, ws, sub) =>
    new Promise((resolve, reject) => {
      const token = srv.mintToken({ workspace: ws, sub })
      const sock = new WebSocket(`${srv.wsUrl}/v1/sync/${ws}`, { headers: { Authorization: `Bearer ${token}` } })
      sock.once("message", () => resolve(sock))
      sock.once("error", reject)
      setTimeout(() => reject(new Error(`${sub}: no init within 10 s`)), 10_000).unref()
    })

  const closeWs = (ws) =>
    new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve()
      ws.once("close", resolve)
      ws.close()
    })

  /** N ops over S pipelined writers; resolves the wall time in ms. */
  async function throughput(srv, run) {
    const per = Array.from({ length: S }, (_, s) => Math.floor(N / S) + (s < N % S ? 1 : 0))
    const socks = await Promise.all(per.map((_, s) => openWriter(srv, `bench-wh-${s % K}`, `writer-${s}`)))
    const t0 = performance.now()
    await Promise.all(
      socks.map(
        (ws, s) =>
          writeWindowed(ws, {
            prefix: `r${run}w${s}-`,
            count: per[s],
            window: W,
            key: (n) => `r${run}w${s}-k${n % 50}`,
            value: (n) => n,
          }),
      ),
    )
    const dt = performance.now() - t0
    await Promise.all(socks.map(closeWs))
    return dt
  }

  /** `count` sequential round trips on one socket; pushes the latencies (ms) to `out`. */
  async function latency(srv, round, count, out) {
    const ws = await openWriter(srv, "bench-wh-seq", `seq-${round}`)
    let waiting = null
    ws.on("message", (data) => {
      if (waiting && data.toString().includes(`"key":"seq${round}-`)) waiting()
    })
    for (let i = 0; i < count; i++) {
      const t0 = performance.now()
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no echo within 10 s")), 10_000)
        waiting = () => {
          clearTimeout(timer)
          waiting = null
          resolve()
        }
        ws.send(`{"type":"op","payload":{"key":"seq${round}-${i % 50}","value":${i}}}`)
      })
      out.push(performance.now() - t0)
    }
    await closeWs(ws)
  }

  async function adminStats(srv) {
    const token = srv.mintToken({ sub: "bench", workspaces: ["*"], scope: "admin" })
    const r = await httpRequest(`${srv.url}/v1/admin/webhooks/stats`, { headers: { Authorization: `Bearer ${token}` } })
    if (r.status !== 200) die(`GET stats: ${r.status} ${r.text}`)
    return JSON.parse(r.text)
  }

  /** A receiver child process: {url, count(), close()}. */
  function receiver(delayMs) {
    return new Promise((resolve, reject) => {
      const child = fork(SELF, ["--receiver-child", String(delayMs)], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
      const pending = []
      child.on("message", (m) => {
        if (m.url) {
          resolve({
            url: m.url,
            count: () =>
              new Promise((res) => {
                pending.push(res)
                child.send("count")
              }),
            close: () =>
              new Promise((res) => {
                child.once("exit", res)
                child.send("exit")
                setTimeout(() => child.kill("SIGKILL"), 5000).unref()
              }),
          })
        } else if (pending.length) {
          pending.shift()(m)
        }
      })
      child.once("error", reject)
      child.once("exit", (code) => reject(new Error(`receiver exited (${code})`)))
    })
  }

  /** A configuration: a server (and a receiver). */
  async function setup(kind) {
    let rx = null
    const args = []
    const env = {}
    if (kind !== "none") {
      rx = await receiver(kind === "slow" ? SLOW_MS : 0)
      args.push("--webhook-url", rx.url)
      env.ETHERPLY_WEBHOOK_SECRET = webhookSecret()
    }
    const srv = await startServer({ args, env })
    return { kind, srv, rx, runs: [], lat: [], t0: 0, end: null }
  }

  const cpu = os.cpus()[0]?.model ?? "?"
  log(`${BIN}, ${os.cpus().length} cores (${cpu}), node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`)
  log(`${N} ops over ${S} sockets (window ${W}, ${K} workspaces), ${R} rounds; ${M} sequential round trips; slow receiver ${SLOW_MS} ms`)
  const configs = []
  try {
    for (const kind of ["none", "fast", "slow"]) configs.push(await setup(kind))
    for (const c of configs) c.t0 = performance.now()
    for (let run = 0; run < R; run++) {
      for (const c of configs) {
        const dt = await throughput(c.srv, run)
        c.runs.push(dt)
        let line = `${c.kind} round ${run + 1}: ${N} ops in ${dt.toFixed(0)} ms (${Math.round(N / (dt / 1000))} ops/s)`
        if (c.rx) line += `; ${(await c.rx.count()).delivered} events delivered so far`
        log(line)
      }
      for (const c of configs) await latency(c.srv, run, Math.ceil(M / R), c.lat)
    }
    for (const c of configs) {
      log(`${c.kind}: ${c.lat.length} sequential round trips: p50 ${pct(c.lat, 50).toFixed(2)} ms, p99 ${pct(c.lat, 99).toFixed(2)} ms`)
      if (c.rx) {
        c.end = { ...(await c.rx.count()), ms: performance.now() - c.t0, stats: await adminStats(c.srv) }
        log(`${c.kind}: ${c.end.delivered} events delivered in ${(c.end.ms / 1000).toFixed(1)} s; server: ${JSON.stringify(c.end.stats)}`)
      }
    }
  } finally {
    for (const c of configs) {
      try {
        await c.srv.cleanup()
      } finally {
        await c.rx?.close()
      }
    }
  }

  const total = R * N + configs[0].lat.length
  const base = N / (median(configs[0].runs) / 1000)
  const base50 = pct(configs[0].lat, 50)
  const label = { none: "no webhook", fast: "receiver answers at once", slow: `receiver takes ${SLOW_MS / 1000} s per request` }
  const out = []
  out.push("## Webhooks: op throughput with a receiver")
  out.push("")
  out.push(
    `\`node bench/webhook_bench.mjs\`: ${N} ops over ${S} WebSocket writers (${K} workspaces, up to ${W} ops in flight per writer), ` +
      `median of ${R} rounds; ${configs[0].lat.length} sequential op round trips on one socket. The three servers run side by side ` +
      `and are measured in turns. Each receiver is a node HTTP server on 127.0.0.1 in a process of its own; it is never waited for, ` +
      `so the fast one delivers its backlog during the later rounds. ${os.cpus().length} cores (${cpu}), node ${process.version}.`,
  )
  out.push("")
  out.push("| configuration | ops/s | vs no webhook | round trip p50 | p99 | p50 vs no webhook | events delivered (of all ops) |")
  out.push("|---|---:|---:|---:|---:|---:|---:|")
  for (const c of configs) {
    const ops = N / (median(c.runs) / 1000)
    const p50 = pct(c.lat, 50)
    const p99 = pct(c.lat, 99)
    const during = c.end
      ? `${c.end.delivered} of ${total} in ${(c.end.ms / 1000).toFixed(1)} s (${Math.round(c.end.delivered / (c.end.ms / 1000))}/s)`
      : "–"
    out.push(
      `| ${label[c.kind]} | ${Math.round(ops)} | ${(ops / base).toFixed(2)} | ${p50.toFixed(2)} ms | ${p99.toFixed(2)} ms | ${(p50 / base50).toFixed(2)} | ${during} |`,
    )
  }
  out.push("")
  const slow = configs.find((c) => c.kind === "slow")
  if (slow?.end)
    out.push(
      `At the end, the slow receiver's server had ${slow.end.stats.pending} events pending and ${slow.end.stats.in_flight} requests ` +
        `in flight (at most 4 at once, one per workspace): the outbox grows, ops do not wait for it.`,
    )
  console.log(out.join("\n"))
}
