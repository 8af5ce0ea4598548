// End-to-end tests of the webhooks (doc/webhooks.md) against the real
// `etherply serve` and a real HTTP receiver on loopback (lib/webhook_receiver.mjs):
// the Standard Webhooks signature checked by an independent implementation
// (node:crypto), retries, Retry-After, per-workspace order, kill -9 with the
// receiver down, dead letters and replay, the admin endpoints, undo/restore
// events, and a slow receiver that must not slow ops.
//
// Run: ETHERPLY_BIN=build/etherply node --test --test-concurrency=1 tests/e2e/
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { performance } from "node:perf_hooks"
import { test } from "node:test"

import { connect, connectWithInit } from "./lib/client.mjs"
import { BIN, httpRequest, startServer } from "./lib/server.mjs"
import { HEX64, sequence, startReceiver, verifyWebhook, webhookSecret } from "./lib/webhook_receiver.mjs"

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const DATA_KEYS = ["author", "change", "heads", "key", "op_timestamp", "value", "workspace_id"]
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const nowMicros = () => Date.now() * 1000

// --- harness ---------------------------------------------------------------------------------

/**
 * Runs fn({srv, rx, secret, h}) with a receiver (unless `webhook: false`) and
 * a server POSTing to it. The secret goes in $ETHERPLY_WEBHOOK_SECRET, or in
 * --webhook-secret with `secretVia: "flag"`. At the end the server must run
 * and answer /healthz; on failure the server log and the receiver's requests
 * go to the diagnostics.
 */
async function withHooks(t, { args = [], respond, webhook = true, secretVia = "env" } = {}, fn) {
  const rx = webhook ? await startReceiver({ respond }) : null
  const secret = webhookSecret()
  const all = [...args]
  const env = {}
  if (webhook) {
    all.unshift("--webhook-url", rx.url)
    if (secretVia === "flag") all.push("--webhook-secret", secret)
    else env.ETHERPLY_WEBHOOK_SECRET = secret
  }
  let srv
  try {
    srv = await startServer({ args: all, env })
  } catch (e) {
    await rx?.close()
    throw e
  }
  const clients = []
  const h = {
    async connect(workspace, o = {}) {
      const c = await connect(srv.wsUrl, workspace, o)
      clients.push(c)
      return c
    },
    async connectWithInit(workspace, o = {}) {
      const [c, init] = await connectWithInit(srv.wsUrl, workspace, o)
      clients.push(c)
      return [c, init]
    },
    async initOf(workspace) {
      const [c, init] = await connectWithInit(srv.wsUrl, workspace, {
        token: srv.mintToken({ workspace, scope: "read", sub: "inspector" }),
      })
      await c.close()
      return init
    },
  }
  try {
    await fn({ srv, rx, secret, h })
    assert.ok(srv.running, "the server process is still running at the end of the test")
    const health = await httpRequest(`${srv.url}/healthz`)
    assert.equal(health.status, 200, "GET /healthz answers 200 at the end of the test")
  } catch (e) {
    t.diagnostic("server log (tail):")
    for (const line of srv.logTail(80).split("\n")) if (line) t.diagnostic(line)
    if (rx) {
      t.diagnostic(`receiver: ${rx.requests.length} requests; the last 20:`)
      for (const r of rx.requests.slice(-20))
        t.diagnostic(
          `  #${r.n} at ${r.at} ${r.headers["webhook-id"]} -> ${r.aborted ? "aborted" : r.status} ${r.json?.data?.workspace_id} ${r.json?.data?.key}=${JSON.stringify(r.json?.data?.value)}`,
        )
    }
    throw e
  } finally {
    for (const c of clients) c.terminate()
    try {
      await srv.cleanup()
    } finally {
      await rx?.close()
    }
  }
}

/** doc/webhooks.md: the webhook-id of part `part` of `change` in `workspace`. */
function eventId(workspace, change, part = 0) {
  const hash = createHash("sha256").update(workspace).update("\0").update(change).digest("hex")
  return part ? `evt_${hash}.${part}` : `evt_${hash}`
}

/** The admin endpoints as `token`; each resolves {status, json, text}. */
function adminApi(srv, token) {
  const call = async (method, p) => {
    const headers = token === undefined ? {} : { Authorization: `Bearer ${token}` }
    const r = await httpRequest(`${srv.url}${p}`, { method, headers })
    let json = null
    try {
      json = JSON.parse(r.text)
    } catch {}
    return { status: r.status, json, text: r.text }
  }
  return {
    stats: () => call("GET", "/v1/admin/webhooks/stats"),
    dead: (q = "") => call("GET", `/v1/admin/webhooks/dead${q}`),
    replay: (id) => call("POST", `/v1/admin/webhooks/dead/${id}/replay`),
    call,
  }
}
const adminToken = (srv) => srv.mintToken({ sub: "ops", workspaces: ["*"], scope: "admin" })

async function stats(srv) {
  const r = await adminApi(srv, adminToken(srv)).stats()
  assert.equal(r.status, 200, `GET stats: ${r.status} ${r.text}`)
  return r.json
}

/** Sends one op on `c` and waits for its own echo; returns the echoed op. */
const put = (c, ...args) => c.put(...args)

/** Every change hash of `ws`, oldest first, through GET /v1/history (every page). */
async function historyHashes(srv, ws) {
  const token = srv.mintToken({ workspace: ws, scope: "read", sub: "historian" })
  const out = []
  let cursor = null
  for (let page = 0; page < 1000; page++) {
    const r = await httpRequest(`${srv.url}/v1/history/${ws}?limit=1000${cursor ? `&cursor=${cursor}` : ""}`, {
      headers: { Authorization: `Bearer ${token}` },
    })
    assert.equal(r.status, 200, `GET history of ${ws}: ${r.status} ${r.text}`)
    const j = JSON.parse(r.text)
    for (const c of j.changes) out.push(c.hash)
    if (j.next === null) return out.reverse()
    cursor = j.next
  }
  throw new Error("history: too many pages")
}

/**
 * The first 2xx-answered request of every webhook-id, in arrival order (so
 * repeats of an id are dropped); for `ws` only if given.
 */
function firstDeliveries(rx, ws) {
  const seen = new Set()
  const out = []
  for (const r of rx.delivered()) {
    const id = r.headers["webhook-id"]
    if (seen.has(id)) continue
    seen.add(id)
    if (ws === undefined || r.json?.data?.workspace_id === ws) out.push(r)
  }
  return out
}

