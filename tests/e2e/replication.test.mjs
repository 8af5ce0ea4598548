// Replication end to end: real `etherply serve` nodes and real nats-server
// processes on loopback ports (doc/replication.md).
//
// Run: ETHERPLY_BIN=build/etherply node --test tests/e2e/replication.test.mjs
import assert from "node:assert/strict"
import crypto from "node:crypto"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { test } from "node:test"
import * as A from "@automerge/automerge"

import { connect, connectWithInit } from "./lib/client.mjs"
import { publishRaw, startNats, startNatsCluster } from "./lib/nats.mjs"
import { BIN, diskFaultLibrary, httpRequest, randomSecret, startServer } from "./lib/server.mjs"
import { startReceiver } from "./lib/webhook_receiver.mjs"

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const sorted = (a) => [...a].sort()
/** The reference's JSON of a document (JSON.stringify(js(doc))), parsed. */
const js = (doc) => JSON.parse(JSON.stringify(A.toJS(doc)))

/**
 * Starts `n` nodes sharing one secret, replicating over `natsUrl`; node i
 * gets the environment variables envOf(i) besides the test's own.
 */
async function startNodes(natsUrl, n, {
  args = [], prefix = "node", secret = randomSecret(), antiEntropy = "500ms", envOf = () => ({}),
} = {}) {
  const nodes = []
  for (let i = 0; i < n; i++) {
    nodes.push(
      await startServer({
        secret,
        args: ["--nats-url", natsUrl, "--node-id", `${prefix}${i}`, "--region", `r${i}`,
          "--anti-entropy-interval", antiEntropy, ...args],
        env: envOf(i),
      }),
    )
  }
  return nodes
}

/** Runs fn with nodes and NATS, cleaning up; logs on failure. */
async function withCluster(t, { nodes: n = 2, cluster = false, args = [], antiEntropy, envOf }, fn) {
  const nats = cluster ? await startNatsCluster() : await startNats()
  const url = cluster ? nats.urls : nats.url
  let nodes = []
  try {
    nodes = await startNodes(url, n, { args, antiEntropy, envOf })
    await fn(nodes, nats)
  } catch (e) {
    for (const node of nodes) {
      t.diagnostic(`--- node log ${node.port}:`)
      for (const line of node.logTail(40).split("\n")) if (line) t.diagnostic(line)
    }
    throw e
  } finally {
    for (const node of nodes) await node.cleanup()
    await nats.cleanup()
  }
}

/**
 * Writes key=value through a fresh client and waits for the durable echo
 * (ops replicated from other nodes may reach the client before it).
 */
async function put(node, ws, key, value, sub = "writer") {
  const c = await connect(node.wsUrl, ws, { token: node.mintToken({ workspace: ws, sub }) })
  try {
    await c.next() // init
    await c.put(key, value, undefined, 15_000)
  } finally {
    c.terminate()
  }
}

/** A client that writes many ops and waits for each echo. */
async function writer(node, ws, sub) {
  const c = await connect(node.wsUrl, ws, { token: node.mintToken({ workspace: ws, sub }) })
  await c.next()
  return {
    c,
    async put(key, value) {
      const before = c.ops().filter((m) => m.payload.key === key && JSON.stringify(m.payload.value) === JSON.stringify(value)).length
      c.sendOp(key, value)
      await c.waitUntil(
        () => c.ops().filter((m) => m.payload.key === key && JSON.stringify(m.payload.value) === JSON.stringify(value)).length > before,
        15_000, `echo of ${key}`)
    },
  }
}

/** The document a node exports, loaded by the reference. */
async function docOf(node, ws) {
  const token = node.mintToken({ workspace: ws, scope: "read", sub: "exporter" })
  const r = await httpRequest(`${node.url}/v1/workspaces/${ws}/doc`, { headers: { Authorization: `Bearer ${token}` } })
  assert.equal(r.status, 200, `GET /doc: ${r.status} ${r.text}`)
  return A.load(new Uint8Array(r.body))
}

async function statusOf(node) {
  const r = await httpRequest(`${node.url}/v1/status`)
  assert.equal(r.status, 200)
  return JSON.parse(r.text)
}

/** Waits until `node`'s outbox is empty with at least `published` changes published. */
async function waitForDrain(node, published, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const st = (await statusOf(node)).replication
    if (st.publish_backlog === 0 && st.published >= published) return
    if (Date.now() > deadline) throw new Error(`the outbox of the node on port ${node.port} did not drain: ${JSON.stringify(st)}`)
    await sleep(100)
  }
}

/**
 * Waits until `node`'s stream and consumer exist: a message published
 * before then reaches no stream and is lost.
 */
async function waitForStream(node, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await statusOf(node)).replication.stream_ready) {
    if (Date.now() > deadline) throw new Error(`the node on port ${node.port} has no stream`)
    await sleep(50)
  }
}

/**
 * Waits until `node` has logged a line matching `re`: its log is read from a
 * pipe, which may lag behind what the node has answered over HTTP.
 */
async function assertLogs(node, re, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!re.test(node.log()) && Date.now() < deadline) await sleep(50)
  assert.match(node.log(), re)
}

/**
 * Waits until every node's document has the same heads (and `changes`
 * changes, if given); then checks JSON and history equal in the reference.
 */
async function assertConverged(nodes, ws, { changes, timeoutMs = 30_000 } = {}) {
  const deadline = Date.now() + timeoutMs
  let last = ""
  for (;;) {
    const docs = await Promise.all(nodes.map((n) => docOf(n, ws)))
    const heads = docs.map((d) => JSON.stringify(sorted(A.getHeads(d))))
    const counts = docs.map((d) => A.getAllChanges(d).length)
    last = `heads ${heads.join(" | ")}; changes ${counts.join(",")}`
    const same = heads.every((h) => h === heads[0]) && (changes === undefined || counts.every((c) => c === changes))
    if (same) {
      for (const d of docs.slice(1)) {
        assert.deepEqual(js(d), js(docs[0]), "every node has the same JSON")
        assert.deepEqual(
          A.getAllChanges(d).map((c) => A.decodeChange(c).hash).sort(),
          A.getAllChanges(docs[0]).map((c) => A.decodeChange(c).hash).sort(),
          "every node has the same changes")
      }
      return docs[0]
    }
    if (Date.now() > deadline) throw new Error(`nodes did not converge within ${timeoutMs} ms: ${last}`)
    await sleep(200)
  }
}

test("an op made on node A reaches a client of node B as an op message", async (t) => {
  await withCluster(t, { nodes: 2 }, async ([a, b]) => {
    const ws = "rep-basic"
    const [cb, init] = await connectWithInit(b.wsUrl, ws, { token: b.mintToken({ workspace: ws, sub: "bob" }) })
    assert.deepEqual(init.data, {})
    await put(a, ws, "title", { text: "from A", n: 1 }, "alice")
    const m = await cb.nextOfType("op", 15_000)
    assert.deepEqual(m.payload, { ...m.payload, key: "title", value: { text: "from A", n: 1 } })
    assert.equal(typeof m.payload.timestamp, "number")
    // And back: B's op reaches a client of A.
    const [ca] = await connectWithInit(a.wsUrl, ws, { token: a.mintToken({ workspace: ws, sub: "alice2" }) })
    await put(b, ws, "reply", "from B", "bob")
    const back = await ca.nextOfType("op", 15_000)
    assert.equal(back.payload.key, "reply")
    assert.equal(back.payload.value, "from B")
    const doc = await assertConverged([a, b], ws, { changes: 2 })
    assert.deepEqual(js(doc), { title: { text: "from A", n: 1 }, reply: "from B" })
    const st = await statusOf(a)
    assert.equal(st.replication.node, "node0")
    assert.equal(st.replication.connected, true)
    assert.equal(st.replication.publish_backlog, 0)
    cb.terminate()
    ca.terminate()
  })
})

/** `n` characters that do not compress much (base64 of random bytes). */
const incompressible = (n) => crypto.randomBytes(n).toString("base64").slice(0, n)

test("a change over the 16 KiB packing target goes through the stream, with its client's timestamp", async (t) => {
  // 16 KiB is what the publisher packs into one message, not a limit: a
  // larger change goes alone, as max_payload (1 MiB here) takes it. With
  // anti-entropy an hour away, only the stream can bring it to B, and only
  // the stream carries the op's timestamp as the client chose it.
  await withCluster(t, { nodes: 2, antiEntropy: "1h" }, async ([a, b]) => {
    const ws = "rep-large"
    const [cb] = await connectWithInit(b.wsUrl, ws, { token: b.mintToken({ workspace: ws, sub: "bob" }) })
    const value = incompressible(100_000)
    const [ca] = await connectWithInit(a.wsUrl, ws, { token: a.mintToken({ workspace: ws, sub: "alice" }) })
    await ca.put("big", value, 1700000000123456, 15_000)
    const m = await cb.nextOfType("op", 15_000)
    assert.equal(m.payload.key, "big")
    assert.equal(m.payload.value, value)
    assert.equal(m.payload.timestamp, 1700000000123456, "the client's timestamp, kept exactly")
    const st = (await statusOf(a)).replication
    assert.equal(st.too_large, 0)
    assert.equal(st.published, 1)
    assert.doesNotMatch(a.log(), /is over what NATS takes/)
    ca.terminate()
    cb.terminate()
  })
})