/** Asserts what every request must be: a signed POST of a well-formed doc.updated. */
function assertWellFormed(rx, secret, r) {
  const what = `request #${r.n} (${r.headers["webhook-id"]})`
  assert.equal(r.method, "POST", `${what}: method`)
  assert.equal(r.url, rx.path, `${what}: the URL's path and query are kept as given`)
  assert.match(r.headers["content-type"] ?? "", /^application\/json\b/, `${what}: content-type`)
  assert.equal(r.headers["user-agent"], "etherply-webhooks", `${what}: user-agent`)
  const ev = verifyWebhook(secret, r.headers, r.raw, { nowMs: r.at })
  const ts = Number(r.headers["webhook-timestamp"])
  assert.ok(Math.abs(ts - r.at / 1000) <= 5, `${what}: webhook-timestamp ${ts} is this attempt's time (arrived ${r.at / 1000})`)
  assert.equal(ev.type, "doc.updated", `${what}: type`)
  assert.match(ev.timestamp, ISO_MS, `${what}: timestamp is ISO 8601 UTC with ms`)
  assert.deepEqual(Object.keys(ev).sort(), ["data", "timestamp", "type"], `${what}: top-level fields`)
  // "deleted" only on a key that undo or restore removed (then always true).
  const keys = Object.keys(ev.data).filter((k) => k !== "deleted" || ev.data.deleted !== true)
  assert.deepEqual(keys.sort(), DATA_KEYS, `${what}: data fields`)
  assert.match(ev.data.change, HEX64, `${what}: change is 64 lowercase hex`)
  assert.ok(Array.isArray(ev.data.heads) && ev.data.heads.length >= 1, `${what}: heads`)
  for (const x of ev.data.heads) assert.match(x, HEX64)
  assert.deepEqual(ev.data.heads, [...ev.data.heads].sort(), `${what}: heads sorted`)
  assert.ok(Number.isSafeInteger(ev.data.op_timestamp), `${what}: op_timestamp is an integer`)
  const base = eventId(ev.data.workspace_id, ev.data.change)
  const id = r.headers["webhook-id"]
  assert.ok(id === base || new RegExp(`^${base}\\.[1-9][0-9]*$`).test(id), `${what}: webhook-id ${id} is evt_ + SHA-256(workspace, 0, change) (+ .part)`)
  return ev
}

/** Each webhook-id is always sent with the same bytes, and no change has two ids for one part. */
function assertDuplicatesIdentical(rx) {
  const byId = new Map()
  for (const r of rx.requests) {
    const id = r.headers["webhook-id"]
    if (!byId.has(id)) byId.set(id, r.body)
    else assert.equal(r.body, byId.get(id), `every attempt of ${id} sends the same body`)
  }
  const byEvent = new Map()
  for (const [id, body] of byId) {
    const d = JSON.parse(body).data
    const k = `${d.workspace_id}/${d.change}/${d.key}`
    assert.ok(!byEvent.has(k) || byEvent.get(k) === id, `event ${k} arrived under two ids: ${byEvent.get(k)} and ${id}`)
    byEvent.set(k, id)
  }
  return byId.size
}

function serverLog(srv) {
  // The harness's own lines ("--- start #1: <command line>") are not the server's.
  return srv
    .log()
    .split("\n")
    .filter((l) => !l.startsWith("--- "))
    .join("\n")
}

// --- configuration ---------------------------------------------------------------------------

test("configuration: a bad secret, a secret without URL, a bad URL, --webhook-backoff 0s are refused at start (exit 2) without quoting the secret", { timeout: 30_000 }, () => {
  const bad = [
    { args: ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", "not-a-whsec-secret-zz"], secret: "not-a-whsec-secret-zz" },
    // 16 bytes: too short.
    { args: ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", `whsec_${Buffer.alloc(16, 7).toString("base64")}`], secret: Buffer.alloc(16, 7).toString("base64") },
    { args: ["--webhook-url", "http://127.0.0.1:9/x"], env: { ETHERPLY_WEBHOOK_SECRET: "whsec_%%%%notbase64%%%%" }, secret: "%%%%notbase64%%%%" },
    { args: ["--webhook-url", "http://127.0.0.1:9/x"] }, // no secret at all
    { args: ["--webhook-secret", webhookSecret()] }, // no URL
    { args: ["--webhook-url", "ftp://127.0.0.1/x", "--webhook-secret", webhookSecret()] },
    { args: ["--webhook-url", "http://user:pw@127.0.0.1:9/x", "--webhook-secret", webhookSecret()] },
    { args: ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", webhookSecret(), "--webhook-backoff", "0s"] },
    { args: ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", webhookSecret(), "--webhook-attempts", "0"] },
    { args: ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", webhookSecret(), "--webhook-timeout", "0s"] },
  ]
  for (const b of bad) {
    const r = spawnSync(BIN, ["serve", "--listen", "127.0.0.1:0", "--data-dir", "/nonexistent/etherply-e2e-never", ...b.args], {
      env: { ...process.env, ETHERPLY_JWT_SECRET: "x".repeat(48), ETHERPLY_WEBHOOK_SECRET: "", ...(b.env ?? {}) },
      encoding: "utf8",
      timeout: 5_000,
    })
    const what = JSON.stringify(b.args)
    assert.equal(r.status, 2, `${what}: exit code 2 (got ${r.status}, signal ${r.signal}); stderr: ${r.stderr}`)
    assert.ok(r.stderr.length > 0, `${what}: a message on stderr`)
    if (b.secret) assert.ok(!r.stderr.includes(b.secret), `${what}: the message does not quote the secret: ${r.stderr}`)
  }
})

// --- the event --------------------------------------------------------------------------------

test("event: signed (verified with node:crypto; wrong secret/tampered body/other id/stale time fail), every field equals the op (one per op, a repeated value too), the change is the workspace's head", { timeout: 30_000 }, async (t) => {
  await withHooks(t, { secretVia: "flag" }, async ({ srv, rx, secret, h }) => {
    const ws = "wh-body"
    const [alice] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    const [bob] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "bob@example.com" }) })
    const ops = []
    // 1: a client timestamp, kept exactly; a nested value of every JSON kind.
    let t0 = Date.now()
    let m = await put(alice, "title", { text: "Hello", n: [1, 2.5, true, null, "ü€😀"], o: {} }, 1767323045678000)
    ops.push({ m, sub: "alice", t0, t1: Date.now() })
    // 2: no timestamp: the server's, as broadcast.
    t0 = Date.now()
    m = await put(alice, "count", 42)
    ops.push({ m, sub: "alice", t0, t1: Date.now() })
    // 3: another author.
    t0 = Date.now()
    m = await put(bob, "quote", 'he said "hi"\n\\')
    ops.push({ m, sub: "bob@example.com", t0, t1: Date.now() })
    // 4: the value the key holds already: an op all the same, with its event.
    t0 = Date.now()
    m = await put(bob, "count", 42)
    ops.push({ m, sub: "bob@example.com", t0, t1: Date.now() })
    const heads = (await h.initOf(ws)).heads
    const hist = await historyHashes(srv, ws)
    assert.equal(hist.length, 4)

    await rx.waitFor(() => rx.delivered().length >= 4, 10_000, "4 delivered events")
    await sleep(300) // nothing more may come
    assert.equal(rx.requests.length, 4, "one request per op, each answered 200 the first time")

    for (let i = 0; i < 4; i++) {
      const r = rx.requests[i]
      const ev = assertWellFormed(rx, secret, r)
      const { m, sub, t0, t1 } = ops[i]
      assert.equal(ev.data.workspace_id, ws)
      assert.equal(ev.data.key, m.payload.key)
      assert.deepEqual(ev.data.value, m.payload.value, "value exactly as broadcast")
      assert.equal(ev.data.author, sub, "author is the token's sub")
      assert.equal(ev.data.op_timestamp, m.payload.timestamp, "op_timestamp is the op's timestamp as broadcast")
      assert.equal(ev.data.change, hist[i], "change is this op's change (history, oldest first)")
      assert.deepEqual(ev.data.heads, [hist[i]], "heads right after the change (a linear history)")
      assert.equal(r.headers["webhook-id"], eventId(ws, hist[i]))
      const committed = Date.parse(ev.timestamp)
      assert.ok(committed >= t0 - 1000 && committed <= t1 + 1000, `timestamp ${ev.timestamp} is the commit time (op sent ${t0}..${t1})`)
    }
    assert.equal(rx.requests[0].json.data.op_timestamp, 1767323045678000, "a client's timestamp is kept")
    assert.deepEqual(rx.requests[3].json.data.heads, heads, "the last event's heads are the workspace's heads")
    assert.ok(heads.includes(rx.requests[3].json.data.change), "the last event's change is a head of the workspace")

    // The independent verifier really checks: each defect fails.
    const r = rx.requests[0]
    assert.throws(() => verifyWebhook(webhookSecret(), r.headers, r.raw, { nowMs: r.at }), /bad signature/, "another secret")
    const tampered = Buffer.from(r.raw)
    tampered[tampered.length - 2] ^= 1
    assert.throws(() => verifyWebhook(secret, r.headers, tampered, { nowMs: r.at }), /bad signature/, "a tampered body")
    assert.throws(() => verifyWebhook(secret, { ...r.headers, "webhook-id": rx.requests[1].headers["webhook-id"] }, r.raw, { nowMs: r.at }), /bad signature/, "another id")
    assert.throws(() => verifyWebhook(secret, { ...r.headers, "webhook-timestamp": String(Number(r.headers["webhook-timestamp"]) + 1) }, r.raw, { nowMs: r.at }), /bad signature/, "another timestamp")
    assert.throws(() => verifyWebhook(secret, r.headers, r.raw, { nowMs: r.at + 6 * 60_000 }), /stale/, "a timestamp beyond the 5-minute tolerance")

    const s = await stats(srv)
    assert.deepEqual(s, { delivered: 4, retried: 0, dead: 0, pending: 0, in_flight: 0, last_error: "" })
    // Never logged: the secret, the URL's path or query, the body.
    const log = serverLog(srv)
    assert.ok(!log.includes(secret.slice(6)), "the secret is not logged")
    assert.ok(!log.includes("hooks/etherply"), "the URL's path is not logged")
    assert.ok(!log.includes("Hello"), "the body is not logged")
    assert.match(log, /webhooks: delivering to http:\/\/127\.0\.0\.1:\d+; 0 pending events, 0 dead letters/)
  })
})

// --- retries ---------------------------------------------------------------------------------

test("the same op by the same token in two workspaces (the same change, hash and all) makes two events with two webhook-ids", { timeout: 30_000 }, async (t) => {
  await withHooks(t, {}, async ({ srv, rx, secret, h }) => {
    const changes = []
    for (const ws of ["wh-team-a", "wh-team-b"]) {
      const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "seeder" }) })
      await put(c, "title", "Untitled", 1767323045000000)
      changes.push((await historyHashes(srv, ws))[0])
    }
    assert.equal(changes[0], changes[1], "the two workspaces hold the same change")
    await rx.waitFor(() => rx.delivered().length >= 2, 10_000, "both events")
    const ids = rx.requests.map((r) => assertWellFormed(rx, secret, r) && r.headers["webhook-id"])
    assert.deepEqual(ids, [eventId("wh-team-a", changes[0]), eventId("wh-team-b", changes[0])])
    assert.notEqual(ids[0], ids[1], "a receiver that deduplicates on the id keeps both")
  })
})