test("a change too large for NATS: a node that asks for it through anti-entropy is told why, not left to time out", async (t) => {
  // A 2 MB change is over NATS's 1 MiB max_payload: it stays on A. B,
  // which holds the workspace too, asks for it in a sync session; A's
  // answer cannot go, so A says why in an empty reply, and B logs it.
  await withCluster(t, { nodes: 2, args: ["--max-message-bytes", "4194304"] }, async ([a, b]) => {
    const ws = "rep-too-large"
    await put(b, ws, "small", 1, "bob")
    await assertConverged([a, b], ws, { changes: 1 })
    await put(a, ws, "big", incompressible(2_000_000), "alice")
    const why = "workspace rep-too-large holds a change of about \\d+ bytes, over what NATS takes"
    await assertLogs(a, new RegExp(`ERROR replication: ${why}`))
    await assertLogs(b, new RegExp(`WARN replication: anti-entropy: sync of ${ws} with node0: node0 answered: ${why}`))
    assert.doesNotMatch(b.log(), /with node0: Timeout/)
    assert.equal((await statusOf(a)).replication.too_large, 1)
  })
})

test("a stream message of several changes applies with each change's timestamp; malformed ones are dropped and do not block the stream", async (t) => {
  await withCluster(t, { nodes: 1 }, async ([a], nats) => {
    const ws = "rep-raw"
    const [c] = await connectWithInit(a.wsUrl, ws, { token: a.mintToken({ workspace: ws, sub: "reader" }) })
    // Changes made by the reference, as another node would send them.
    let doc = A.init()
    const made = []
    for (const [k, v] of [["x", "one"], ["y", "two"], ["z", "three"]]) {
      doc = A.change(doc, (d) => { d[k] = v })
      made.push(A.getLastLocalChange(doc))
    }
    const [first, second, third] = made
    const subject = "etherply.changes.foreign"
    const send = (id, headers, payload) => publishRaw(nats.url, subject, { "Nats-Msg-Id": id, ...headers }, payload)
    // A timestamp header that does not match: the change applies all the same,
    // dated by its own time (seconds).
    await send("bad-ts", { "Etherply-Workspace": ws, "Etherply-Timestamp": "17 x" }, first)
    const x = await c.nextOfType("op", 15_000)
    assert.deepEqual([x.payload.key, x.payload.value], ["x", "one"])
    assert.equal(x.payload.timestamp, A.decodeChange(first).time * 1_000_000, "the change's own time (seconds), in µs")
    // Messages that cannot apply: dropped, logged, and the stream goes on.
    const bad = [
      [{ "Etherply-Workspace": ws, "Etherply-Timestamp": "1" }, Buffer.from("not a change"), "not an Automerge chunk"],
      [{ "Etherply-Timestamp": "1" }, second, "no workspace header"],
      [{ "Etherply-Workspace": ws }, Buffer.alloc(0), "no changes"],
    ]
    let n = 0
    for (const [headers, payload] of bad) await send(`bad-${n++}`, headers, payload)
    await send("good", { "Etherply-Workspace": ws, "Etherply-Timestamp": "1700000000000002 1700000000000003" },
      Buffer.concat([second, third]))
    const y = await c.nextOfType("op", 15_000)
    const z = await c.nextOfType("op", 15_000)
    assert.deepEqual([y.payload.key, y.payload.value, y.payload.timestamp], ["y", "two", 1700000000000002])
    assert.deepEqual([z.payload.key, z.payload.value, z.payload.timestamp], ["z", "three", 1700000000000003])
    assert.deepEqual(js(await docOf(a, ws)), { x: "one", y: "two", z: "three" })
    assert.match(a.log(), /WARN replication: a message on etherply\.changes\.foreign: .*does not hold 1 timestamps; its changes are dated by their own time/)
    for (const [, , why] of bad) assert.match(a.log(), new RegExp(`dropping a malformed message on ${subject}: .*${why}`))
    assert.equal((await statusOf(a)).replication.received, 3, "three changes received; the malformed messages count for none")
    assert.equal((await statusOf(a)).replication.dropped, bad.length, "each malformed message counted as dropped")
    c.terminate()
  })
})

test("a message that cannot apply, fetched in one batch with good ones of its workspace, drops only itself", async (t) => {
  await withCluster(t, { nodes: 1 }, async ([a], nats) => {
    const ws = "rep-poison"
    // A change the document refuses: its deps cut off the change before it
    // (the second change of its actor, which sets a key of a map the first
    // made), so it is ready to apply yet refers to an unknown object.
    let doc = A.init()
    doc = A.change(doc, (d) => { d.m = {} })
    doc = A.change(doc, (d) => { d.m.k = 1 })
    const decoded = A.decodeChange(A.getLastLocalChange(doc))
    decoded.deps = []
    const poison = A.encodeChange(decoded)
    const good = []
    for (const key of ["before", "after"]) {
      let other = A.init()
      other = A.change(other, (d) => { d[key] = key })
      good.push(A.getLastLocalChange(other))
    }
    // Published while the node is away, so that one fetch takes all three.
    await waitForStream(a)
    await a.stop()
    const subject = "etherply.changes.foreign"
    const send = (id, payload) =>
      publishRaw(nats.url, subject, { "Nats-Msg-Id": id, "Etherply-Workspace": ws }, payload)
    await send("good-before", good[0])
    await send("poison", poison)
    await send("good-after", good[1])
    await a.launch()
    const deadline = Date.now() + 15_000
    let data = {}
    while (Date.now() < deadline) {
      data = js(await docOf(a, ws))
      if (data.before && data.after) break
      await sleep(200)
    }
    assert.deepEqual(data, { before: "before", after: "after" }, "both good messages applied, the poison not")
    // (The three came in one fetch: the batch failed, then each went alone.)
    await assertLogs(a, /3 messages of rep-poison cannot apply together/)
    await assertLogs(a, /replication: applying changes: .*dropped/)
    const { replication } = await statusOf(a)
    assert.equal(replication.received, 3, "every message settled: two applied, one dropped")
    assert.equal(replication.dropped, 1, "the poison alone counted as dropped")
  })
})

test("a change nesting objects more than 1,024 deep is dropped, not a crash; one 1,024 deep applies and reaches clients", async (t) => {
  await withCluster(t, { nodes: 1 }, async ([a], nats) => {
    const ws = "rep-deep"
    const [c] = await connectWithInit(a.wsUrl, ws, { token: a.mintToken({ workspace: ws, sub: "reader" }) })
    // Through the reference's low-level handle: its proxy API takes time
    // quadratic in the depth.
    const chain = (key, depth) => {
      const h = A.getBackend(A.init())
      let obj = "_root"
      for (let i = 0; i < depth; i++) obj = h.putObject(obj, key, {})
      h.commit()
      return h.getLastLocalChange()
    }
    const subject = "etherply.changes.foreign"
    const send = (id, payload) =>
      publishRaw(nats.url, subject, { "Nats-Msg-Id": id, "Etherply-Workspace": ws }, payload)
    await send("deep-1025", chain("over", 1025))
    await send("deep-200000", chain("far", 200_000))
    await send("deep-1024", chain("a", 1024))
    const op = await c.nextOfType("op", 15_000)
    assert.equal(op.payload.key, "a", "the changes too deep made no op")
    let depth = 1
    for (let v = op.payload.value; Object.keys(v).length > 0; v = v.a) depth++
    assert.equal(depth, 1024)
    assert.deepEqual(Object.keys(js(await docOf(a, ws))), ["a"])
    await assertLogs(a, /replication: applying changes: .*an object nested more than 1024 objects deep.*dropped/)
    const { replication } = await statusOf(a)
    assert.equal(replication.received, 3)
    assert.equal(replication.dropped, 2, "the two changes too deep")
    c.terminate()
  })
})

test("a change that waits for its deps and then cannot apply is dropped; the change it waited for applies", async (t) => {
  await withCluster(t, { nodes: 1 }, async ([a], nats) => {
    const ws = "rep-queued-poison"
    let doc = A.init()
    doc = A.change(doc, (d) => { d.first = 1 })
    const first = A.getLastLocalChange(doc)
    const firstHash = A.decodeChange(first).hash
    // After `first`, an op on an object that exists nowhere.
    const actor = "ab".repeat(16)
    const poison = A.encodeChange({
      actor, seq: 1, startOp: 2, time: 0, message: null, deps: [firstHash],
      ops: [{ action: "set", obj: `9@${actor}`, key: "x", datatype: "int", value: 1, pred: [] }],
    })
    const subject = "etherply.changes.foreign"
    const send = (id, payload) =>
      publishRaw(nats.url, subject, { "Nats-Msg-Id": id, "Etherply-Workspace": ws }, payload)
    // The poison arrives first and waits in the queue for `first`.
    await waitForStream(a)
    await send("poison", poison)
    const deadline = Date.now() + 15_000
    while ((await statusOf(a)).replication.received < 1 && Date.now() < deadline) await sleep(100)
    await send("first", first)
    let data = {}
    while (Date.now() < deadline) {
      data = js(await docOf(a, ws))
      if (data.first) break
      await sleep(200)
    }
    assert.deepEqual(data, { first: 1 }, "the change the poison waited for applied")
    await assertLogs(a, new RegExp(`workspace ${ws}: corruption: queued change [0-9a-f]{64} dropped`))
    assert.equal((await statusOf(a)).replication.dropped, 1, "the dropped change counted")
  })
})

test("three nodes with concurrent writers on the same keys converge to one document", async (t) => {
  await withCluster(t, { nodes: 3 }, async (nodes) => {
    const ws = "rep-concurrent"
    const writers = await Promise.all(nodes.map((n, i) => writer(n, ws, `w${i}`)))
    const perWriter = 40
    await Promise.all(
      writers.map(async (w, i) => {
        for (let k = 0; k < perWriter; k++) await w.put(`k${k % 5}`, { by: i, k })
      }),
    )
    const doc = await assertConverged(nodes, ws, { changes: 3 * perWriter })
    assert.deepEqual(Object.keys(js(doc)).sort(), ["k0", "k1", "k2", "k3", "k4"])
    for (const w of writers) w.c.terminate()
  })
})