test("retry: a receiver that answers 500 then 200 gets the same webhook-id and body again, with a fresh timestamp and signature", { timeout: 30_000 }, async (t) => {
  // The first answer is held 1.1 s so the retry's webhook-timestamp (seconds) differs.
  const respond = sequence([{ status: 500, delayMs: 1100 }, 200])
  await withHooks(t, { respond, args: ["--webhook-backoff", "1s"] }, async ({ srv, rx, secret, h }) => {
    const ws = "wh-retry"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    await put(c, "k", "v")
    await rx.waitFor(() => rx.delivered().length >= 1, 10_000, "the retry's 200")
    await sleep(300)
    assert.equal(rx.requests.length, 2, "exactly two attempts")
    const [a, b] = rx.requests
    assert.equal(a.status, 500)
    assert.equal(b.status, 200)
    const ea = assertWellFormed(rx, secret, a)
    assertWellFormed(rx, secret, b)
    assert.equal(b.headers["webhook-id"], a.headers["webhook-id"], "the same webhook-id")
    assert.equal(b.body, a.body, "the same body bytes")
    assert.ok(Number(b.headers["webhook-timestamp"]) > Number(a.headers["webhook-timestamp"]), "a fresh webhook-timestamp")
    assert.notEqual(b.headers["webhook-signature"], a.headers["webhook-signature"], "a fresh signature")
    assert.ok(b.at - a.respondedAt <= 1000 + 1500, `retry 1 within the backoff base (1 s) (+slack): ${b.at - a.respondedAt} ms`)
    assert.equal(ea.data.key, "k")
    const s = await stats(srv)
    assert.deepEqual(s, { delivered: 1, retried: 1, dead: 0, pending: 0, in_flight: 0, last_error: "HTTP 500" })
    assert.match(serverLog(srv), new RegExp(`WARN webhooks: ${a.headers["webhook-id"]} \\(workspace ${ws}\\) attempt 1 of 36 failed: HTTP 500`))
  })
})