test("a node killed with kill -9 and restarted gets every op it missed", async (t) => {
  await withCluster(t, { nodes: 2 }, async ([a, b]) => {
    const ws = "rep-kill"
    await put(a, ws, "before", 1)
    await assertConverged([a, b], ws, { changes: 1 })
    await b.kill9()
    const w = await writer(a, ws, "alice")
    for (let i = 0; i < 30; i++) await w.put(`k${i}`, i)
    w.c.terminate()
    await b.launch()
    const doc = await assertConverged([a, b], ws, { changes: 31 })
    assert.equal(js(doc).k29, 29)
  })
})

test("a node stopped cleanly resumes its consumer where it was, without the stream again", async (t) => {
  // The durable consumer must outlive a clean stop: a node that lost it
  // would receive the whole stream again at every start.
  await withCluster(t, { nodes: 2 }, async ([a, b]) => {
    const ws = "rep-resume"
    for (let i = 0; i < 20; i++) await put(a, ws, `k${i}`, i)
    await assertConverged([a, b], ws, { changes: 20 })
    await b.stop()
    assert.doesNotMatch(b.log(), /disconnected from NATS/, "a clean stop is no NATS outage")
    await put(a, ws, "after", true)
    await b.launch()
    await assertConverged([a, b], ws, { changes: 21 })
    const st = await statusOf(b)
    assert.equal(st.replication.received, 1, "only the change made while it was away")
  })
})

test("a publish the NATS client refuses is made again, even with nothing else in flight", async (t) => {
  // Node 0 runs with the fault library (tests/e2e/fault/): its NATS client
  // refuses the first publish it is asked for, when nothing else is in
  // flight, and the 7th. Node 0's outbox must still drain: every change
  // published and acknowledged, none left waiting for a restart.
  const fault = process.env.ETHERPLY_NATS_FAULT || path.join(path.dirname(BIN), "libetherply_nats_fault.so")
  assert.ok(fs.existsSync(fault),
    `the fault library (CMake target etherply_nats_fault) is missing: ${fault}; set ETHERPLY_NATS_FAULT`)
  const envOf = (i) => (i === 0 ? { LD_PRELOAD: fault, ETHERPLY_FAULT_PUBLISH: "1,7" } : {})
  await withCluster(t, { nodes: 2, antiEntropy: "1h", envOf }, async ([a, b]) => {
    const ws = "rep-refused"
    for (let i = 0; i < 10; i++) await put(a, ws, `k${i}`, i)
    await waitForDrain(a, 10, 15_000)
    await assertConverged([a, b], ws, { changes: 10 })
    assert.match(a.log(), /replication: publish: /, "the refused publish was logged")
  })
})

test("anti-entropy with a 1 s interval goes on while JetStream does not answer (each of its calls held 5 s): a change the stream cannot take still reaches the other node", { timeout: 60_000 }, async (t) => {
  // Every node's JetStream calls hang while the flag file exists; node 0's
  // publishes are refused from its 3rd on, so only anti-entropy can carry
  // its later changes. Its announcements wait behind those calls, so the
  // peers' horizon must allow for them, or no node syncs with any other.
  const fault = process.env.ETHERPLY_NATS_FAULT || path.join(path.dirname(BIN), "libetherply_nats_fault.so")
  assert.ok(fs.existsSync(fault),
    `the fault library (CMake target etherply_nats_fault) is missing: ${fault}; set ETHERPLY_NATS_FAULT`)
  const flag = path.join(os.tmpdir(), `etherply-slow-js-${process.pid}-${Date.now()}`)
  t.after(() => fs.rmSync(flag, { force: true }))
  const refuse = Array.from({ length: 398 }, (_, i) => i + 3).join(",")
  const envOf = (i) => ({ LD_PRELOAD: fault, ETHERPLY_FAULT_SLOW_JS: flag, ...(i === 0 ? { ETHERPLY_FAULT_PUBLISH: refuse } : {}) })
  await withCluster(t, { nodes: 2, antiEntropy: "1s", envOf }, async ([a, b]) => {
    const ws = "rep-slow-js"
    await put(a, ws, "before", 1)
    await assertConverged([a, b], ws, { changes: 1 })
    fs.writeFileSync(flag, "") // JetStream stops answering
    await sleep(2000)
    for (let i = 0; i < 3; i++) await put(a, ws, `k${i}`, i)
    const doc = await assertConverged([a, b], ws, { changes: 4, timeoutMs: 30_000 })
    assert.equal(js(doc).k2, 2)
  })
})

test("a publish refused in the middle of a batch of several workspaces' messages is made again", async (t) => {
  // With NATS away, node 0's outbox fills with the changes of three
  // workspaces; when NATS is back they go out as one batch of three
  // messages, and the fault library refuses the second. Every change must
  // still be published and reach node 1.
  const fault = process.env.ETHERPLY_NATS_FAULT || path.join(path.dirname(BIN), "libetherply_nats_fault.so")
  const envOf = (i) => (i === 0 ? { LD_PRELOAD: fault, ETHERPLY_FAULT_PUBLISH: "2" } : {})
  await withCluster(t, { nodes: 2, antiEntropy: "1h", envOf }, async ([a, b], nats) => {
    const spaces = ["rep-batch-a", "rep-batch-b", "rep-batch-c"]
    await nats.stop()
    for (let i = 0; i < 4; i++) for (const ws of spaces) await put(a, ws, `k${i}`, i)
    assert.equal((await statusOf(a)).replication.publish_backlog, 12)
    await nats.start()
    await waitForDrain(a, 12, 30_000)
    assert.match(a.log(), /replication: publish: /, "the refused publish was logged")
    for (const ws of spaces) assert.deepEqual(js(await assertConverged([a, b], ws, { changes: 4 })), { k0: 0, k1: 1, k2: 2, k3: 3 })
  })
})

test("a node whose disk is full retries stream messages after a growing delay, without flooding its log, and repairs its gaps once the disk frees", async (t) => {
  // Node 1 runs with the disk-full fault library (tests/e2e/fault/): while
  // the flag file exists its writes fail. A message it cannot store is
  // refused, to come again after a delay, not at once (thousands of
  // retries, and log lines, a second); once the disk frees, it applies.
  // The changes fetched meanwhile wait for their deps in memory only, and
  // go when the failed write reloads the workspace. The gap repair that
  // fetches them again fails while the disk is full; with anti-entropy
  // only hourly here, it must be tried again until it succeeds.
  const fault = diskFaultLibrary()
  const flag = path.join(os.tmpdir(), `etherply-disk-full-${process.pid}-${Date.now()}`)
  t.after(() => fs.rmSync(flag, { force: true }))
  const envOf = (i) => (i === 1 ? { LD_PRELOAD: fault, ETHERPLY_FAULT_DISK_FULL: flag } : {})
  await withCluster(t, { nodes: 2, antiEntropy: "1h", envOf }, async ([a, b]) => {
    const ws = "rep-disk-full"
    await put(a, ws, "start", 0)
    await assertConverged([a, b], ws, { changes: 1 })
    fs.writeFileSync(flag, "") // node 1's disk is full
    const linesBefore = b.log().split("\n").length
    const w = await writer(a, ws, "alice")
    for (let i = 0; i < 5; i++) await w.put(`k${i}`, i)
    w.c.terminate()
    await sleep(2_000)
    const lines = b.log().split("\n").length - linesBefore
    assert.ok(lines < 200, `${lines} log lines in 2 s of a full disk`)
    await assertLogs(b, /WARN replication: applying changes: .*will retry in \d+ ms/)
    fs.rmSync(flag)
    await assertConverged([a, b], ws, { changes: 6, timeoutMs: 15_000 })
  })
})

test("a node that joins late gets the full history", async (t) => {
  await withCluster(t, { nodes: 1 }, async ([a], nats) => {
    const ws = "rep-late"
    for (let i = 0; i < 10; i++) await put(a, ws, `k${i}`, i)
    const [late] = await startNodes(nats.url, 1, { prefix: "late", secret: a.secret })
    try {
      await assertConverged([a, late], ws, { changes: 10 })
    } finally {
      await late.cleanup()
    }
  })
})

test("nodes started while NATS is away connect when it comes, and what they took meanwhile replicates", async (t) => {
  const nats = await startNats()
  let nodes = []
  try {
    await nats.stop()
    nodes = await startNodes(nats.url, 2)
    const [a, b] = nodes
    const ws = "rep-late-nats"
    await put(a, ws, "early", 1)
    const st = await statusOf(a)
    assert.equal(st.replication.connected, false)
    assert.equal(st.replication.publish_backlog, 1)
    assert.equal(st.status, "degraded", "/v1/status while NATS is away")
    // nats.c retries quietly; the node says so after 5 s.
    const start = Date.now()
    while (!/WARN replication: no NATS server of nats:\/\/127\.0\.0\.1:\d+ has answered for \d+ s; retrying/.test(a.log())) {
      assert.ok(Date.now() - start < 15_000, "the log says NATS is unreachable")
      await sleep(100)
    }
    await nats.start()
    const doc = await assertConverged([a, b], ws, { changes: 1 })
    assert.equal(js(doc).early, 1)
    await waitForStream(a)
    assert.equal((await statusOf(a)).status, "ok", "/v1/status once NATS is back")
  } catch (e) {
    for (const node of nodes) for (const line of node.logTail(40).split("\n")) if (line) t.diagnostic(line)
    throw e
  } finally {
    for (const node of nodes) await node.cleanup()
    await nats.cleanup()
  }
})