test("retry: 503 with Retry-After: 2 → the retry, and any other workspace's request, wait at least 2 s", { timeout: 30_000 }, async (t) => {
  let first = true
  const respond = () => {
    if (first) {
      first = false
      return { status: 503, headers: { "Retry-After": "2" } }
    }
    return { status: 200 }
  }
  await withHooks(t, { respond, args: ["--webhook-backoff", "1s"] }, async ({ srv, rx, secret, h }) => {
    const [a] = await h.connectWithInit("wh-ra-a", { token: srv.mintToken({ workspace: "wh-ra-a", sub: "alice" }) })
    const [b] = await h.connectWithInit("wh-ra-b", { token: srv.mintToken({ workspace: "wh-ra-b", sub: "alice" }) })
    await put(a, "k", "a1")
    await rx.waitFor(() => rx.requests.length >= 1 && rx.requests[0].respondedAt !== null, 10_000, "the 503")
    const r503 = rx.requests[0]
    // The receiver has sent the 503; wait until the server has read it, since an event
    // that the server starts before then is rightly not held back by the pause.
    const deadline = Date.now() + 10_000
    while ((await stats(srv)).retried < 1) {
      assert.ok(Date.now() < deadline, "the server did not record the 503 within 10 s")
      await sleep(5)
    }
    // Another workspace's event during the pause.
    await put(b, "k", "b1")
    await rx.waitFor(() => rx.delivered().length >= 2, 10_000, "both events delivered")
    await sleep(200)
    assert.equal(rx.requests.length, 3, "the 503, the retry, the other workspace's event")
    for (const r of rx.requests) assertWellFormed(rx, secret, r)
    const retry = rx.requests.find((r) => r.n > 0 && r.headers["webhook-id"] === r503.headers["webhook-id"])
    const other = rx.requests.find((r) => r.json.data.workspace_id === "wh-ra-b")
    assert.ok(retry, "the 503'd event was retried")
    const waited = retry.at - r503.respondedAt
    t.diagnostic(`Retry-After 2: the retry came ${waited} ms after the 503; the other workspace's event ${other.at - r503.respondedAt} ms after`)
    assert.ok(waited >= 2000 - 5, `the retry waited at least 2 s after the 503 (waited ${waited} ms)`)
    assert.ok(waited <= 2000 + 3000, `...and not much more (${waited} ms)`)
    assert.ok(other.at - r503.respondedAt >= 2000 - 5, `no other request before the Retry-After (the other workspace's came after ${other.at - r503.respondedAt} ms)`)
    assert.match(serverLog(srv), /attempt 1 of 36 failed: HTTP 503 \(Retry-After 2\.0 s\); next attempt in 2\.0 s/)
  })
})

test("retry: a 503 with Retry-After: 2 on an event's last attempt buries it and still holds every other request for 2 s", { timeout: 30_000 }, async (t) => {
  const respond = sequence([{ status: 503, headers: { "Retry-After": "2" } }, 200])
  await withHooks(t, { respond, args: ["--webhook-attempts", "1"] }, async ({ srv, rx, h }) => {
    const [a] = await h.connectWithInit("wh-ral-a", { token: srv.mintToken({ workspace: "wh-ral-a", sub: "alice" }) })
    const [b] = await h.connectWithInit("wh-ral-b", { token: srv.mintToken({ workspace: "wh-ral-b", sub: "alice" }) })
    await put(a, "k", "a1")
    await rx.waitFor(() => rx.requests.length >= 1 && rx.requests[0].respondedAt !== null, 10_000, "the 503")
    const r503 = rx.requests[0]
    const deadline = Date.now() + 10_000
    while ((await stats(srv)).dead < 1) {
      assert.ok(Date.now() < deadline, "the 503'd event was not buried within 10 s")
      await sleep(5)
    }
    await put(b, "k", "b1")
    await rx.waitFor(() => rx.delivered().length >= 1, 10_000, "the other workspace's event")
    const waited = rx.requests[1].at - r503.respondedAt
    t.diagnostic(`the other workspace's event came ${waited} ms after the 503`)
    assert.ok(waited >= 2000 - 5, `no other request before the Retry-After (came after ${waited} ms)`)
    assert.match(serverLog(srv), /attempt 1 of 1 failed: HTTP 503 \(Retry-After 2\.0 s\)/)
  })
})

test("retry: a receiver that does not answer within --webhook-timeout 1s is a failed attempt, retried", { timeout: 30_000 }, async (t) => {
  const respond = sequence([{ status: 200, delayMs: 4000 }, 200])
  await withHooks(t, { respond, args: ["--webhook-timeout", "1s", "--webhook-backoff", "1s"] }, async ({ srv, rx, secret, h }) => {
    const ws = "wh-timeout"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    await put(c, "k", "v")
    await rx.waitFor(() => rx.requests.length >= 2 && rx.requests[1].respondedAt !== null, 10_000, "the second attempt")
    const [a, b] = rx.requests
    assertWellFormed(rx, secret, a)
    assertWellFormed(rx, secret, b)
    assert.equal(b.headers["webhook-id"], a.headers["webhook-id"])
    const gap = b.at - a.at
    t.diagnostic(`the retry came ${gap} ms after the first attempt, which got no answer`)
    assert.ok(gap >= 1000 - 5, `the first attempt was given 1 s (${gap} ms)`)
    assert.ok(gap <= 1000 + 1000 + 1500, `...then retried within the backoff (${gap} ms)`)
    const s = await stats(srv)
    assert.equal(s.delivered, 1)
    assert.equal(s.retried, 1)
    assert.match(s.last_error, /^reading the response header of 127\.0\.0\.1:\d+ timed out after 1000 ms$/, `last_error: ${s.last_error}`)
    // The server's answer to the abandoned request does not count: one delivery.
    await sleep(3500)
    assert.equal((await stats(srv)).delivered, 1)
  })
})

test("success: a 2xx is success whatever its body's announced size (200 MiB) and with 32 KiB of headers; a header over 256 KiB fails, saying so", { timeout: 30_000 }, async (t) => {
  const padding = (kib) => Object.fromEntries(Array.from({ length: kib }, (_, i) => [`x-padding-${i}`, "p".repeat(1000)]))
  const respond = (req) => {
    const ws = req.json?.data?.workspace_id
    // The body sent is "ok\n" whatever Content-Length says: the server must not read it.
    if (ws === "wh-big-body") return { status: 200, headers: { "Content-Length": String(200 << 20) } }
    if (ws === "wh-big-header") return { status: 200, headers: padding(32) }
    return { status: 200, headers: padding(300) }
  }
  await withHooks(t, { respond, args: ["--webhook-attempts", "1"] }, async ({ srv, rx, h }) => {
    for (const ws of ["wh-big-body", "wh-big-header", "wh-huge-header"]) {
      const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
      await put(c, "k", "v")
    }
    const deadline = Date.now() + 10_000
    let s
    while (((s = await stats(srv)), s.delivered + s.dead < 3)) {
      assert.ok(Date.now() < deadline, `all three settled within 10 s: ${JSON.stringify(s)}`)
      await sleep(20)
    }
    assert.equal(rx.requests.length, 3, "one request each: none retried")
    assert.equal(s.delivered, 2, "the big body and the 32 KiB header were successes")
    const dead = (await adminApi(srv, adminToken(srv)).dead()).json.dead
    assert.deepEqual(dead.map((d) => d.workspace_id), ["wh-huge-header"])
    assert.match(dead[0].last_error, /^reading the response header of 127\.0\.0\.1:\d+ failed: it is over the limit of 256 KiB$/)
  })
})

// --- order -----------------------------------------------------------------------------------