test("a NATS server without JetStream: the node says to start it with -js", async (t) => {
  const nats = await startNats({ jetstream: false })
  const node = await startServer({ args: ["--nats-url", nats.url, "--node-id", "nojs"] })
  try {
    const start = Date.now()
    while (!/JetStream is not enabled on this NATS server \(start it with -js\)/.test(node.log())) {
      assert.ok(Date.now() - start < 15_000, `the log says what is wrong:\n${node.logTail(10)}`)
      await sleep(100)
    }
  } finally {
    await node.cleanup()
    await nats.cleanup()
  }
})

test("NATS stopped and restarted while ops continue on every node: nothing is lost", async (t) => {
  await withCluster(t, { nodes: 2 }, async ([a, b], nats) => {
    const ws = "rep-nats-down"
    await put(a, ws, "start", true)
    await assertConverged([a, b], ws, { changes: 1 })
    await nats.stop()
    // Ops are acknowledged while NATS is away: they are durable locally.
    const wa = await writer(a, ws, "alice")
    const wb = await writer(b, ws, "bob")
    for (let i = 0; i < 10; i++) {
      await wa.put(`a${i}`, i)
      await wb.put(`b${i}`, i)
    }
    const st = await statusOf(a)
    assert.equal(st.replication.connected, false)
    assert.equal(st.replication.publish_backlog, 10, "the unpublished changes wait in the outbox")
    await nats.start()
    const doc = await assertConverged([a, b], ws, { changes: 21 })
    assert.equal(js(doc).a9, 9)
    assert.equal(js(doc).b9, 9)
    // Ops made after the outage flow again.
    await wb.put("after", "yes")
    await assertConverged([a, b], ws, { changes: 22 })
    wa.c.terminate()
    wb.c.terminate()
  })
})

test("a node whose JetStream state is lost recovers through anti-entropy", async (t) => {
  await withCluster(t, { nodes: 2 }, async ([a, b], nats) => {
    const ws = "rep-lost"
    await put(a, ws, "start", 0)
    await assertConverged([a, b], ws, { changes: 1 })
    await b.kill9()
    const w = await writer(a, ws, "alice")
    for (let i = 0; i < 20; i++) await w.put(`k${i}`, i)
    w.c.terminate()
    // Wait until A published everything, then lose the stream, its
    // messages and B's consumer: only anti-entropy can bring B the ops.
    const deadline = Date.now() + 15_000
    while ((await statusOf(a)).replication.publish_backlog > 0 && Date.now() < deadline) await sleep(100)
    await nats.kill9()
    nats.wipe()
    await nats.start()
    await b.launch()
    const doc = await assertConverged([a, b], ws, { changes: 21 })
    assert.equal(js(doc).k19, 19)
    const st = await statusOf(b)
    assert.ok(st.replication.anti_entropy.passes > 0 || (await statusOf(a)).replication.anti_entropy.sessions > 0,
      "anti-entropy ran")
  })
})

test("a node rebuilt on an empty disk gets over 1 MiB of changes through anti-entropy alone", async (t) => {
  // B comes back under its node ID with nothing: its durable consumer is
  // past every message, so only anti-entropy can refill it, with more than
  // NATS's max_payload (1 MiB) in one workspace. The sync messages must
  // carry it in parts that fit.
  await withCluster(t, { nodes: 2 }, async ([a, b]) => {
    const ws = "rep-rebuilt"
    const w = await writer(a, ws, "alice")
    for (let i = 0; i < 48; i++) await w.put(`k${i}`, incompressible(32_000))
    w.c.terminate()
    const before = await assertConverged([a, b], ws, { changes: 48 })
    const bytes = A.getAllChanges(before).reduce((n, c) => n + c.length, 0)
    assert.ok(bytes > 1.1 * 2 ** 20, `more than max_payload to move (${bytes} bytes)`)
    await b.kill9()
    fs.rmSync(b.dataDir, { recursive: true, force: true })
    fs.mkdirSync(b.dataDir)
    await b.launch()
    await assertConverged([a, b], ws, { changes: 48, timeoutMs: 20_000 })
    const sessions = (await statusOf(a)).replication.anti_entropy.sessions + (await statusOf(b)).replication.anti_entropy.sessions
    assert.ok(sessions > 0, "anti-entropy ran")
    assert.doesNotMatch(a.log() + b.log(), /ERROR replication/)
  })
})