test("order: 50 ops over 2 workspaces (2 writers each, pipelined), a receiver that fails some first attempts: per workspace, events in commit order, each sent only after the previous one got its 2xx, one at a time", { timeout: 45_000 }, async (t) => {
  const failedOnce = new Set()
  let seen = 0
  const respond = (req) => {
    const id = req.headers["webhook-id"]
    const delayMs = Math.floor(Math.random() * 15)
    // Every 7th distinct event fails its first attempt.
    if (!failedOnce.has(id) && seen++ % 7 === 3) {
      failedOnce.add(id)
      return { status: 500, delayMs }
    }
    return { status: 200, delayMs }
  }
  await withHooks(t, { respond, args: ["--webhook-backoff", "1s"] }, async ({ srv, rx, secret, h }) => {
    const wss = ["wh-order-a", "wh-order-b"]
    const readers = {}
    const writers = []
    for (const ws of wss) {
      ;[readers[ws]] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "reader", scope: "read" }) })
      for (const w of [0, 1]) {
        const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: `writer-${w}` }) })
        writers.push({ c, ws, w })
      }
    }
    // 50 ops: 12 or 13 per writer, sent all at once, interleaved; shared keys.
    const perWriter = [13, 12, 13, 12]
    for (let i = 0; i < 13; i++)
      for (let j = 0; j < writers.length; j++)
        if (i < perWriter[j]) writers[j].c.sendOp(`k${i % 3}`, `${writers[j].ws}/w${writers[j].w}/${i}`)
    for (const ws of wss) await readers[ws].waitForOps(25, 10_000)

    for (const ws of wss) {
      const broadcast = readers[ws].ops().map((m) => m.payload.value)
      const hist = await historyHashes(srv, ws)
      assert.equal(hist.length, 25)
      await rx.waitFor(() => firstDeliveries(rx, ws).length >= 25, 30_000, `25 events of ${ws}`)
      const got = firstDeliveries(rx, ws)
      assert.deepEqual(got.map((r) => r.json.data.value), broadcast, `${ws}: events in the order clients saw the ops`)
      assert.deepEqual(got.map((r) => r.json.data.change), hist, `${ws}: events in the history's (commit) order`)
      for (const r of got) assert.deepEqual(r.json.data.heads, [r.json.data.change], "heads after a change on one server: that change")
      // Strict: a request for the event at index j only after every event < j got a 2xx;
      // one request at a time per workspace.
      const index = new Map(hist.map((x, i) => [eventId(ws, x), i]))
      const reqs = rx.requests.filter((r) => r.json?.data?.workspace_id === ws)
      const okAt = new Map(got.map((r) => [index.get(r.headers["webhook-id"]), r.respondedAt]))
      for (const r of reqs) {
        const j = index.get(r.headers["webhook-id"])
        assert.ok(j !== undefined, `request for an unknown event ${r.headers["webhook-id"]}`)
        for (let i = 0; i < j; i++)
          assert.ok(okAt.get(i) <= r.at, `${ws}: event ${j} was sent (at ${r.at}) before event ${i} got its 2xx (at ${okAt.get(i)})`)
      }
      for (let k = 1; k < reqs.length; k++)
        assert.ok(reqs[k].at >= reqs[k - 1].respondedAt, `${ws}: request #${reqs[k].n} started before #${reqs[k - 1].n} was answered`)
    }
    await sleep(300)
    assert.equal(rx.requests.length, 50 + failedOnce.size, "one request per event plus one per failed first attempt")
    for (const r of rx.requests) assertWellFormed(rx, secret, r)
    assertDuplicatesIdentical(rx)
    t.diagnostic(`${failedOnce.size} first attempts failed and were retried`)
    const s = await stats(srv)
    assert.equal(s.delivered, 50)
    assert.equal(s.retried, failedOnce.size)
    assert.equal(s.pending, 0)
  })
})

// --- durability ------------------------------------------------------------------------------

/**
 * 2 workspaces x 2 writers flood ops (each writer one op at a time) with a
 * reader per workspace; the receiver is up at first. With `receiverDown`, it
 * goes down after 40 deliveries and the server is killed 300 broadcasts later;
 * it comes up 1.5 s after the restart. Without, the server is killed after 300
 * broadcasts while the receiver is delivering. Then: every stored change's
 * event arrives (the history lists them), in commit order per workspace; every
 * op a client saw broadcast is among them; no event for an op never sent; a
 * repeated webhook-id always has the same body, and no event has two ids.
 */
async function killScenario(t, { receiverDown }) {
  await withHooks(t, { args: ["--webhook-backoff", "1s"], respond: () => ({ status: 200, delayMs: receiverDown ? 3 : 0 }) }, async ({ srv, rx, secret, h }) => {
    const wss = ["wh-kill-a", "wh-kill-b"]
    const PER = 250
    const readers = []
    const writers = []
    for (const ws of wss) {
      const [r] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "reader", scope: "read" }) })
      readers.push(r)
      for (const w of [0, 1]) {
        const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: `writer-${w}` }) })
        writers.push({ c, ws, w, sent: [] })
      }
    }
    const seen = () => readers.reduce((n, r) => n + r.ops().length, 0)
    // Each writer: one op at a time (the next when its echo is back), until PER or the kill.
    let killed = false
    const runs = writers.map(async (wr) => {
      for (let i = 0; i < PER && !killed; i++) {
        const value = `${wr.ws}/w${wr.w}/${i}`
        wr.sent.push(value)
        try {
          await put(wr.c, `k${i % 5}`, value, undefined, 5_000)
        } catch {
          return
        }
      }
    })
    let downAt = 0
    let killAt = 0
    if (receiverDown) {
      // The receiver goes down after some deliveries; the server dies a little later.
      await rx.waitFor(() => rx.delivered().length >= 40, 20_000, "40 deliveries before the outage")
      await rx.down()
      downAt = seen()
      await readers[0].waitUntil(() => seen() >= downAt + 300, 20_000, "300 more broadcasts with the receiver down")
    } else {
      await readers[0].waitUntil(() => seen() >= 300, 20_000, "300 broadcasts")
    }
    killAt = seen()
    const requestsAtKill = rx.requests.length
    killed = true
    await srv.kill9()
    await Promise.all(runs)
    const sentTotal = writers.reduce((n, w) => n + w.sent.length, 0)
    t.diagnostic(`${receiverDown ? `receiver down after ${downAt} broadcasts; ` : ""}kill -9 after ${killAt} broadcasts and ${requestsAtKill} requests; ${sentTotal} ops sent in all`)
    assert.ok(sentTotal < PER * writers.length, `the kill came mid-flood (${sentTotal} of ${PER * writers.length} ops sent)`)

    // Every op any client saw broadcast, by workspace.
    const broadcast = new Map(wss.map((ws) => [ws, new Set()]))
    for (const r of readers) for (const m of r.ops()) broadcast.get(m.payload.value.split("/")[0]).add(m.payload.value)
    for (const wr of writers) for (const m of wr.c.ops()) broadcast.get(wr.ws).add(m.payload.value)
    const sent = new Set(writers.flatMap((w) => w.sent))

    await srv.restart()
    if (receiverDown) {
      // Still down: the restarted server retries and fails.
      await sleep(1500)
      const before = await stats(srv)
      t.diagnostic(`after restart, receiver down: ${JSON.stringify(before)}`)
      assert.ok(before.pending > 0, "events are pending after the restart")
      assert.equal(before.delivered, 0)
      rx.respond = () => ({ status: 200 })
      await rx.up()
    }

    const hist = {}
    for (const ws of wss) hist[ws] = await historyHashes(srv, ws)
    for (const ws of wss) {
      await rx.waitFor(() => firstDeliveries(rx, ws).length >= hist[ws].length, 45_000, `all ${hist[ws].length} events of ${ws}`)
    }
    await rx.waitFor(() => rx.requests.every((r) => r.respondedAt !== null || r.aborted), 5_000, "no request left unanswered")
    await sleep(500)
    for (const ws of wss) {
      const got = firstDeliveries(rx, ws)
      assert.deepEqual(got.map((r) => r.json.data.change), hist[ws], `${ws}: one event per stored change, in commit order, none lost, none extra`)
      const values = new Set(got.map((r) => r.json.data.value))
      for (const v of broadcast.get(ws)) assert.ok(values.has(v), `${ws}: the event of broadcast op ${v} arrived`)
      for (const v of values) assert.ok(sent.has(v), `${ws}: event for ${v}, which was never sent`)
    }
    for (const r of rx.requests) assertWellFormed(rx, secret, r)
    const ids = assertDuplicatesIdentical(rx)
    const delivered = rx.delivered()
    const dups = delivered.length - new Set(delivered.map((r) => r.headers["webhook-id"])).size
    const total = hist[wss[0]].length + hist[wss[1]].length
    t.diagnostic(`${total} stored changes, ${ids} distinct webhook-ids, ${rx.requests.length} requests, ${delivered.length} answered 2xx (${dups} duplicate deliveries)`)
    assert.equal(ids, total, "exactly one webhook-id per stored change")
    const after = await stats(srv)
    assert.equal(after.pending, 0, `nothing pending at the end: ${JSON.stringify(after)}`)
    assert.equal(after.dead, 0)
  })
}

test("kill -9: receiver down mid-stream, server killed mid-flood and restarted, receiver up: every event of every broadcast op (and of every stored change) arrives, in order, duplicates only with the same webhook-id", { timeout: 90_000 }, async (t) => {
  await killScenario(t, { receiverDown: true })
})

test("kill -9 while the receiver is up and delivering: after the restart, every event arrives, in order, duplicates only with the same webhook-id", { timeout: 90_000 }, async (t) => {
  await killScenario(t, { receiverDown: false })
})

// --- dead letters ----------------------------------------------------------------------------

test("dead letters: --webhook-attempts 2, a receiver always 500 → dead, listed (paged) for an admin of '*' only, head-of-line held until dead; receiver fixed + replay → delivered with the same id and body", { timeout: 45_000 }, async (t) => {
  await withHooks(t, { respond: () => ({ status: 500 }), args: ["--webhook-attempts", "2", "--webhook-backoff", "1s"] }, async ({ srv, rx, secret, h }) => {
    const [a] = await h.connectWithInit("wh-dead-a", { token: srv.mintToken({ workspace: "wh-dead-a", sub: "alice" }) })
    const [b] = await h.connectWithInit("wh-dead-b", { token: srv.mintToken({ workspace: "wh-dead-b", sub: "bob" }) })
    await put(a, "x", "a1")
    await put(b, "y", "b1")
    await put(a, "x", "a2") // held behind a1 until a1 is dead
    const idOf = (v) => rx.requests.find((r) => r.json?.data?.value === v)?.headers["webhook-id"]
    const attemptsOf = (v) => rx.requests.filter((r) => r.json?.data?.value === v && r.respondedAt !== null)
    await rx.waitFor(() => ["a1", "b1", "a2"].every((v) => attemptsOf(v).length >= 2), 15_000, "2 attempts of each event")
    const admin = adminApi(srv, adminToken(srv))
    let list
    const deadline = Date.now() + 5000
    for (;;) {
      list = await admin.dead()
      assert.equal(list.status, 200, `GET dead: ${list.status} ${list.text}`)
      if (list.json.dead.length >= 3 || Date.now() > deadline) break
      await sleep(100)
    }
    await sleep(1500) // no third attempt may come
    for (const v of ["a1", "b1", "a2"]) assert.equal(attemptsOf(v).length, 2, `${v}: exactly --webhook-attempts attempts`)
    for (const r of rx.requests) assertWellFormed(rx, secret, r)
    // Head-of-line: a2 was not tried before a1 was dead (after a1's second answer).
    assert.ok(attemptsOf("a2")[0].at >= attemptsOf("a1")[1].respondedAt, "a2's first attempt only after a1's last")

    assert.equal(list.json.dead.length, 3, `three dead letters: ${list.text}`)
    assert.equal(list.json.next_cursor, null)
    const byId = new Map(list.json.dead.map((d) => [d.id, d]))
    for (const v of ["a1", "b1", "a2"]) {
      const id = idOf(v)
      const d = byId.get(id)
      assert.ok(d, `${v} (${id}) is listed`)
      const tries = attemptsOf(v)
      assert.deepEqual(Object.keys(d).sort(), ["attempts", "dead_at", "event", "first_attempt", "id", "last_error", "workspace_id"])
      assert.equal(d.workspace_id, tries[0].json.data.workspace_id)
      assert.equal(d.attempts, 2)
      assert.equal(d.last_error, "HTTP 500")
      assert.deepEqual(d.event, tries[0].json, "the event is the body that was sent")
      assert.match(d.first_attempt, ISO_MS)
      assert.match(d.dead_at, ISO_MS)
      assert.ok(Math.abs(Date.parse(d.first_attempt) - tries[0].at) <= 1000, `first_attempt ${d.first_attempt} ≈ the first request (${new Date(tries[0].at).toISOString()})`)
      assert.ok(Date.parse(d.dead_at) >= tries[1].respondedAt - 5 && Date.parse(d.dead_at) <= tries[1].respondedAt + 2000, `dead_at ${d.dead_at} right after the last attempt`)
    }
    // a1 before a2 (oldest first).
    const order = list.json.dead.map((d) => d.id)
    assert.ok(order.indexOf(idOf("a1")) < order.indexOf(idOf("a2")), "oldest first")
    // Pages of 1, following next_cursor, give the same list.
    const paged = []
    let cursor = null
    for (let i = 0; i < 5; i++) {
      const p = await admin.dead(`?limit=1${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`)
      assert.equal(p.status, 200, p.text)
      assert.ok(p.json.dead.length <= 1)
      paged.push(...p.json.dead)
      cursor = p.json.next_cursor
      if (cursor === null) break
      assert.equal(typeof cursor, "string")
    }
    assert.equal(cursor, null, "the walk ends")
    assert.deepEqual(paged, list.json.dead, "pages of 1 give the whole list, in order")
    for (const q of ["?limit=0", "?limit=1001", "?limit=abc", "?limit=", "?cursor=zzz", "?limit=-1", "?limit=1.5", "?limit=5abc", "?limit=%205"]) {
      const r = await admin.dead(q)
      assert.equal(r.status, 400, `GET dead${q}: expected 400, got ${r.status} ${r.text}`)
    }

    // Who may: admin scope over "*" only.
    const who = [
      ["no token", undefined, 401],
      ["read write over *", srv.mintToken({ sub: "u", workspaces: ["*"], scope: "read write" }), 403],
      ["admin over one workspace", srv.mintToken({ sub: "u", workspaces: ["wh-dead-a"], scope: "admin" }), 403],
      ["admin over both workspaces", srv.mintToken({ sub: "u", workspaces: ["wh-dead-a", "wh-dead-b"], scope: "read write admin" }), 403],
      ["bad signature", srv.forge("wrong-secret", { workspace: "*" }), 401],
    ]
    for (const [what, token, status] of who) {
      const api = adminApi(srv, token)
      for (const [name, r] of [
        ["stats", await api.stats()],
        ["dead", await api.dead()],
        ["replay", await api.replay(idOf("a1"))],
      ])
        assert.equal(r.status, status, `${what}: ${name}: expected ${status}, got ${r.status} ${r.text}`)
    }
    assert.equal((await admin.call("GET", `/v1/admin/webhooks/dead/${idOf("a1")}/replay`)).status, 405, "GET on replay")
    assert.equal((await admin.call("POST", "/v1/admin/webhooks/dead")).status, 405, "POST on dead")
    assert.equal((await admin.call("GET", "/v1/admin/webhooks/nope")).status, 404)
    assert.equal((await admin.replay(`evt_${"0".repeat(64)}`)).status, 404, "replay of an unknown id")

    let s = await stats(srv)
    assert.deepEqual(s, { delivered: 0, retried: 3, dead: 3, pending: 0, in_flight: 0, last_error: "HTTP 500" })
    const log = serverLog(srv)
    for (const v of ["a1", "b1", "a2"])
      assert.match(log, new RegExp(`ERROR webhooks: ${idOf(v)} \\(workspace wh-dead-[ab]\\) is dead after 2 attempts \\(last: HTTP 500\\); see GET /v1/admin/webhooks/dead`))

    // The receiver is fixed; replay a1, then the others.
    rx.respond = () => ({ status: 200 })
    const n0 = rx.requests.length
    const replayStatuses = []
    const replay = async (v) => {
      const r = await admin.replay(idOf(v))
      replayStatuses.push([v, r.status, r.text])
      assert.ok(r.status === 202 || r.status === 200, `replay ${v}: ${r.status} ${r.text}`)
      assert.deepEqual(r.json, { replayed: idOf(v) })
    }
    await replay("a1")
    await rx.waitFor(() => rx.delivered().some((r) => r.json.data.value === "a1"), 5_000, "a1 delivered after the replay")
    const again = rx.requests.slice(n0).find((r) => r.json.data.value === "a1")
    assertWellFormed(rx, secret, again)
    assert.equal(again.headers["webhook-id"], idOf("a1"), "the same webhook-id")
    assert.equal(again.body, attemptsOf("a1")[0].body, "the same body bytes")
    list = await admin.dead()
    assert.deepEqual(list.json.dead.map((d) => d.id).sort(), [idOf("b1"), idOf("a2")].sort(), "a1 is no longer dead")
    assert.equal((await admin.replay(idOf("a1"))).status, 404, "a replayed (delivered) event is no dead letter any more")
    await replay("a2")
    await replay("b1")
    await rx.waitFor(() => rx.delivered().length >= 3, 5_000, "all three delivered")
    await sleep(300)
    assert.equal(rx.requests.length, n0 + 3, "one request per replay")
    assert.deepEqual((await admin.dead()).json, { dead: [], next_cursor: null })
    s = await stats(srv)
    assert.deepEqual({ ...s, last_error: undefined }, { delivered: 3, retried: 3, dead: 3, pending: 0, in_flight: 0, last_error: undefined })
    // doc/webhooks.md: "202 {"replayed":"evt_…"}".
    for (const [v, status, text] of replayStatuses)
      assert.equal(status, 202, `POST /v1/admin/webhooks/dead/{id}/replay of ${v}: doc/webhooks.md says 202, got ${status} ${text}`)
  })
})