test("a node restored from an older backup makes no change that clashes with those it made since", async (t) => {
  // A's backup holds alice's first change on A. After it, alice makes two
  // more there, which B holds. A set back to the backup, alone (so nothing
  // reaches it first), takes a third: were its actors those of the backup,
  // that change would have the sequence number of one B already holds with
  // other content, and no document could hold both.
  await withCluster(t, { nodes: 2 }, async ([a, b]) => {
    const ws = "rep-restore"
    await put(a, ws, "k0", 0, "alice")
    await assertConverged([a, b], ws, { changes: 1 })
    await a.stop()
    const backup = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-backup-"))
    try {
      fs.cpSync(a.dataDir, backup, { recursive: true })
      await a.launch()
      await put(a, ws, "k1", 1, "alice")
      await put(a, ws, "k2", 2, "alice")
      await assertConverged([a, b], ws, { changes: 3 })
      await a.stop()
      await b.stop()
      fs.rmSync(a.dataDir, { recursive: true, force: true })
      fs.cpSync(backup, a.dataDir, { recursive: true })
      await a.launch()
      await put(a, ws, "k3", 3, "alice")
      await b.launch()
      const doc = await assertConverged([a, b], ws, { changes: 4 })
      assert.deepEqual(js(doc), { k0: 0, k1: 1, k2: 2, k3: 3 })
      assert.doesNotMatch(a.log() + b.log(), /ERROR/)
    } finally {
      fs.rmSync(backup, { recursive: true, force: true })
    }
  })
})

test("two nodes started with one node ID, one on a copy of the other's data dir: each says so, and their writes converge", async (t) => {
  await withCluster(t, { nodes: 2 }, async ([a, b], nats) => {
    const ws = "rep-twin"
    await put(a, ws, "k0", 0, "alice")
    await assertConverged([a, b], ws, { changes: 1 })
    await a.stop()
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-copy-"))
    let twin
    try {
      fs.cpSync(a.dataDir, copy, { recursive: true })
      await a.launch()
      twin = await startServer({ secret: a.secret, dataDir: copy, args: a.args })
      for (const node of [a, twin]) {
        await assertLogs(node, /ERROR replication: another node announces this node's ID node0/)
        const st = await statusOf(node)
        assert.equal(st.status, "degraded", JSON.stringify(st))
        assert.equal(st.replication.node_id_clash, true, JSON.stringify(st))
      }
      assert.equal((await statusOf(b)).status, "ok")
      await put(a, ws, "fromA", 1, "alice")
      await put(twin, ws, "fromTwin", 2, "alice")
      const doc = await assertConverged([a, b, twin], ws, { changes: 3 })
      assert.deepEqual(js(doc), { k0: 0, fromA: 1, fromTwin: 2 })
    } finally {
      if (twin) await twin.cleanup()
      fs.rmSync(copy, { recursive: true, force: true })
    }
  })
})

test("a three-server NATS cluster with an R3 stream survives losing one server", async (t) => {
  await withCluster(t, { nodes: 2, cluster: true, args: ["--nats-replicas", "3"] }, async ([a, b], cluster) => {
    const ws = "rep-r3"
    // The stream needs its three replicas; the first op may wait for them.
    await put(a, ws, "start", 0)
    await assertConverged([a, b], ws, { changes: 1, timeoutMs: 60_000 })
    await cluster.servers[0].kill9()
    const wa = await writer(a, ws, "alice")
    const wb = await writer(b, ws, "bob")
    for (let i = 0; i < 10; i++) {
      await wa.put(`a${i}`, i)
      await wb.put(`b${i}`, i)
    }
    await assertConverged([a, b], ws, { changes: 21, timeoutMs: 60_000 })
    wa.c.terminate()
    wb.c.terminate()
  })
})

test("webhooks fire once per change, on the node where it was made", async (t) => {
  const rxA = await startReceiver({ respond: () => ({ status: 204 }) })
  const rxB = await startReceiver({ respond: () => ({ status: 204 }) })
  const whsec = "whsec_" + Buffer.alloc(32, 7).toString("base64")
  const nats = await startNats()
  const secret = randomSecret()
  const common = ["--nats-url", nats.url, "--anti-entropy-interval", "500ms", "--webhook-secret", whsec]
  const a = await startServer({ secret, args: [...common, "--node-id", "a", "--webhook-url", rxA.url] })
  const b = await startServer({ secret, args: [...common, "--node-id", "b", "--webhook-url", rxB.url] })
  try {
    const ws = "rep-hooks"
    for (let i = 0; i < 5; i++) await put(a, ws, `a${i}`, i)
    for (let i = 0; i < 3; i++) await put(b, ws, `b${i}`, i)
    await assertConverged([a, b], ws, { changes: 8 })
    await sleep(1500) // a late duplicate would show up by now
    const keys = (rx) => sorted(rx.requests.map((r) => JSON.parse(r.body).data.key))
    assert.deepEqual(keys(rxA), ["a0", "a1", "a2", "a3", "a4"])
    assert.deepEqual(keys(rxB), ["b0", "b1", "b2"])
  } catch (e) {
    for (const node of [a, b]) for (const line of node.logTail(30).split("\n")) if (line) t.diagnostic(line)
    throw e
  } finally {
    await a.cleanup()
    await b.cleanup()
    await nats.cleanup()
    await rxA.close()
    await rxB.close()
  }
})