test("dead letters survive a restart; replay after the restart delivers", { timeout: 30_000 }, async (t) => {
  await withHooks(t, { respond: () => ({ status: 500 }), args: ["--webhook-attempts", "1"] }, async ({ srv, rx, secret, h }) => {
    const ws = "wh-dead-restart"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    await put(c, "k", "v")
    const admin = () => adminApi(srv, adminToken(srv))
    await rx.waitFor(() => rx.requests.length >= 1 && rx.requests[0].respondedAt !== null, 10_000, "the attempt")
    let list
    for (let i = 0; i < 50; i++) {
      list = await admin().dead()
      if (list.json?.dead?.length === 1) break
      await sleep(100)
    }
    assert.equal(list.json.dead.length, 1, list.text)
    const id = rx.requests[0].headers["webhook-id"]
    assert.equal(list.json.dead[0].id, id)
    c.terminate()
    assert.equal((await srv.stop()).code, 0, "SIGTERM exits 0")
    await srv.launch()
    assert.match(srv.logTail(5), /webhooks: delivering to http:\/\/127\.0\.0\.1:\d+; 0 pending events, 1 dead letters/)
    list = await admin().dead()
    assert.deepEqual(list.json.dead.map((d) => d.id), [id], "the dead letter is still there")
    await sleep(500)
    assert.equal(rx.requests.length, 1, "a dead letter is not retried by a restart")
    rx.respond = () => ({ status: 200 })
    const r = await admin().replay(id)
    assert.ok(r.status === 200 || r.status === 202, `${r.status} ${r.text}`)
    await rx.waitFor(() => rx.delivered().length === 1, 5_000, "the replayed event")
    assertWellFormed(rx, secret, rx.requests[1])
    assert.equal(rx.requests[1].body, rx.requests[0].body)

    // Started without --webhook-url, the node says what waits in its store.
    rx.respond = () => ({ status: 500 })
    await put(await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) }).then(([c2]) => c2), "k", "dead again")
    for (let i = 0; i < 50 && (await admin().dead()).json?.dead?.length !== 1; i++) await sleep(100)
    assert.equal((await admin().dead()).json.dead.length, 1)
    srv.args = []
    await srv.restart()
    assert.match(srv.logTail(5), /WARN webhooks: the store holds dead letters from a run with --webhook-url; without it they wait, unsent, until a start with it/)
  })
})

// --- undo / restore --------------------------------------------------------------------------

test("undo and restore over HTTP fire events too: undo → one event (author = the undoer); restore of 2 keys → one event per key, ids evt_<id> and evt_<id>.1", { timeout: 30_000 }, async (t) => {
  await withHooks(t, {}, async ({ srv, rx, secret, h }) => {
    const ws = "wh-undo"
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    const [reader] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "reader", scope: "read" }) })
    await put(w, "a", 1) // #0
    const old = await h.initOf(ws)
    await put(w, "a", 2) // #1
    await put(w, "b", "x") // #2
    await put(w, "c", { n: 3 }) // #3
    await reader.waitForOps(4)
    await rx.waitFor(() => rx.delivered().length >= 4, 10_000, "4 events")
    const hist = await historyHashes(srv, ws)
    const api = async (p, body) => {
      const r = await httpRequest(`${srv.url}/v1/history/${ws}/${p}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${srv.mintToken({ workspace: ws, sub: "dave" })}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      })
      assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`)
      return JSON.parse(r.text)
    }

    // Undo #1: a is 1 again.
    let t0 = nowMicros()
    const u = await api("undo", { change: hist[1] })
    let t1 = nowMicros()
    assert.match(u.change, HEX64)
    await reader.waitForOps(5)
    const undoOp = reader.ops()[4]
    await rx.waitFor(() => rx.delivered().length >= 5, 10_000, "the undo's event")
    let ev = assertWellFormed(rx, secret, rx.requests[4])
    assert.equal(rx.requests[4].headers["webhook-id"], eventId(ws, u.change))
    assert.equal(ev.data.change, u.change)
    assert.deepEqual(ev.data.heads, u.heads)
    assert.equal(ev.data.key, "a")
    assert.equal(ev.data.value, 1)
    assert.equal(ev.data.author, "dave", "the author is the undoer's sub")
    assert.ok(!("deleted" in ev.data), "a put has no deleted field")
    assert.equal(ev.data.op_timestamp, undoOp.payload.timestamp, "op_timestamp as broadcast")
    assert.ok(ev.data.op_timestamp >= t0 - 1_000_000 && ev.data.op_timestamp <= t1 + 1_000_000, "the server's time, µs")

    // Restore to the heads after #0: b and c are removed (one change, two keys).
    t0 = nowMicros()
    const r = await api("restore", { heads: old.heads })
    t1 = nowMicros()
    assert.match(r.change, HEX64)
    await reader.waitForOps(7)
    const restoreOps = reader.ops().slice(5)
    await rx.waitFor(() => rx.delivered().length >= 7, 10_000, "the restore's 2 events")
    await sleep(300)
    assert.equal(rx.requests.length, 7, "one event per key, no more")
    const evs = rx.requests.slice(5).map((q) => assertWellFormed(rx, secret, q))
    assert.deepEqual(rx.requests.slice(5).map((q) => q.headers["webhook-id"]).sort(), [eventId(ws, r.change), eventId(ws, r.change, 1)].sort())
    assert.deepEqual(evs.map((e) => e.data.key).sort(), ["b", "c"])
    for (const e of evs) {
      assert.equal(e.data.change, r.change)
      assert.deepEqual(e.data.heads, r.heads)
      assert.equal(e.data.author, "dave")
      const op = restoreOps.find((m) => m.payload.key === e.data.key)
      assert.deepEqual(e.data.value, op.payload.value, `${e.data.key}: value as broadcast (a delete: ${JSON.stringify(op.payload)})`)
      assert.equal(op.payload.deleted, true)
      assert.equal(e.data.deleted, true, `${e.data.key}: a removal is told from a put of null, as in the broadcast`)
      assert.equal(e.data.op_timestamp, op.payload.timestamp)
    }
    assert.notEqual(evs[0].data.key, evs[1].data.key)
    // The parts keep the order of the broadcast.
    const part0 = rx.requests.slice(5).find((q) => q.headers["webhook-id"] === eventId(ws, r.change))
    assert.equal(part0.json.data.key, restoreOps[0].payload.key, "part 0 is the first key broadcast")
    assert.ok(rx.requests[5].headers["webhook-id"] === eventId(ws, r.change), "part 0 is delivered before part 1")
  })
})

// --- a slow receiver -------------------------------------------------------------------------

/** Writers on 4 workspaces of `srv` (one client each), warmed up with 20 ops. */
async function opRunner(srv, h, tag) {
  const clients = []
  for (let i = 0; i < 4; i++) {
    const ws = `wh-slow-${i}`
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    clients.push(c)
  }
  let next = 0
  /** `n` sequential op round trips, over the 4 clients in turn; resolves the time in ms. */
  const run = async (n) => {
    const t0 = performance.now()
    for (let k = 0; k < n; k++, next++) await put(clients[next % 4], `k${next % 10}`, `${tag}-${next}`)
    return performance.now() - t0
  }
  await run(20)
  return run
}

test("a slow receiver (1 s per request) does not slow ops: 200 sequential op round trips vs no webhook", { timeout: 60_000 }, async (t) => {
  const N = 200
  const BLOCKS = 5
  let base = 0
  let slow = 0
  // Both servers run side by side and are timed in alternating blocks of
  // N / BLOCKS round trips, so that a change in the machine's load hits both.
  await withHooks(t, { webhook: false }, async (b) => {
    // Without a webhook, the admin endpoints answer 404.
    const admin = adminApi(b.srv, adminToken(b.srv))
    for (const r of [await admin.stats(), await admin.dead(), await admin.replay(`evt_${"0".repeat(64)}`)])
      assert.equal(r.status, 404, `no webhook configured: ${r.status} ${r.text}`)
    await withHooks(t, { respond: () => ({ status: 200, delayMs: 1000 }) }, async ({ srv, rx, h }) => {
      const runBase = await opRunner(b.srv, b.h, "none")
      const runSlow = await opRunner(srv, h, "slow")
      for (let k = 0; k < BLOCKS; k++) {
        base += await runBase(N / BLOCKS)
        slow += await runSlow(N / BLOCKS)
      }
      const s = await stats(srv)
      t.diagnostic(`slow receiver, after the run: ${JSON.stringify(s)}; the receiver got ${rx.requests.length} requests`)
      assert.ok(rx.requests.length >= 1, "the receiver was being called during the run")
      assert.ok(s.in_flight >= 1 && s.in_flight <= 4, `requests were in flight (at most 4): ${s.in_flight}`)
      assert.ok(s.pending >= N / 2, `the events were backed up behind the slow receiver: ${s.pending} pending`)
      // Stopping with requests in flight to a slow receiver is prompt.
      const t0 = performance.now()
      const exit = await srv.stop()
      const stopMs = performance.now() - t0
      t.diagnostic(`SIGTERM with ${s.in_flight} requests in flight: exit ${exit.code} in ${stopMs.toFixed(0)} ms`)
      assert.equal(exit.code, 0)
      assert.ok(stopMs < 3000, `stopped in ${stopMs.toFixed(0)} ms`)
      await srv.launch() // for the harness's final health check
    })
  })
  const ratio = slow / base
  const line = `${N} sequential op round trips: no webhook ${base.toFixed(0)} ms (${((N / base) * 1000).toFixed(0)} ops/s), receiver at 1 s/request ${slow.toFixed(0)} ms (${((N / slow) * 1000).toFixed(0)} ops/s); ratio ${ratio.toFixed(2)}`
  t.diagnostic(line)
  console.log(`# webhooks: ${line}`)
  // 3x, with a floor of +500 ms against timer noise on a short run (a
  // receiver on the op path would cost ~1 s per op: 200 s).
  assert.ok(slow <= Math.max(3 * base, base + 500), `a slow receiver must not slow ops: ${line}`)
})
