// End-to-end tests of EtherPly: the real `etherply serve` process, real
// WebSocket clients (the `ws` package, independent of the server's Beast),
// and the reference Automerge (@automerge/automerge 3.5.0) for /doc.
//
// Run: ETHERPLY_BIN=build/etherply node --test tests/e2e/
// See README.md for what each test proves.
import assert from "node:assert/strict"
import { execFile, spawn, spawnSync } from "node:child_process"
import { once } from "node:events"
import fs from "node:fs"
import crypto from "node:crypto"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import { test } from "node:test"
import * as A from "@automerge/automerge"

import { connect, connectWithInit, tryConnect } from "./lib/client.mjs"
import { withServer } from "./lib/harness.mjs"
import { BIN, diskFaultLibrary, httpRequest, signJwt, startServer } from "./lib/server.mjs"

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const HEX64 = /^[0-9a-f]{64}$/

// --- harness -----------------------------------------------------------------------


/** A BigInt the reference returns for a large int, as a JSON number when exact. */
const unBig = (v) => {
  if (typeof v !== "bigint") return v
  if (!Number.isSafeInteger(Number(v))) throw new Error(`integer ${v} is not exact in JSON`)
  return Number(v)
}
/** The reference's view of a loaded document as plain JSON. */
const docJson = (doc) => JSON.parse(JSON.stringify(A.toJS(doc), (_, v) => unBig(v)))
const sorted = (a) => [...a].sort()

/** Asserts that the /doc export equals `init` in JSON and heads. */
async function assertDocMatchesInit(h, workspace, init) {
  const doc = await h.loadDoc(workspace)
  assert.deepEqual(docJson(doc), init.data, "/doc JSON (A.toJS) equals init data")
  assert.deepEqual(sorted(A.getHeads(doc)), sorted(init.heads), "/doc heads (A.getHeads) equal init heads")
  return doc
}

/** The typed tree of a document: scalars as [datatype, value]. */
function typedTree(doc) {
  const be = A.getBackend(doc)
  const at = (obj, prop) => {
    const [type, v] = be.getWithType(obj, prop)
    if (type === "map" || type === "list") return walk(v, type)
    if (type === "text") return { text: be.text(v) }
    return [type, unBig(v)]
  }
  const walk = (obj, type) => {
    if (type === "map") {
      const out = {}
      for (const k of be.keys(obj)) out[k] = at(obj, k)
      return { map: out }
    }
    const out = []
    for (let i = 0; i < be.length(obj); i++) out.push(at(obj, i))
    return { list: out }
  }
  return walk("_root", "map")
}

/** A raw HTTP exchange over TCP: sends `request`, resolves what came back and
 *  whether (and when) the server closed the connection. */
function rawHttp(port, request, { waitMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1")
    let data = ""
    let endedAt = null
    const t0 = Date.now()
    s.on("data", (d) => (data += d.toString()))
    s.on("end", () => (endedAt ??= Date.now() - t0))
    s.on("close", () => {
      endedAt ??= Date.now() - t0
      clearTimeout(timer)
      resolve({ data, closedByServer: true, closedAfterMs: endedAt })
    })
    s.on("error", reject)
    s.write(request)
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ data, closedByServer: endedAt !== null, closedAfterMs: endedAt })
    }, waitMs)
  })
}

/** A raw TCP connection to the server that sends `request` (if any) and
 *  collects what comes back in `received`; `ended` once the server closed. */
function openSocket(port, request) {
  const s = net.connect(port, "127.0.0.1")
  s.received = Buffer.alloc(0)
  s.ended = false
  s.on("data", (d) => (s.received = Buffer.concat([s.received, d])))
  s.on("end", () => (s.ended = true))
  s.on("error", () => {})
  if (request) s.write(request)
  return s
}

/** Waits until `cond()` (or the promise it returns) holds, polling; fails
 *  naming `what` after 10 s. */
async function until(what, cond) {
  const start = Date.now()
  while (!(await cond())) {
    assert.ok(Date.now() - start < 10_000, `${what}: not within 10 s`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The CPU time the server has used, in clock ticks (1/100 s). */
function cpuTicks(srv) {
  const stat = fs.readFileSync(`/proc/${srv.pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return Number(fields[11]) + Number(fields[12]) // utime + stime
}

/** Whether GET /healthz answers 200 (false while refused or unreachable). */
const healthy = async (url) => (await httpRequest(`${url}/healthz`).catch(() => null))?.status === 200

const upgradeRequest = (path, extra = "") =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`

function assertUnauthorized(r, what) {
  assert.equal(r.ok, false, `${what}: the WebSocket must not open`)
  assert.equal(r.status, 401, `${what}: HTTP status (body ${r.body})`)
  const wa = r.headers["www-authenticate"]
  assert.ok(wa && /^Bearer\b/.test(wa), `${what}: WWW-Authenticate: Bearer (got ${wa})`)
  const body = JSON.parse(r.body)
  assert.equal(body.error?.code, 401, `${what}: JSON error body`)
}

function assertError(msg, code, what) {
  assert.equal(msg.type, "error", `${what}: expected an error message, got ${JSON.stringify(msg)}`)
  assert.equal(msg.code, code, `${what}: error code (${JSON.stringify(msg)})`)
  assert.equal(typeof msg.message, "string", `${what}: error message text`)
  assert.ok(msg.message.length > 0, `${what}: error message not empty`)
}

function assertOp(msg, key, value, what = "broadcast") {
  assert.equal(msg.type, "op", `${what}: expected an op, got ${JSON.stringify(msg)}`)
  assert.equal(msg.payload.key, key, `${what}: key`)
  assert.deepEqual(msg.payload.value, value, `${what}: value`)
  assert.ok(Number.isInteger(msg.payload.timestamp), `${what}: integer timestamp`)
}

const opKey = (m) => JSON.stringify([m.payload.key, m.payload.value, m.payload.timestamp])

// --- Gherkin scenarios of the spec ---------------------------------------------------

test("Scenario: Client Connects Successfully", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const token = srv.mintToken({ workspace: "workspace-123", scope: "read write" })
    // Given a valid JWT / a target workspace; When the client connects
    const r = await h.tryConnect("workspace-123", { token })
    assert.equal(r.ok, true, `handshake refused: ${r.status} ${r.body}`)
    // Then HTTP 101 Switching Protocols
    assert.equal(r.status, 101)
    const c = r.client
    // And the client receives an "init" message with the current state
    const init = await c.next()
    assert.equal(init.type, "init")
    assert.deepEqual(init.data, {}, "a new workspace is empty")
    assert.deepEqual(init.heads, [], "a new workspace has no heads")
    // And the client is Connected: the socket is open and ops flow both ways
    assert.equal(c.open, true)
    c.sendOp("hello", "world")
    assertOp(await c.next(), "hello", "world", "own op echoed")

    // The init of a later client reflects the current state.
    const [c2, init2] = await h.connectWithInit("workspace-123", { token })
    assert.deepEqual(init2.data, { hello: "world" })
    assert.equal(init2.heads.length, 1)
    assert.match(init2.heads[0], HEX64)
    assert.equal(c2.open, true)
  })
})

test("Scenario: Client Connects Successfully — token in ?token= query parameter", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const token = srv.mintToken({ workspace: "workspace-123" })
    const r = await h.tryConnect("workspace-123", { token, via: "query" })
    assert.equal(r.ok, true, `handshake refused: ${r.status} ${r.body}`)
    assert.equal(r.status, 101)
    const init = await r.client.next()
    assert.equal(init.type, "init")
    r.client.sendOp("q", 1)
    assertOp(await r.client.next(), "q", 1)
  })
})

test("Scenario: Client Fails Authentication", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    // Given a missing JWT
    assertUnauthorized(await h.tryConnect("workspace-123", {}), "missing token")
    // Given an invalid JWT (signed with another secret)
    const bad = srv.forge("wrong-secret", { workspace: "workspace-123" })
    assertUnauthorized(await h.tryConnect("workspace-123", { token: bad }), "bad signature")
    // Nothing was created by the rejected attempts; a valid client still works.
    const [, init] = await h.connectWithInit("workspace-123", { token: srv.mintToken({ workspace: "workspace-123" }) })
    assert.deepEqual(init.data, {})
  })
})

test("Scenario: Client Fails Authentication — the server closes the connection after the 401", { timeout: 30_000 }, async (t) => {
  // "the connection is closed immediately": after refusing the upgrade the
  // server must not keep the TCP connection open (here: within 2 s; the
  // server's handshake timeout is 30 s).
  await withServer(t, {}, async (srv) => {
    const r = await rawHttp(srv.port, upgradeRequest("/v1/sync/workspace-123"), { waitMs: 2000 })
    assert.match(r.data, /^HTTP\/1\.1 401 /, "401 status line")
    assert.match(r.data, /\r\nWWW-Authenticate: Bearer/i)
    assert.doesNotMatch(r.data, /^HTTP\/1\.1 101/)
    assert.equal(r.closedByServer, true, "server closed the connection after the 401 (it stayed open for 2 s)")
  })
})

test("Scenario: Client Sends Operation", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "workspace-123"
    // Given a connected session with "write" scope (and two other clients)
    const [writer] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "write", sub: "w" }) })
    const [reader] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read", sub: "r" }) })
    const [other] = await h.connectWithInit("workspace-456", {
      token: srv.mintToken({ workspace: "workspace-456", scope: "read write", sub: "o" }),
    })
    // When the client sends an "op" with key "foo" and value "bar"
    const before = Date.now() * 1000
    writer.sendOp("foo", "bar")
    // Then every client of workspace-123 receives the broadcast, the sender too
    const mw = await writer.next()
    const mr = await reader.next()
    const after = Date.now() * 1000
    assertOp(mw, "foo", "bar", "sender's copy")
    assertOp(mr, "foo", "bar", "reader's copy")
    assert.deepEqual(mr, mw, "everyone gets the same message")
    assert.deepEqual(Object.keys(mr).sort(), ["payload", "type"])
    assert.deepEqual(Object.keys(mr.payload).sort(), ["key", "timestamp", "value"])
    assert.ok(mr.payload.timestamp >= before - 5_000 && mr.payload.timestamp <= after + 5_000,
      `server time in microseconds: ${mr.payload.timestamp} not in [${before}, ${after}]`)
    // ... and no client of another workspace does: its first op is its own.
    other.sendOp("marker", 1)
    assertOp(await other.next(), "marker", 1, "other workspace sees only its own ops")
    // And the server persists it with Automerge: in a new client's init, in
    // the /doc export, and across a restart.
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, { foo: "bar" })
    assert.equal(init.heads.length, 1)
    const doc = await assertDocMatchesInit(h, ws, init)
    assert.deepEqual(typedTree(doc), { map: { foo: ["str", "bar"] } }, "stored as a plain string")
    await srv.restart()
    const init2 = await h.initOf(ws)
    assert.deepEqual(init2, init, "same init after a restart")
    // (The webhook step: `etherply serve` has no webhook option, so there is
    // nothing configured to receive "doc.updated"; see README.)
  })
})

test("Scenario: Read-Only Client Attempts Write", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "workspace-123"
    const [writer] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read write" }) })
    writer.sendOp("seed", 1)
    assertOp(await writer.next(), "seed", 1)
    const initBefore = await h.initOf(ws)
    // Given a connected session with "read" scope only
    const [ro] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read", sub: "ro" }) })
    // When the client sends an "op"
    ro.sendOp("foo", "bar")
    // Then the server responds with an "error" message (403)
    assertError(await ro.next(), 403, "read-only op")
    // ... and the socket stays open: the client still receives ops
    writer.sendOp("marker", 2)
    assertOp(await ro.next(), "marker", 2, "read-only client still receives broadcasts")
    assert.equal(ro.open, true)
    // Nothing was broadcast: the writer's next op after "seed" is the marker.
    assertOp(await writer.next(), "marker", 2, "the rejected op was not broadcast")
    // And the operation is not persisted
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, { seed: 1, marker: 2 })
    assert.equal(init.data.foo, undefined)
    assert.equal(init.heads.length, 1)
    assert.notDeepEqual(init.heads, initBefore.heads, "the marker made a change")
    // (That the rejected op made no Automerge change is checked through the
    // /doc export in "/doc export after several ops ...".)
  })
})

// --- authentication: the bad-token family -------------------------------------------

test("bad-token family: each is refused with 401 + WWW-Authenticate: Bearer, header and ?token=", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-auth"
    // Control: a token forged here with the right secret is accepted, so the
    // refusals below are due to the one defect each token carries.
    for (const via of ["header", "query"]) {
      const ok = await h.tryConnect(ws, { token: srv.forge("valid", { workspace: ws }), via })
      assert.equal(ok.ok, true, `control token (${via}) accepted: ${ok.status} ${ok.body}`)
      assert.equal((await ok.client.next()).type, "init")
    }
    const kinds = ["wrong-secret", "tampered", "alg-none", "hs384", "expired", "not-yet-valid", "garbage"]
    for (const kind of kinds) {
      const token = srv.forge(kind, { workspace: ws })
      for (const via of ["header", "query"]) {
        assertUnauthorized(await h.tryConnect(ws, { token, via }), `${kind} via ${via}`)
      }
    }
    assertUnauthorized(await h.tryConnect(ws, {}), "no token at all")
    assertUnauthorized(await h.tryConnect(ws, { token: "", via: "query" }), "empty ?token=")
    assertUnauthorized(await h.tryConnect(ws, { headers: { Authorization: "Bearer " } }), "empty bearer")
    assertUnauthorized(await h.tryConnect(ws, { headers: { Authorization: "Bearer    " } }), "spaces only")
    const good = srv.mintToken({ workspace: ws })
    // RFC 6750 §2.1: "Bearer" 1*SP b64token, the scheme in any case.
    // RFC 7519 §2: a NumericDate may have a fraction.
    const now = Date.now() / 1000
    const fractional = signJwt({ payload: { sub: "f", exp: now + 3600.5, iat: now, scope: "read", workspaces: [ws] }, secret: srv.secret })
    for (const auth of [`bearer ${good}`, `Bearer   ${good}`, `Bearer ${fractional}`]) {
      const r = await h.tryConnect(ws, { headers: { Authorization: auth } })
      assert.equal(r.ok, true, `${JSON.stringify(auth.slice(0, 10))}: ${r.status} ${r.body}`)
      r.client.terminate()
    }
    assertUnauthorized(
      await h.tryConnect(ws, { headers: { Authorization: `Basic ${Buffer.from("a:b").toString("base64")}` } }),
      "Authorization: Basic",
    )
    assertUnauthorized(await h.tryConnect(ws, { token: good + "x" }), "valid token with a byte appended")
    // The CLI's own expired token (--ttl 1s, then past the 60 s leeway) is not
    // testable quickly; the forged "expired" above covers the check.
    // The refused attempts stored nothing.
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, {})
  })
})

test("valid tokens that do not cover the workspace, or grant no scope, get 401 (spec §2: the only refusal of a handshake), no upgrade", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-auth"
    for (const via of ["header", "query"]) {
      assertUnauthorized(await h.tryConnect(ws, { token: srv.forge("wrong-workspace", { workspace: ws }), via }), `forged wrong workspace via ${via}`)
      assertUnauthorized(await h.tryConnect(ws, { token: srv.mintToken({ workspace: "other" }), via }), `CLI token for another workspace via ${via}`)
      assertUnauthorized(await h.tryConnect(ws, { token: srv.forge("no-read-scope", { workspace: ws }), via }), `no read scope via ${via}`)
    }
    // A token for several workspaces, or for '*', covers them.
    const multi = srv.mintToken({ workspaces: ["a", ws] })
    assert.equal((await h.tryConnect(ws, { token: multi })).ok, true, "token listing the workspace")
    assert.equal((await h.tryConnect("anything-else", { token: srv.mintToken({ workspace: "*" }) })).ok, true, "'*' token")
    assertUnauthorized(await h.tryConnect("b", { token: multi }), "workspace not in the list")
  })
})

test("aud (RFC 7519 §4.1.3): a server without --jwt-audience refuses tokens that name an audience; with it, it takes only tokens that name its own", { timeout: 30_000 }, async (t) => {
  const ws = "aud"
  await withServer(t, {}, async (srv) => {
    const named = await tryConnect(srv.wsUrl, ws, { token: srv.mintToken({ workspace: ws, audience: "etherply" }) })
    assertUnauthorized(named, "a token naming an audience, no --jwt-audience")
    assert.match(named.body, /the token names an audience \(aud\) and this server has none \(--jwt-audience\)/)
    const plain = await tryConnect(srv.wsUrl, ws, { token: srv.mintToken({ workspace: ws }) })
    assert.equal(plain.ok, true)
    plain.client.terminate()
  })
  await withServer(t, { args: ["--jwt-audience", "etherply"] }, async (srv) => {
    const ours = await tryConnect(srv.wsUrl, ws, { token: srv.mintToken({ workspace: ws, audience: "etherply" }) })
    assert.equal(ours.ok, true, `${ours.status} ${ours.body}`)
    assert.equal((await ours.client.next()).type, "init")
    ours.client.terminate()
    const among = srv.forge("valid", { workspace: ws })
    const [h, p] = among.split(".")
    const payload = { ...JSON.parse(Buffer.from(p, "base64url")), aud: ["billing", "etherply"] }
    const both = await tryConnect(srv.wsUrl, ws, { token: signJwt({ payload, secret: srv.secret }) })
    assert.equal(both.ok, true, `aud as an array holding ours: ${both.status} ${both.body}`)
    both.client.terminate()
    const theirs = await tryConnect(srv.wsUrl, ws, { token: srv.mintToken({ workspace: ws, audience: "billing" }) })
    assertUnauthorized(theirs, "another audience")
    assert.match(theirs.body, /the token's audience \(aud\) is not this server's/)
    const none = await tryConnect(srv.wsUrl, ws, { token: srv.mintToken({ workspace: ws }) })
    assertUnauthorized(none, "no audience")
    assert.match(none.body, /the token names no audience \(aud\); this server requires one/)
  })
})

test("a token's sub is logged quoted, its control characters escaped: it cannot forge a log line or a field", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-log"
    const sub = "eve\n2026-01-01T00:00:00.000Z ERROR forged\r\u001b[31m"
    const [c] = await h.connectWithInit(ws, { token: srv.forge("valid", { workspace: ws, sub }) })
    await c.close()
    // Nor a field: the sub is quoted, its quotes escaped.
    const [d] = await h.connectWithInit(ws, { token: srv.forge("valid", { workspace: ws, sub: 'mallory" scope="admin' }) })
    await d.close()
    await new Promise((r) => setTimeout(r, 200)) // the disconnect's line
    const log = srv.log()
    assert.doesNotMatch(log, /^2026-01-01T00:00:00.000Z ERROR forged/m, "no forged line")
    assert.match(log, /INFO connected .* sub="mallory\\" scope=\\"admin" scope="read write"/)
    assert.match(log, /INFO connected .* sub="eve\\x0a2026-01-01T00:00:00\.000Z ERROR forged\\x0d\\x1b\[31m" scope=/)
  })
})

test("a session ends when its token does: closed with 1008 \"the token expired\", the token then refused with 401; other sessions go on", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-expiry"
    const token = srv.forge("expiring", { workspace: ws })
    const [c] = await h.connectWithInit(ws, { token })
    const [other] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    c.sendOp("before", 1) // the token still works
    assertOp(await c.next(), "before", 1)
    assertOp(await other.next(), "before", 1)
    const started = Date.now()
    const { code, reason } = await c.waitClose(20_000)
    assert.equal(code, 1008)
    assert.equal(reason, "the token expired")
    assert.ok(Date.now() - started < 12_000, "closed when the token ended, not at some later sweep")
    assertUnauthorized(await h.tryConnect(ws, { token }), "the expired token")
    other.sendOp("after", 2)
    assertOp(await other.next(), "after", 2, "another session is untouched")
    assert.match(srv.log(), /closing .* sub="forger": the token expired/)
  })
})

/** A client's text frame (masked, as RFC 6455 requires). */
function maskedTextFrame(text) {
  const payload = Buffer.from(text)
  assert.ok(payload.length < 126)
  const mask = Buffer.from([1, 2, 3, 4])
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked])
}

/** The server's text frames in `bytes` (unmasked, each under 64 KiB). */
function serverTextFrames(bytes) {
  const out = []
  for (let at = 0; at + 2 <= bytes.length;) {
    let len = bytes[at + 1] & 0x7f
    let head = 2
    if (len === 126) {
      len = bytes.readUInt16BE(at + 2)
      head = 4
    }
    if (at + head + len > bytes.length) break
    out.push(bytes.subarray(at + head, at + head + len).toString())
    at += head + len
  }
  return out
}

test("frames sent in the same write as the upgrade request are read, in order, after the handshake", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-pipelined"
    const token = srv.mintToken({ workspace: ws })
    const request = Buffer.concat([
      Buffer.from(upgradeRequest(`/v1/sync/${ws}`, `Authorization: Bearer ${token}\r\n`)),
      maskedTextFrame(JSON.stringify({ type: "op", payload: { key: "early", value: 1 } })),
      maskedTextFrame("not json"),
    ])
    const got = await new Promise((resolve, reject) => {
      const s = net.connect(srv.port, "127.0.0.1")
      let data = Buffer.alloc(0)
      s.on("data", (d) => {
        data = Buffer.concat([data, d])
        const end = data.indexOf("\r\n\r\n")
        if (end >= 0 && serverTextFrames(data.subarray(end + 4)).length >= 3) {
          s.destroy()
          resolve({ head: data.subarray(0, end).toString(), frames: serverTextFrames(data.subarray(end + 4)) })
        }
      })
      s.on("error", reject)
      s.write(request) // one write: the request and two frames
      setTimeout(() => reject(new Error(`3 frames did not come: ${data.toString()}`)), 10_000)
    })
    assert.match(got.head, /^HTTP\/1\.1 101 /)
    const [init, op, error] = got.frames.map((f) => JSON.parse(f))
    assert.equal(init.type, "init")
    assertOp(op, "early", 1, "the op sent with the request")
    assertError(error, 400, "the bad frame sent with the request")
    assert.deepEqual((await h.initOf(ws)).data, { early: 1 })
  })
})

// --- the protocol on the socket ------------------------------------------------------

test("malformed messages get error 400, the socket stays open, nothing is stored or broadcast", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-malformed"
    const token = srv.mintToken({ workspace: ws })
    const [c] = await h.connectWithInit(ws, { token })
    const [observer] = await h.connectWithInit(ws, { token })
    const nested = (n) => "[".repeat(n) + "]".repeat(n)
    const deep = nested(100)
    const cases = [
      ["not JSON (truncated)", '{"type":"op",'],
      ["not JSON (plain text)", "hello"],
      ["JSON array", "[1,2]"],
      ["JSON string", '"op"'],
      ["JSON null", "null"],
      ["no type", '{"payload":{"key":"k","value":1}}'],
      ["unknown type", '{"type":"subscribe","payload":{"key":"k","value":1}}'],
      ["type not a string", '{"type":1,"payload":{"key":"k","value":1}}'],
      ["missing payload", '{"type":"op"}'],
      ["payload not an object", '{"type":"op","payload":[1]}'],
      ["missing key", '{"type":"op","payload":{"value":1}}'],
      ["empty key", '{"type":"op","payload":{"key":"","value":1}}'],
      ["key not a string", '{"type":"op","payload":{"key":5,"value":1}}'],
      ["missing value", '{"type":"op","payload":{"key":"k"}}'],
      ["timestamp not an integer (1.5)", '{"type":"op","payload":{"key":"k","value":1,"timestamp":1.5}}'],
      ["timestamp a string", '{"type":"op","payload":{"key":"k","value":1,"timestamp":"1"}}'],
      ["value nested 100 deep", `{"type":"op","payload":{"key":"k","value":${deep}}}`, /^message nests deeper than 66 levels$/],
      ["value nested 65 deep (one over doc/protocol.md's 64)", `{"type":"op","payload":{"key":"k","value":${nested(65)}}}`, /^message nests deeper than 66 levels$/],
      ["a number beyond a double", '{"type":"op","payload":{"key":"k","value":[1e400]}}', /^message holds a number beyond the range of a double$/],
    ]
    for (const [name, text, message] of cases) {
      c.sendRaw(text)
      const m = await c.next()
      assertError(m, 400, name)
      if (message) assert.match(m.message, message, name)
      assert.equal(c.open, true, `${name}: socket still open`)
    }
    // A binary frame is refused too.
    c.sendRaw(Buffer.from('{"type":"op","payload":{"key":"bin","value":1}}'), { binary: true })
    assertError(await c.next(), 400, "binary frame")
    // The socket still works, and the first op anyone sees is this one.
    c.sendOp("after", { ok: true })
    assertOp(await c.next(), "after", { ok: true })
    assertOp(await observer.next(), "after", { ok: true }, "observer's first message after init")
    // A null value is a value (not "missing value").
    c.sendOp("nothing", null)
    assertOp(await c.next(), "nothing", null)
    // A value nested 64 deep is taken, and comes back whole.
    c.sendRaw(`{"type":"op","payload":{"key":"deep","value":${nested(64)}}}`)
    assertOp(await c.next(), "deep", JSON.parse(nested(64)))
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, { after: { ok: true }, nothing: null, deep: JSON.parse(nested(64)) })
    assert.equal(init.heads.length, 1)
  })
})

test("a client's messages are answered in the order it sent them: ops, 400s and 403s interleaved, sent without waiting", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-answer-order"
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    const [ro] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read", sub: "ro" }) })
    // A fixed pattern, so a failure names the message: o = op, b = bad.
    const pattern = "oobobbooobobooobbbobooooboobbo"
    for (let i = 0; i < pattern.length; i++) {
      if (pattern[i] === "o") w.sendOp(`k${i % 5}`, i)
      else w.sendRaw(i % 2 ? "not json" : '{"type":"op","payload":{"key":"k"}}')
      if (pattern[i] === "o") ro.sendOp("ro", i)
      else ro.sendRaw("[1]")
    }
    for (let i = 0; i < pattern.length; i++) {
      if (pattern[i] === "o") assertOp(await w.next(), `k${i % 5}`, i, `writer's message ${i}`)
      else assertError(await w.next(), 400, `writer's message ${i}`)
    }
    // The read-only client also sees the writer's ops: its answers are the
    // errors among them, in order.
    const answers = []
    while (answers.length < pattern.length) {
      const m = await ro.next()
      if (m.type === "error") answers.push(m.code)
    }
    assert.deepEqual(answers, [...pattern].map((c) => (c === "o" ? 403 : 400)))
    const init = await h.initOf(ws)
    assert.equal(init.data.ro, undefined)
  })
})

test("timestamps: server time in microseconds when absent, the client's when given", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-time"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    const before = Date.now() * 1000
    c.sendOp("a", 1)
    const m1 = await c.next()
    const after = Date.now() * 1000
    assertOp(m1, "a", 1)
    assert.ok(m1.payload.timestamp >= before - 5_000 && m1.payload.timestamp <= after + 5_000,
      `server timestamp ${m1.payload.timestamp} is Unix microseconds within [${before}, ${after}]`)
    c.sendOp("b", 2, 1700000000123456)
    const m2 = await c.next()
    assertOp(m2, "b", 2)
    assert.equal(m2.payload.timestamp, 1700000000123456, "client timestamp kept exactly")
    c.send({ type: "op", payload: { key: "c", value: 3, timestamp: null } })
    const m3 = await c.next()
    assertOp(m3, "c", 3)
    assert.ok(m3.payload.timestamp >= before - 5_000, "null timestamp = none given: server time")
  })
})

test("op value mapping: objects→maps, arrays→lists, strings→str, integers→int, other numbers→f64", { timeout: 30_000 }, async (t) => {
  // One op, so the /doc export holds a single change (see the /doc tests for
  // documents of several changes).
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-values"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    // Raw JSON text, so that 2.0 stays a float literal on the wire.
    const text =
      '{"type":"op","payload":{"key":"v","value":{"s":"x","u":"h\\u00e9llo \\ud83c\\udf0d \\"q\\"\\n","i":42,"neg":-7,' +
      '"max":9007199254740991,"f":1.5,"two":2.0,"exp":1e300,"t":true,"n":null,' +
      '"arr":[1,"two",{"three":3},[4.5]],"deep":{"a":{"b":{"c":"d"}}},"empty":{},"none":[]}}}'
    c.sendRaw(text)
    const m = await c.next()
    const expected = {
      s: "x", u: 'héllo 🌍 "q"\n', i: 42, neg: -7, max: 9007199254740991, f: 1.5, two: 2, exp: 1e300,
      t: true, n: null, arr: [1, "two", { three: 3 }, [4.5]], deep: { a: { b: { c: "d" } } }, empty: {}, none: [],
    }
    assertOp(m, "v", expected)
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, { v: expected })
    const doc = await assertDocMatchesInit(h, ws, init)
    assert.deepEqual(typedTree(doc), {
      map: {
        v: {
          map: {
            s: ["str", "x"], u: ["str", 'héllo 🌍 "q"\n'], i: ["int", 42], neg: ["int", -7],
            max: ["int", 9007199254740991], f: ["f64", 1.5], two: ["f64", 2], exp: ["f64", 1e300],
            t: ["boolean", true], n: ["null", null],
            arr: { list: [["int", 1], ["str", "two"], { map: { three: ["int", 3] } }, { list: [["f64", 4.5]] }] },
            deep: { map: { a: { map: { b: { map: { c: ["str", "d"] } } } } } },
            empty: { map: {} }, none: { list: [] },
          },
        },
      },
    })
  })
})

test("message over the size limit closes the socket with 1009 (default 1 MiB)", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-big"
    const token = srv.mintToken({ workspace: ws })
    const [big] = await h.connectWithInit(ws, { token })
    const [observer] = await h.connectWithInit(ws, { token })
    big.sendOp("huge", "x".repeat(1 << 20))
    const closed = await big.waitClose()
    // The server refuses the message from its header and closes with 1009
    // while this client is still writing the megabyte; TCP may then reset the
    // connection before ws reads the close frame (it reports 1006). A reset is
    // accepted only if the server logged the 1009 close; the exact code is
    // checked without that race by the 4 KiB --max-message-bytes test below.
    if (closed.code !== 1009) {
      assert.equal(closed.code, 1006, `close code (reason ${closed.reason})`)
      // The reset can reach us before the server's log line reaches its pipe.
      for (let i = 0; i < 50 && !/bytes \(1009\)/.test(srv.log()); i++) await sleep(100)
      assert.match(srv.log(), /bytes \(1009\)/, "the server logged no 1009 close")
    }
    // Others are unaffected and nothing was stored.
    observer.sendOp("still", "here")
    assertOp(await observer.next(), "still", "here", "observer's first op is its own")
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, { still: "here" })
  })
})

test("--max-message-bytes: a message of exactly the limit passes, one byte more closes with 1009", { timeout: 30_000 }, async (t) => {
  await withServer(t, { args: ["--max-message-bytes", "4096"] }, async (srv, h) => {
    const ws = "ws-limit"
    const token = srv.mintToken({ workspace: ws })
    const frame = (n) => {
      const head = '{"type":"op","payload":{"key":"k","value":"'
      const tail = '"}}'
      return head + "y".repeat(n - head.length - tail.length) + tail
    }
    const [c] = await h.connectWithInit(ws, { token })
    const exact = frame(4096)
    assert.equal(Buffer.byteLength(exact), 4096)
    c.sendRaw(exact)
    const m = await c.next()
    assertOp(m, "k", JSON.parse(exact).payload.value, "a 4096-byte message is accepted")
    const over = frame(4097)
    c.sendRaw(over)
    const closed = await c.waitClose()
    assert.equal(closed.code, 1009, `close code (reason ${closed.reason})`)
    const init = await h.initOf(ws)
    assert.equal(init.data.k, JSON.parse(exact).payload.value, "the 4097-byte op was not applied")
  })
})

test("slow reader: a client that does not read is closed with 1008, the others get every op", { timeout: 60_000 }, async (t) => {
  await withServer(t, { args: ["--max-send-queue-bytes", "65536"] }, async (srv, h) => {
    const ws = "ws-slow"
    const [slow] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read", sub: "slow" }) })
    const [active] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read", sub: "active" }) })
    const [writer] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "writer" }) })
    slow.ws._socket.pause() // stops reading: the kernel buffers fill, then the server's queue
    // Ops of 16 KiB, three at a time (the next three once the active client
    // has them, so the queue of a client that reads never holds more than
    // ~48 KiB), until the server closes the slow client -- which takes more
    // than the loopback socket buffers hold -- and 30 more after that.
    const WINDOW = 3
    const MAX = 3000 // ~48 MiB: far more than any socket buffer
    const pad = "z".repeat(16 * 1024)
    const cutRe = /closing \S+: send queue over 65536 bytes/
    const t0 = Date.now()
    let n = 0
    let extra = -1
    while (n < MAX && extra !== 0) {
      for (let j = 0; j < WINDOW; j++, n++) writer.sendOp(`k${n % 50}`, `${n}:${pad}`)
      await active.waitForOps(n, 10_000)
      if (extra < 0 && cutRe.test(srv.log())) extra = 10 // rounds of WINDOW ops after the cut
      else if (extra > 0) extra--
    }
    const elapsed = Date.now() - t0
    assert.ok(cutRe.test(srv.log()), `the server closed the slow client within ${MAX} ops of 16 KiB`)
    const ops = active.ops()
    assert.equal(ops.length, n)
    for (let i = 0; i < n; i++) assert.equal(ops[i].payload.value, `${i}:${pad}`, `active client op #${i} in order`)
    await writer.waitForOps(n, 20_000)
    assert.equal(active.open, true, "the active client stays connected")
    assert.equal(writer.open, true, "the writer stays connected")
    assert.equal((srv.log().match(/send queue over/g) ?? []).length, 1, "only the slow client was closed")
    // Once it reads again it finds a cut-off stream and the close 1008.
    slow.ws._socket.resume()
    const closed = await slow.waitClose(15_000)
    assert.equal(closed.code, 1008, `slow client close code (reason ${closed.reason})`)
    assert.ok(slow.ops().length < n, `slow client got ${slow.ops().length} of ${n} ops before the cut`)
    t.diagnostic(`active client received ${n} ops of 16 KiB in ${elapsed} ms; the slow one got ${slow.ops().length}`)
  })
})

test("a workspace whose state is over 4x --max-send-queue-bytes can be joined: the init counts beside the limits; the queue behind it is still bounded", { timeout: 60_000 }, async (t) => {
  await withServer(t, { args: ["--max-send-queue-bytes", "1048576"] }, async (srv, h) => {
    const ws = "big-state"
    const token = srv.mintToken({ workspace: ws })
    const [w] = await h.connectWithInit(ws, { token })
    const big = (i) => crypto.randomBytes(675_000).toString("base64") // 900,000 characters
    for (let i = 0; i < 6; i++) await w.put(`k${i}`, `${i}${big(i)}`, undefined, 20_000)
    const [joiner, init] = await h.connectWithInit(ws, { token })
    assert.equal(Object.keys(init.data).length, 6, "the 5.4 MB init arrived")
    assert.ok(JSON.stringify(init).length > 4 * 1048576)
    // Ops go on to the joiner as to anyone.
    await w.put("after", 1)
    await joiner.waitUntil(() => joiner.ops().some((m) => m.payload.key === "after"), 10_000, "the op after the init")
    assert.doesNotMatch(srv.log(), /send queue over/)
    assert.equal(joiner.open, true)
    // A client that reads nothing, not even its init, is still closed once
    // what queues behind the init passes the limit and it stays stalled.
    const slow = await h.connect(ws, { token })
    slow.ws._socket.pause()
    const pad = "p".repeat(64 * 1024)
    for (let i = 0; i < 200 && !/send queue over 1048576 bytes/.test(srv.log()); i++) {
      await w.put("pad", `${i}${pad}`)
      if (i > 16) await new Promise((r) => setTimeout(r, 100))
    }
    assert.match(srv.log(), /closing \S+: send queue over 1048576 bytes/)
    assert.equal((srv.log().match(/send queue over/g) ?? []).length, 1, "only the client that does not read")
    assert.equal(joiner.open, true)
  })
})

test("send queue: a burst of big ops (default limits) does not close clients that read", { timeout: 60_000 }, async (t) => {
  // Default --max-message-bytes (1 MiB) and --max-send-queue-bytes (16 MiB).
  // The writer sends 20 ops of ~1000 KB each at once: legal messages, ~20 MB
  // of broadcasts, more than one client's send queue may hold. Every client
  // reads as fast as it can, so none is a "client that does not read" and
  // none may be closed with 1008. (48 ops, as before, made the test fail on
  // a loaded machine: a reader starved of CPU by the tests beside it fell
  // 16 MiB behind, which is what the limit is for.)
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-burst"
    const [active] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read", sub: "active" }) })
    const [writer] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "writer" }) })
    const N = 20
    const pad = "z".repeat(1_000_000)
    for (let i = 0; i < N; i++) writer.sendOp(`k${i}`, `${i}:${pad}`)
    const settled = (c) => () => c.ops().length >= N || c.closeInfo !== null
    await active.waitUntil(settled(active), 30_000, "all ops or a close (reader)")
    await writer.waitUntil(settled(writer), 30_000, "all ops or a close (writer)")
    assert.equal(active.closeInfo, null, `the reading client was closed: ${JSON.stringify(active.closeInfo)}`)
    assert.equal(writer.closeInfo, null, `the writer was closed: ${JSON.stringify(writer.closeInfo)}`)
    assert.equal(active.ops().length, N)
    assert.equal(writer.ops().length, N)
  })
})

test("all clients see concurrent writers' ops in one order, each its own op back, and converge", { timeout: 60_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-concurrent"
    const W = 4
    const PER = 150
    const KEYS = 5
    const writers = []
    for (let w = 0; w < W; w++) {
      const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: `writer${w}` }) })
      writers.push(c)
    }
    const [reader] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read" }) })
    const sent = []
    // Interleave the senders as tightly as the event loop allows.
    for (let i = 0; i < PER; i++) {
      for (let w = 0; w < W; w++) {
        const key = `shared-${(i + w) % KEYS}`
        const value = i % 10 === 0 ? { by: w, i } : `w${w}-${i}`
        writers[w].sendOp(key, value)
        sent.push({ w, key, value })
      }
      if (i % 25 === 0) await new Promise((r) => setImmediate(r))
    }
    const total = W * PER
    const all = [reader, ...writers]
    for (const c of all) await c.waitForOps(total, 30_000)
    const seqs = all.map((c) => c.ops().map(opKey))
    for (let k = 1; k < seqs.length; k++)
      assert.deepEqual(seqs[k], seqs[0], `client ${k} sees the same order as the reader`)
    // Every op exactly once.
    const seen = reader.ops().map((m) => JSON.stringify([m.payload.key, m.payload.value]))
    assert.equal(new Set(seen).size, total, "no duplicates")
    assert.deepEqual(sorted(seen), sorted(sent.map((s) => JSON.stringify([s.key, s.value]))), "every sent op is broadcast")
    // Each sender's ops appear in its sending order (so it got its own back).
    for (let w = 0; w < W; w++) {
      const mine = sent.filter((s) => s.w === w).map((s) => JSON.stringify([s.key, s.value]))
      const mineSeen = seen.filter((s) => mine.includes(s))
      assert.deepEqual(mineSeen, mine, `writer ${w}'s ops in its order`)
    }
    // Converged: the last broadcast value per key is the stored state.
    const last = {}
    for (const m of reader.ops()) last[m.payload.key] = m.payload.value
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, last, "a new client's init equals the last value per key")
    for (const c of all) assert.equal(c.ops().length, total, "no extra ops after quiescence")
  })
})

// --- HTTP routes ------------------------------------------------------------------------

test("HTTP methods: HEAD answers as GET without a body, a 405 says what is allowed, every answer names the server, absolute-form targets are served", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv) => {
    // HEAD then GET (in the absolute form a proxy sends) on one connection:
    // a body after the HEAD's headers would be read as the next response.
    const two = await rawHttp(
      srv.port,
      "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
        `GET http://127.0.0.1:${srv.port}/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    )
    const [headAnswer, getAnswer] = two.data.split(/(?=HTTP\/1\.1 )/)
    assert.match(headAnswer, /^HTTP\/1\.1 200 [^]*Content-Length: 3\r\n/, `HEAD: ${JSON.stringify(headAnswer)}`)
    assert.ok(headAnswer.endsWith("\r\n\r\n"), `HEAD: headers only: ${JSON.stringify(headAnswer)}`)
    assert.match(getAnswer ?? "", /^HTTP\/1\.1 200 [^]*\r\n\r\nok\n$/, `GET after HEAD: ${JSON.stringify(getAnswer)}`)
    // An error to a HEAD has no body either, and the next request on the
    // connection is framed right whatever came before.
    const errors = await rawHttp(
      srv.port,
      "HEAD ftp://x/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
        "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
        "GET ftp://x/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    const [badHead, okHead, badGet] = errors.data.split(/(?=HTTP\/1\.1 )/)
    assert.match(badHead, /^HTTP\/1\.1 400 [^]*\r\n\r\n$/, `HEAD of a bad target: ${JSON.stringify(badHead)}`)
    assert.match(okHead, /^HTTP\/1\.1 200 [^]*\r\n\r\n$/, `HEAD after it: ${JSON.stringify(okHead)}`)
    assert.match(badGet ?? "", /^HTTP\/1\.1 400 [^]*\r\n\r\n\{"error":\{"code":400,"message":"bad request target"\}\}\n$/, `GET of a bad target after a HEAD: ${JSON.stringify(badGet)}`)
    const token = srv.mintToken({ workspace: "*", scope: "admin" })
    const auth = { Authorization: `Bearer ${token}` }
    for (const p of ["/healthz", "/readyz", "/v1/status", "/v1/workspaces/a/doc", "/v1/history/a"]) {
      const get = await httpRequest(`${srv.url}${p}`, { headers: auth })
      const head = await httpRequest(`${srv.url}${p}`, { method: "HEAD", headers: auth })
      assert.equal(head.status, get.status, `HEAD ${p}`)
      assert.equal(head.body.length, 0, `HEAD ${p}: no body`)
      assert.equal(head.headers.get("content-length"), get.headers.get("content-length"), `HEAD ${p}: GET's length`)
      assert.equal(get.headers.get("server"), "etherply", `GET ${p}: Server`)
      for (const method of ["POST", "DELETE"]) {
        const r = await httpRequest(`${srv.url}${p}`, { method, headers: auth })
        assert.equal(r.status, 405, `${method} ${p}`)
        assert.equal(r.headers.get("allow"), "GET, HEAD", `${method} ${p}: Allow`)
      }
    }
    for (const p of ["/v1/history/a/undo", "/v1/history/a/restore"]) {
      const r = await httpRequest(`${srv.url}${p}`, { headers: auth })
      assert.equal(r.status, 405, `GET ${p}`)
      assert.equal(r.headers.get("allow"), "POST", `GET ${p}: Allow`)
    }
  })
})

test("serve checks what it can before it makes anything: a port in use, an unresolvable host or a bad NATS URL leaves no data dir; a host name is resolved", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv) => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-nodir-"))
    t.after(() => fs.rmSync(base, { recursive: true, force: true }))
    const env = { ...process.env, ETHERPLY_JWT_SECRET: "s".repeat(40) }
    const cases = [
      [["--listen", `127.0.0.1:${srv.port}`], /cannot listen on 127\.0\.0\.1:\d+: Address already in use/],
      [["--listen", "no-such-host.invalid:0"], /cannot listen on no-such-host\.invalid: not an IP address, and resolving it failed/],
      [["--listen", "127.0.0.1:0", "--nats-url", "nats://127.0.0.1:99999"], /NATS URL "nats:\/\/127\.0\.0\.1:99999" has a port that is not from 1 to 65535/],
      [["--listen", "127.0.0.1:0", "--nats-url", ","], /NATS URL "" is empty/],
    ]
    for (const [i, [args, message]] of cases.entries()) {
      const dir = path.join(base, `data-${i}`)
      const r = spawnSync(BIN, ["serve", ...args, "--data-dir", dir], { env, encoding: "utf8", timeout: 20_000 })
      assert.notEqual(r.status, 0, `${args.join(" ")}: must fail (${r.stderr})`)
      assert.match(r.stderr, message, args.join(" "))
      assert.equal(fs.existsSync(dir), false, `${args.join(" ")}: no data dir made`)
    }
  })
  // localhost resolves: the server says where it listens, as a URL.
  await withServer(t, { args: ["--listen", "localhost:0"] }, async (srv) => {
    assert.match(srv.log(), /etherply listening on http:\/\/127\.0\.0\.1:\d+ /)
    assert.equal((await httpRequest(`${srv.url}/healthz`)).status, 200)
  })
})

test("the log's reader going away (serve 2>&1 | head) does not stop the server; a second server on its data dir is told it is in use", { timeout: 30_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-sigpipe-"))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const env = { ...process.env, ETHERPLY_JWT_SECRET: "s".repeat(40) }
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
  const child = spawn(BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir], { env, stdio: ["ignore", "ignore", "pipe"] })
  t.after(() => child.kill("SIGKILL"))
  child.stderr.destroy() // the reader of the log is gone before its first line
  let health
  for (let i = 0; i < 200 && health?.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(child.signalCode, null, "not killed by SIGPIPE at start")
    health = await httpRequest(`http://127.0.0.1:${port}/healthz`).catch(() => null)
  }
  assert.equal(health?.status, 200, "serving")
  assert.match(fs.readdirSync(dir).join(" "), /CURRENT/)
  // Each refused token is a log line, written into the closed pipe.
  for (let i = 0; i < 5; i++) {
    const r = await httpRequest(`http://127.0.0.1:${port}/v1/history/a`, { headers: { Authorization: "Bearer x" } })
    assert.equal(r.status, 401)
  }
  assert.equal((await httpRequest(`http://127.0.0.1:${port}/healthz`)).status, 200, "still serving")
  assert.equal(child.exitCode, null, "still running")
  assert.equal(child.signalCode, null, "not killed by SIGPIPE")
  const second = spawnSync(BIN, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir], { env, encoding: "utf8", timeout: 20_000 })
  assert.equal(second.status, 1)
  assert.match(second.stderr, new RegExp(`the data dir .* is in use by process ${child.pid} \\(another etherply\\?\\)`))
})

test("HTTP routes: /healthz 200, unknown paths 404, wrong method 405, bad workspace ID 400, no upgrade 426", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const health = await httpRequest(`${srv.url}/healthz`)
    assert.equal(health.status, 200)
    assert.equal(health.text.trim(), "ok")
    const token = srv.mintToken({ workspace: "*" })
    const auth = { Authorization: `Bearer ${token}` }
    for (const p of ["/", "/v1", "/v1/sync", "/v1/sync/a/b", "/v2/sync/a", "/v1/workspaces/a", "/v1/workspaces/a/other", "/healthz/x"]) {
      const r = await httpRequest(`${srv.url}${p}`, { headers: auth })
      assert.equal(r.status, 404, `GET ${p}`)
    }
    for (const p of ["/v1/sync/a", "/v1/workspaces/a/doc"]) {
      for (const method of ["POST", "PUT", "DELETE"]) {
        const r = await httpRequest(`${srv.url}${p}`, { method, headers: auth, body: method === "DELETE" ? undefined : "{}" })
        assert.equal(r.status, 405, `${method} ${p}`)
      }
    }
    const badIds = ["bad$id", "a".repeat(129), "sp%20ace", "caf%C3%A9", "a:b", "%2e%2e%2fx"]
    for (const id of badIds) {
      const r = await httpRequest(`${srv.url}/v1/workspaces/${id}/doc`, { headers: auth })
      assert.equal(r.status, 400, `GET /doc of ${id}`)
      const w = await h.tryConnect(id, { token })
      assert.equal(w.ok, false, `sync to ${id} must not open`)
      assert.equal(w.status, 400, `sync to ${id}`)
      // Without a token the answer is 401 (spec §1), whatever the ID.
      assertUnauthorized(await h.tryConnect(id, {}), `sync to ${id} without a token`)
    }
    // "." and "..": URL clients remove them as dot segments, so only a raw
    // request can name them; refused, as no client could reach them.
    for (const id of [".", ".."]) {
      for (const target of [`/v1/workspaces/${id}/doc`, `/v1/history/${id}`]) {
        const s = openSocket(srv.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${auth.Authorization}\r\nConnection: close\r\n\r\n`)
        await until(`the answer to GET ${target}`, () => s.ended)
        assert.match(s.received.toString(), /^HTTP\/1\.1 400 [^]*"invalid workspace ID: 1 to 128 of A-Z a-z 0-9 \. _ -, not \. or \.\."/, `GET ${target}`)
      }
    }
    // Boundary: 128 characters of the allowed set is a valid ID.
    const id128 = "A-z_0.9" + "x".repeat(121)
    assert.equal(id128.length, 128)
    const ok = await h.tryConnect(id128, { token })
    assert.equal(ok.ok, true, `128-char ID: ${ok.status} ${ok.body}`)
    assert.equal((await ok.client.next()).type, "init")
    // A plain GET (no upgrade) of the sync path.
    const plain = await httpRequest(`${srv.url}/v1/sync/a`, { headers: auth })
    assert.equal(plain.status, 426)
    // An upgrade whose Sec-WebSocket-Key is not 16 bytes in base64 (RFC 6455 §4.2.1).
    for (const key of ["short", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=!", "dGhlIHNhbXBsZSBub25j*Q=="]) {
      const bad = await rawHttp(srv.port, upgradeRequest("/v1/sync/a", `Authorization: Bearer ${token}\r\n`).replace("dGhlIHNhbXBsZSBub25jZQ==", key))
      assert.match(bad.data, /^HTTP\/1\.1 400 /, `key ${key}: ${bad.data.slice(0, 120)}`)
      assert.match(bad.data, /Sec-WebSocket-Key must be 16 bytes in base64/)
    }
    // An upgrade without Sec-WebSocket-Version, or with one other than 13
    // (RFC 6455 §4.4): JSON errors like the rest, naming the version spoken.
    for (const [version, status] of [[null, 400], ["8", 426], ["13, 8", 426]]) {
      const req = upgradeRequest("/v1/sync/a", `Authorization: Bearer ${token}\r\n`)
        .replace("Sec-WebSocket-Version: 13\r\n", version === null ? "" : `Sec-WebSocket-Version: ${version}\r\n`)
      const bad = await rawHttp(srv.port, req)
      assert.match(bad.data, new RegExp(`^HTTP/1\\.1 ${status} `), `version ${version}: ${bad.data.slice(0, 120)}`)
      assert.match(bad.data, /\r\nSec-WebSocket-Version: 13\r\n/i)
      assert.match(bad.data, /\r\nContent-Type: application\/json\r\n/i)
      assert.match(bad.data, /"Sec-WebSocket-Version must be 13 \(RFC 6455\)"/)
    }
    // /doc: 401 with WWW-Authenticate without a token, with a bad one or
    // with one for another workspace, 200 with ?token= and read scope.
    const noTok = await httpRequest(`${srv.url}/v1/workspaces/a/doc`)
    assert.equal(noTok.status, 401)
    assert.match(noTok.headers.get("www-authenticate") ?? "", /^Bearer\b/)
    const badTok = await httpRequest(`${srv.url}/v1/workspaces/a/doc`, { headers: { Authorization: `Bearer ${srv.forge("alg-none", { workspace: "a" })}` } })
    assert.equal(badTok.status, 401)
    assert.match(badTok.headers.get("www-authenticate") ?? "", /^Bearer\b/)
    const other = await httpRequest(`${srv.url}/v1/workspaces/a/doc`, { headers: { Authorization: `Bearer ${srv.mintToken({ workspace: "b" })}` } })
    assert.equal(other.status, 401)
    assert.match(other.headers.get("www-authenticate") ?? "", /^Bearer\b/)
    const q = await httpRequest(`${srv.url}/v1/workspaces/a/doc?token=${srv.mintToken({ workspace: "a", scope: "read" })}`)
    assert.equal(q.status, 200)
  })
})

test("--max-connections: the connection over the limit gets HTTP 503", { timeout: 30_000 }, async (t) => {
  await withServer(t, { args: ["--max-connections", "2"] }, async (srv, h) => {
    const token = srv.mintToken({ workspace: "ws" })
    await h.connectWithInit("ws", { token })
    const [second] = await h.connectWithInit("ws", { token })
    const third = await h.tryConnect("ws", { token })
    assert.equal(third.ok, false)
    assert.equal(third.status, 503)
    await second.close()
    // The slot is freed once a client leaves.
    let fourth = await h.tryConnect("ws", { token })
    for (let i = 0; i < 20 && !fourth.ok; i++) {
      await sleep(100)
      fourth = await h.tryConnect("ws", { token })
    }
    assert.equal(fourth.ok, true, "a slot frees up after a client leaves")
  })
})

// --- /doc export --------------------------------------------------------------------------

test("/doc export of an empty and of a one-change workspace loads in the reference with init's JSON and heads", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-doc1"
    // An empty workspace exports an empty document.
    const init0 = await h.initOf(ws)
    assert.deepEqual(init0, { type: "init", data: {}, heads: [] })
    await assertDocMatchesInit(h, ws, init0)
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    c.sendOp("title", { text: "Draft", tags: ["x", 1] })
    const m = await c.next()
    const init = await h.initOf(ws)
    assert.equal(init.heads.length, 1)
    assert.match(init.heads[0], HEX64)
    const doc = await assertDocMatchesInit(h, ws, init)
    const changes = A.getAllChanges(doc)
    assert.equal(changes.length, 1)
    const dc = A.decodeChange(changes[0])
    assert.equal(dc.hash, init.heads[0])
    assert.equal(dc.time, Math.floor(m.payload.timestamp / 1e6), "change time = op timestamp in seconds")
    // A read-only token may export, via ?token= too.
    const ro = srv.mintToken({ workspace: ws, scope: "read" })
    const r = await httpRequest(`${srv.url}/v1/workspaces/${ws}/doc?token=${ro}`)
    assert.equal(r.status, 200)
    assert.deepEqual(A.getHeads(A.load(new Uint8Array(r.body))), init.heads)
  })
})

test("/doc export after several ops (two users, overwrites, a repeated value, a refused op, a restart) loads in the reference with init's JSON and heads", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-doc"
    const a = (await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) }))[0]
    const b = (await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "bob" }) }))[0]
    const ro = (await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "carol", scope: "read" }) }))[0]
    a.sendOp("title", "Draft")
    b.sendOp("title", "Final")
    a.sendOp("tags", ["x", "y", { z: [1, 2.5] }])
    b.sendOp("meta", { rev: 3, ok: false, owner: null })
    a.sendOp("count", 10)
    b.sendOp("count", 11)
    // The value the key holds, with a timestamp of its own: a change all the
    // same (spec: every op persisted), timed by its timestamp.
    a.sendOp("count", 11, 1732500000999999)
    ro.sendOp("count", 99) // refused (403): must not become a change
    await a.waitForOps(7)
    await b.waitForOps(7)
    assertError(await ro.nextOfType("error"), 403, "read-only op")
    const init = await h.initOf(ws)
    const last = {}
    for (const m of a.ops()) last[m.payload.key] = m.payload.value
    assert.deepEqual(init.data, last)
    assert.equal(init.heads.length, 1)
    for (const hd of init.heads) assert.match(hd, HEX64)
    const doc = await assertDocMatchesInit(h, ws, init)
    assert.equal(A.getAllChanges(doc).length, 7, "one change per accepted op, none for the refused one")
    const times = A.getAllChanges(doc).map((c) => A.decodeChange(c).time)
    assert.deepEqual(times, a.ops().map((m) => Math.floor(m.payload.timestamp / 1e6)), "change times = op timestamps in seconds, in order")
    // The same after a restart.
    await srv.restart()
    const init2 = await h.initOf(ws)
    assert.deepEqual(init2, init)
    await assertDocMatchesInit(h, ws, init2)
  })
})

test("SIGHUP, as when the server's terminal closes, stops it as SIGTERM does: clients closed with 1001, exit 0, every op kept", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-hup"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    for (let i = 0; i < 20; i++) c.sendOp(`k${i}`, i)
    await c.waitForOps(20)
    const before = await h.initOf(ws)
    // A closing terminal may send it twice: still a graceful stop.
    const { stopped } = srv.signal("SIGHUP")
    srv.signal("SIGHUP")
    assert.deepEqual(await c.waitClose(5000), { code: 1001, reason: "the server is shutting down" })
    assert.deepEqual(await stopped, { code: 0, signal: null })
    assert.match(srv.log(), /INFO signal 1: stopping/)
    await srv.restart()
    assert.deepEqual(await h.initOf(ws), before)
  })
})

test("under nohup, SIGHUP is ignored: the server goes on serving, and SIGTERM still stops it", { timeout: 30_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-nohup-"))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
  const env = { ...process.env, ETHERPLY_JWT_SECRET: "s".repeat(40) }
  const child = spawn("nohup", [BIN, "serve", "--listen", `127.0.0.1:${port}`, "--data-dir", path.join(dir, "data")], { env, stdio: ["ignore", "pipe", "pipe"] })
  t.after(() => child.kill("SIGKILL"))
  let log = ""
  child.stderr.on("data", (d) => { log += d })
  const healthy = async () => (await httpRequest(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200
  for (let i = 0; i < 200 && !(await healthy()); i++) await new Promise((r) => setTimeout(r, 50))
  assert.ok(await healthy(), "serving")
  child.kill("SIGHUP")
  await new Promise((r) => setTimeout(r, 500))
  assert.equal(child.exitCode, null, "still running after SIGHUP")
  assert.ok(await healthy(), "still serving after SIGHUP")
  assert.doesNotMatch(log, /signal 1/)
  child.kill("SIGTERM")
  const [code] = await once(child, "exit")
  assert.equal(code, 0)
})

test("persistence across a graceful restart (SIGTERM): clients closed with 1001, same init", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-persist"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    for (let i = 0; i < 100; i++) c.sendOp(`k${i % 20}`, i % 3 === 0 ? { i, list: [i] } : i)
    await c.waitForOps(100)
    const before = await h.initOf(ws)
    const exit = await srv.stop()
    assert.deepEqual(exit, { code: 0, signal: null }, "SIGTERM stops the server cleanly")
    const closed = await c.waitClose(5000)
    assert.deepEqual(closed, { code: 1001, reason: "the server is shutting down" }, "the client is told the server is going away")
    await srv.restart()
    const after = await h.initOf(ws)
    assert.deepEqual(after, before, "init (data and heads) survives the restart")
    // And the workspace keeps working after the restart.
    const [c2] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    c2.sendOp("post", "restart")
    assertOp(await c2.next(), "post", "restart")
    const later = await h.initOf(ws)
    assert.deepEqual(later.data, { ...before.data, post: "restart" })
    assert.notDeepEqual(later.heads, before.heads)
  })
})

test("SIGTERM: a client that never answers its close holds the stop for the 2 s grace, /readyz says 503 meanwhile; a second signal stops at once", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-silent"
    const token = srv.mintToken({ workspace: ws })
    // A WebSocket client that reads its frames and never answers any; the
    // server's close frame starts with 0x88.
    const silentClient = async () => {
      const s = openSocket(srv.port, upgradeRequest(`/v1/sync/${ws}?token=${token}`))
      await until("the upgrade", () => s.received.includes("\r\n\r\n"))
      assert.match(s.received.toString("latin1"), /^HTTP\/1\.1 101 /)
      const headerEnd = s.received.indexOf("\r\n\r\n") + 4
      s.closeFrameSeen = () => s.received.subarray(headerEnd).includes(0x88)
      return s
    }
    const readyz = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    const silent = await silentClient()
    const lb = openSocket(srv.port, readyz) // a load balancer's keep-alive connection
    await until("/readyz", () => lb.received.includes("ready\n"))
    assert.match(lb.received.toString(), /^HTTP\/1\.1 200 /)
    lb.received = Buffer.alloc(0)
    const t0 = Date.now()
    const { stopped } = srv.signal("SIGTERM")
    await until("the close frame", () => silent.closeFrameSeen())
    lb.write(readyz)
    await until("/readyz while stopping", () => lb.received.includes("}"))
    assert.match(lb.received.toString(), /^HTTP\/1\.1 503 [^]*"the server is shutting down"/)
    lb.received = Buffer.alloc(0)
    lb.write("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await until("/v1/status while stopping", () => lb.received.includes("\"replication\":null}"))
    assert.match(lb.received.toString(), /^HTTP\/1\.1 200 [^]*\{"status":"stopping",/)
    assert.deepEqual(await stopped, { code: 0, signal: null })
    const heldMs = Date.now() - t0
    t.diagnostic(`the unanswered close held the stop ${heldMs} ms`)
    assert.ok(heldMs >= 1800, `the server waited for the client's answer (${heldMs} ms)`)
    silent.destroy()
    lb.destroy()

    await srv.restart()
    const silent2 = await silentClient()
    const second = srv.signal("SIGTERM")
    await until("the close frame", () => silent2.closeFrameSeen())
    const t1 = Date.now()
    srv.signal("SIGTERM")
    assert.deepEqual(await second.stopped, { code: 0, signal: null })
    const afterSecondMs = Date.now() - t1
    t.diagnostic(`stopped ${afterSecondMs} ms after the second signal`)
    assert.ok(afterSecondMs < 1500, `a second signal does not wait out the grace (${afterSecondMs} ms)`)
    assert.match(srv.log(), /signal 15 again: stopping now/)
    silent2.destroy()
    await srv.restart() // and it starts again
  })
})

test("a disk that stops answering syncs: a second SIGTERM ends the process within seconds though its threads wait on the disk; what was acknowledged is kept", { timeout: 60_000 }, async (t) => {
  const fault = diskFaultLibrary()
  const stall = path.join(os.tmpdir(), `etherply-disk-stall-${process.pid}-${Date.now()}`)
  t.after(() => fs.rmSync(stall, { force: true }))
  await withServer(t, { env: { LD_PRELOAD: fault, ETHERPLY_FAULT_DISK_STALL: stall } }, async (srv, h) => {
    const clients = []
    for (const ws of ["stall-a", "stall-b", "stall-c"]) {
      const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
      c.sendOp("before", ws)
      assertOp(await c.next(), "before", ws)
      clients.push(c)
    }
    fs.writeFileSync(stall, "") // syncs hang from here on
    for (const c of clients) c.sendOp("during", 1)
    await sleep(300)
    const { stopped } = srv.signal("SIGTERM")
    await sleep(500)
    const t1 = Date.now()
    srv.signal("SIGTERM")
    assert.deepEqual(await stopped, { code: 1, signal: null })
    const afterSecondMs = Date.now() - t1
    t.diagnostic(`ended ${afterSecondMs} ms after the second signal`)
    assert.ok(afterSecondMs < 10_000, `ended (${afterSecondMs} ms after the second signal)`)
    assert.match(srv.log(), /signal 15 again: stopping now/)
    assert.match(srv.log(), /still stopping 3 s after the second signal \(a network thread or the disk is busy\): exiting now; acknowledged ops are on disk/)
    fs.rmSync(stall)
    await srv.restart()
    for (const ws of ["stall-a", "stall-b", "stall-c"])
      assert.equal((await h.initOf(ws)).data.before, ws, `${ws}: the acknowledged op is kept`)
  })
})

test("kill -9 with ops in flight: no op that a client saw broadcast is lost", { timeout: 60_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "ws-crash"
    const W = 4
    const PER = 500
    const SHARED = 5
    const KILL_AFTER = 600
    const token = srv.mintToken({ workspace: ws })
    const [reader] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, scope: "read", sub: "reader" }) })
    const writers = []
    for (let w = 0; w < W; w++) writers.push((await h.connectWithInit(ws, { token }))[0])
    const sentValues = new Map() // key -> Set of values sent
    let sent = 0
    const keyOf = (w, i) => (i % 10 === 0 ? `shared-${(i / 10) % SHARED}` : `w${w}-${i}`)
    const flood = async (w) => {
      for (let i = 0; i < PER; i++) {
        if (!writers[w].open) return
        const key = keyOf(w, i)
        const value = `w${w}-${i}`
        if (!sentValues.has(key)) sentValues.set(key, new Set())
        sentValues.get(key).add(value)
        writers[w].sendOp(key, value)
        sent++
        if (i % 10 === 9) await sleep(2) // ~15k ops/s offered: more than the server commits
      }
    }
    const floods = writers.map((_, w) => flood(w))
    await reader.waitUntil(() => reader.ops().length >= KILL_AFTER, 20_000, `${KILL_AFTER} broadcasts`)
    await srv.kill9()
    const sentAtKill = sent
    await Promise.all(floods)
    for (const c of [reader, ...writers]) await c.waitClose(5000)
    assert.ok(sentAtKill < W * PER, "the kill came while the writers were still flooding")

    // Everything any client saw broadcast, in the server's order: every
    // client's sequence is a prefix of the longest one.
    const clients = [reader, ...writers]
    const allSeen = clients.reduce((a, c) => (c.ops().length > a.length ? c.ops() : a), [])
    t.diagnostic(`killed with ${sentAtKill} of ${W * PER} ops sent; ${allSeen.length} were broadcast`)
    assert.ok(allSeen.length < sentAtKill, "some ops sent before the kill were never broadcast (in flight)")
    for (const [k, c] of clients.entries()) {
      const mine = c.ops().map(opKey)
      assert.deepEqual(mine, allSeen.slice(0, mine.length).map(opKey), `client ${k} saw a prefix of the common order`)
    }

    await srv.restart()
    const init = await h.initOf(ws)
    const lastIdx = new Map()
    allSeen.forEach((m, i) => lastIdx.set(m.payload.key, i))
    const idxOfValue = new Map(allSeen.map((m, i) => [m.payload.value, i]))
    let lost = []
    for (const [key, i] of lastIdx) {
      const got = init.data[key]
      if (got === undefined) {
        lost.push(key)
        continue
      }
      if (key.startsWith("shared-")) {
        // The last broadcast value or one sent later (durable, not yet broadcast).
        assert.ok(sentValues.get(key).has(got), `${key}: ${got} was sent for it`)
        const j = idxOfValue.get(got)
        assert.ok(j === undefined || j >= i, `${key}: ${got} is not older than the last broadcast value ${allSeen[i].payload.value}`)
      } else {
        assert.equal(got, allSeen[i].payload.value, `${key}: the broadcast value`)
      }
    }
    assert.deepEqual(lost, [], `keys broadcast before the crash but missing after the restart (${lost.length})`)
    for (const key of Object.keys(init.data)) assert.ok(sentValues.has(key), `stored key ${key} was sent`)
    assert.equal(init.heads.length, 1, "one head: the server's changes form a chain")
    // The restarted server takes new ops on the recovered document.
    const [c] = await h.connectWithInit(ws, { token })
    c.sendOp("after-crash", true)
    assertOp(await c.next(), "after-crash", true)
  })
})

// --- status -----------------------------------------------------------------------------

test("a full disk: ops get 500 and store nothing, /readyz 503; once space is back, writes resume without a restart, in every workspace; what was acknowledged survives kill -9", { timeout: 60_000 }, async (t) => {
  const fault = diskFaultLibrary()
  const flag = path.join(os.tmpdir(), `etherply-disk-full-${process.pid}-${Date.now()}`)
  t.after(() => fs.rmSync(flag, { force: true }))
  await withServer(t, { env: { LD_PRELOAD: fault, ETHERPLY_FAULT_DISK_FULL: flag } }, async (srv, h) => {
    const [a] = await h.connectWithInit("disk-a", { token: srv.mintToken({ workspace: "disk-a" }) })
    const [b] = await h.connectWithInit("disk-b", { token: srv.mintToken({ workspace: "disk-b" }) })
    a.sendOp("before", 1)
    assertOp(await a.next(), "before", 1)
    const status = async () => JSON.parse((await httpRequest(`${srv.url}/v1/status`)).text)
    const storage = async () => (await status()).storage
    assert.deepEqual(await storage(), { writable: true })
    assert.equal((await status()).status, "ok")
    const ready = async () => httpRequest(`${srv.url}/readyz`)
    assert.equal((await ready()).status, 200, "/readyz while writes succeed")
    fs.writeFileSync(flag, "") // the disk is full
    a.sendOp("full", 2)
    assertError(await a.next(), 500, "an op while the disk is full")
    const failing = await storage()
    assert.equal(failing.writable, false, "/v1/status says writes fail")
    assert.match(failing.error, /No space left on device/)
    assert.equal((await status()).status, "degraded", "/v1/status sums up: writes fail")
    const notReady = await ready()
    assert.equal(notReady.status, 503, "/readyz while writes fail")
    assert.match(JSON.parse(notReady.text).error.message, /^writes are failing: .*No space left on device/)
    assert.equal((await httpRequest(`${srv.url}/healthz`)).status, 200, "/healthz: the node is alive, reads go on")
    b.sendOp("full", 3) // a workspace that has not failed yet fails too
    assertError(await b.next(), 500, "another workspace's op while the disk is full")
    fs.rmSync(flag) // space again
    // With no op sent, /readyz itself tries the store again (a load
    // balancer that drained the node sends none).
    const readySoon = Date.now()
    while ((await ready()).status !== 200) {
      assert.ok(Date.now() - readySoon < 3000, "/readyz still 503 3 s after space came back, with no op sent")
      await new Promise((r) => setTimeout(r, 50))
    }
    // No restart: a write resumes the store, trying at most every 0.5 s,
    // so ops are stored again within about that of the space coming back.
    const storedSoon = async (c, key, value) => {
      const start = Date.now()
      for (;;) {
        c.sendOp(key, value)
        const m = await c.next()
        if (m.type === "op") return assertOp(m, key, value, `${key} once space is back`)
        assertError(m, 500, `${key} before the store resumed`)
        assert.ok(Date.now() - start < 3000, `${key}: still refused 3 s after space came back`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    await storedSoon(a, "after", 4)
    await storedSoon(b, "after", 5)
    assert.deepEqual(await storage(), { writable: true }, "and writable again")
    assert.equal((await ready()).status, 200, "/readyz once writes succeed again")
    assert.match(srv.log(), /WARN rocksdb: .*No space left on device/, "RocksDB's own error is in the server's log")
    assert.match(srv.log(), /INFO storage: writes resumed after a failed write/)
    const expected = { "disk-a": { before: 1, after: 4 }, "disk-b": { after: 5 } }
    for (const [ws, data] of Object.entries(expected)) assert.deepEqual((await h.initOf(ws)).data, data, ws)
    await srv.kill9()
    await srv.restart()
    for (const [ws, data] of Object.entries(expected)) assert.deepEqual((await h.initOf(ws)).data, data, `${ws} after kill -9`)
  })
})

test("more connections than the open-file limit allows: each new one closes the HTTP connection that has waited longest on its client; with none waiting, it gets 503", { timeout: 30_000 }, async (t) => {
  await withServer(t, { maxOpenFiles: 300 }, async (srv, h) => {
    const m = /WARN open files are limited to 300 .*holds at most (\d+) connections at once/.exec(srv.log())
    assert.ok(m, `the start-up warning names the limit:\n${srv.logTail(5)}`)
    const room = Number(m[1])
    assert.ok(room < 250, `room for ${room} connections`)
    // Idle connections, as a slow or malicious client holds them: each one
    // beyond the room closes an older one (or, while those close, is
    // refused), so the server always has room for a client that asks.
    const idle = Array.from({ length: 250 }, () => openSocket(srv.port))
    t.after(() => idle.forEach((s) => s.destroy()))
    await until("the closes", () => idle.filter((s) => s.ended).length >= 250 - room)
    await new Promise((r) => setTimeout(r, 200))
    const closed = idle.filter((s) => s.ended)
    assert.equal(closed.length, 250 - room, "as many connections closed as went beyond the room")
    for (const s of closed) assert.match(s.received.toString(), /^$|^HTTP\/1\.1 503 /, "closed without an answer, or refused")
    assert.ok(closed.filter((s) => s.received.length === 0).length > 0, "some idle connection made room")
    const late = openSocket(srv.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await until("the late request's answer", () => late.ended)
    assert.match(late.received.toString(), /^HTTP\/1\.1 200 [^]*\r\n\r\nok\n$/, "a request finds room")
    assert.match(srv.log(), /WARN closed the HTTP connection that had waited longest on its client, to make room: 0 WebSocket and \d+ HTTP connections \(at most \d+ in all, \d+ HTTP\)/)
    for (const s of idle) s.destroy()

    // The room full of WebSocket clients: nothing waits for a request, so
    // a new connection is refused, and the clients go on.
    const ws = "ws-full"
    const token = srv.mintToken({ workspace: ws })
    // (No fetch() in this part: its kept-alive connection would wait for a
    // request, and make room.)
    await until("the idle connections gone", () => idle.every((s) => s.closed))
    await new Promise((r) => setTimeout(r, 200))
    const clients = []
    for (let i = 0; i < room; ++i) clients.push((await h.connectWithInit(ws, { token }))[0])
    const refused = openSocket(srv.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") // its request already sent
    await until("the refusal", () => refused.ended)
    assert.match(refused.received.toString(), /^HTTP\/1\.1 503 [^]*Connection: close[^]*\r\n\r\n\{"error":\{"code":503,"message":"too many connections"\}\}\n$/)
    assert.match(srv.log(), new RegExp(`WARN refused a connection with 503, no HTTP connection waiting on its client to make room: ${room} WebSocket and \\d+ HTTP connections`))
    clients[0].sendOp("still", true)
    assertOp(await clients[0].next(), "still", true)
    for (const c of clients) c.close()
    await until("/healthz once the clients left", () => healthy(srv.url))
  })
})

test("connections closed for room include those that pipelined requests, and those whose client does not read its answers", { timeout: 120_000 }, async (t) => {
  await withServer(t, { maxOpenFiles: 300 }, async (srv, h) => {
    const room = Number(/holds at most (\d+) connections at once/.exec(srv.log())[1])
    const probe = async (what) => {
      const p = openSocket(srv.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
      await until(`${what}: the probe's answer`, () => p.ended)
      assert.match(p.received.toString(), /^HTTP\/1\.1 200 /, `${what}: a new client is served`)
    }
    // Pipelined requests, all answered: each connection's read completes at
    // once from what is buffered, so a pick may find it done reading; it
    // must close all the same, or the server runs over its caps for good.
    const healthz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    const pipelined = Array.from({ length: room + 20 }, () => openSocket(srv.port, healthz.repeat(500)))
    t.after(() => pipelined.forEach((s) => s.destroy()))
    await until("the pipelined answers or closes", () =>
      pipelined.every((s) => s.closed || s.received.toString().split("ok\n").length - 1 === 500))
    for (let i = 0; i < 3; ++i) await probe(`after pipelining, probe ${i}`)
    for (const s of pipelined) s.destroy()

    // Clients that send requests for a large document and read nothing: the
    // server's writes wait on them, and they are closed for room too.
    const ws = "ws-big"
    const token = srv.mintToken({ workspace: ws })
    const [c] = await h.connectWithInit(ws, { token })
    const big = crypto.randomBytes(600_000).toString("base64") // 800 KB that do not compress
    c.sendOp("big", big)
    assertOp(await c.next(), "big", big)
    c.close()
    await until("the writer's disconnect", () => /INFO disconnected .* workspace=ws-big/.test(srv.log()))
    const doc = `GET /v1/workspaces/${ws}/doc HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`
    const stalled = Array.from({ length: room }, () => {
      const s = net.connect(srv.port, "127.0.0.1")
      s.on("error", () => {})
      s.pause() // reads nothing
      s.write(doc.repeat(40)) // 40 answers: more than the socket buffers hold
      return s
    })
    t.after(() => stalled.forEach((s) => s.destroy()))
    // Until the server has answered all it can and its writes wait on the
    // clients: it uses no CPU then (the time depends on the machine).
    for (let last = cpuTicks(srv), start = Date.now(); ; ) {
      await new Promise((r) => setTimeout(r, 500))
      const now = cpuTicks(srv)
      if (now - last <= 1) break
      last = now
      assert.ok(Date.now() - start < 60_000, "the server still busy after 60 s")
    }
    for (let i = 0; i < 3; ++i) await probe(`with stalled writes, probe ${i}`)
    for (const s of stalled) s.destroy()
  })
})

test("HTTP connections are capped at 1,024 beside the WebSocket ones: each beyond closes the one that has waited longest; a new request is served, a connected client goes on", { timeout: 60_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const [c] = await h.connectWithInit("ws-http-cap", { token: srv.mintToken({ workspace: "ws-http-cap" }) })
    const idle = []
    for (let i = 0; i < 1030; ++i) idle.push(openSocket(srv.port))
    t.after(() => idle.forEach((s) => s.destroy()))
    await until("the closes", () => idle.filter((s) => s.ended).length >= 6)
    await new Promise((r) => setTimeout(r, 300))
    const closed = idle.filter((s) => s.ended)
    assert.equal(closed.length, 6, "one connection closed for each beyond 1,024 HTTP ones")
    for (const s of closed) assert.equal(s.received.length, 0, "closed without an answer")
    assert.ok(await healthy(srv.url), "a new request is served")
    c.sendOp("still", true)
    assertOp(await c.next(), "still", true)
    for (const s of idle) s.destroy()
  })
})

test("an accept that fails for want of a descriptor (EMFILE) is retried every 100 ms, not in a busy loop, and logged once; the waiting connection is served once descriptors are back", { timeout: 30_000 }, async (t) => {
  const fault = process.env.ETHERPLY_ACCEPT_FAULT || path.join(path.dirname(BIN), "libetherply_accept_fault.so")
  assert.ok(fs.existsSync(fault), `the fault library (CMake target etherply_accept_fault) is missing: ${fault}; set ETHERPLY_ACCEPT_FAULT`)
  const flag = path.join(os.tmpdir(), `etherply-emfile-${process.pid}-${Date.now()}`)
  t.after(() => fs.rmSync(flag, { force: true }))
  await withServer(t, { env: { LD_PRELOAD: fault, ETHERPLY_FAULT_ACCEPT_EMFILE: flag } }, async (srv) => {
    fs.writeFileSync(flag, "") // no descriptor left
    const s = net.connect(srv.port, "127.0.0.1")
    let answer = ""
    s.on("data", (d) => (answer += d))
    s.on("error", () => {})
    s.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await new Promise((r) => setTimeout(r, 300))
    const before = cpuTicks(srv)
    await new Promise((r) => setTimeout(r, 1000))
    const used = cpuTicks(srv) - before
    t.diagnostic(`the server used ${used} ticks of CPU in the second its accepts failed`)
    assert.ok(used < 30, `no busy loop while accepts fail: ${used} of 100 ticks in a second`)
    assert.equal(answer, "", "the connection waits")
    const warnings = srv.log().match(/WARN accepting a connection failed: Too many open files; retrying every 100 ms/g) ?? []
    assert.equal(warnings.length, 1, "logged once, not once per attempt")
    fs.rmSync(flag) // descriptors again
    const start = Date.now()
    while (!answer.includes("ok\n")) {
      assert.ok(Date.now() - start < 5000, `the waiting connection was not served: ${JSON.stringify(answer)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.match(answer, /^HTTP\/1\.1 200 /)
    s.destroy()
  })
})

test("/v1/status: connections and workspaces in memory; a workspace unloads when its last client leaves", { timeout: 30_000 }, async (t) => {
  await withServer(t, { args: ["--warm-workspaces", "0"] }, async (srv, h) => {
    const status = async () => {
      const r = await httpRequest(`${srv.url}/v1/status`)
      assert.equal(r.status, 200)
      return JSON.parse(r.text)
    }
    const before = await status()
    assert.deepEqual(before, { status: "ok", connections: 0, reads_paused: 0, workspaces: 0, storage: { writable: true }, replication: null })
    const token = srv.mintToken({ workspace: "*" })
    const [a] = await h.connectWithInit("st-a", { token })
    const [b] = await h.connectWithInit("st-b", { token })
    const [b2] = await h.connectWithInit("st-b", { token })
    const during = await status()
    assert.equal(during.connections, 3)
    assert.equal(during.workspaces, 2)
    await b.close()
    await b2.close()
    // The server sees the close after the client does: poll briefly.
    let after = await status()
    for (let i = 0; i < 50 && (after.workspaces !== 1 || after.connections !== 1); i++) {
      await new Promise((r) => setTimeout(r, 100))
      after = await status()
    }
    assert.equal(after.connections, 1, "a is still connected")
    assert.equal(after.workspaces, 1, "st-b was unloaded (--warm-workspaces 0); st-a stays")
    await a.close()
  })
})

test("a client that floods ops is read one op at a time under --max-inflight-op-bytes 1: every op stored and broadcast, in order", { timeout: 60_000 }, async (t) => {
  // With a limit below any op, the server stops reading the writer after
  // each op and reads on once that op is durable and broadcast: a lost
  // resume would stall the flood here.
  await withServer(t, { args: ["--max-inflight-op-bytes", "1"] }, async (srv, h) => {
    const N = 500
    const token = srv.mintToken({ workspace: "flood" })
    const [writer] = await h.connectWithInit("flood", { token })
    const [reader] = await h.connectWithInit("flood", { token: srv.mintToken({ workspace: "flood", scope: "read", sub: "reader" }) })
    for (let i = 0; i < N; i++) writer.sendOp(`k${i}`, i)
    const seen = await reader.waitForOps(N, 50_000)
    seen.forEach((m, i) => assertOp(m, `k${i}`, i, `broadcast ${i}`))
    assert.equal((await writer.waitForOps(N, 10_000)).length, N, "the writer gets its own ops back")
    let status = JSON.parse((await httpRequest(`${srv.url}/v1/status`)).text)
    for (let i = 0; i < 50 && status.reads_paused !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100))
      status = JSON.parse((await httpRequest(`${srv.url}/v1/status`)).text)
    }
    assert.equal(status.reads_paused, 0, "reading resumed after the last op")
    const init = await h.initOf("flood")
    assert.equal(Object.keys(init.data).length, N, "every op is in the document")
  })
})

test("etherply put: exit 0 with its own op's broadcast; exit 1 with the server's refusal", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const put = (key, json, scope) =>
      new Promise((resolve) => {
        const url = `${srv.wsUrl}/v1/sync/cli`
        const token = srv.mintToken({ workspace: "cli", scope, sub: "cli" })
        execFile(BIN, ["put", url, key, json, "--token", token], (error, stdout, stderr) =>
          resolve({ code: error ? error.code : 0, stdout, stderr }))
      })
    // Another client sets the same key to the same value, with small
    // timestamps of its own, keeping 200 such ops in flight all the while
    // the command runs (one more for each message it gets): some of them are
    // always queued ahead of the command's op, so their broadcasts reach the
    // command first. The command still prints its own op, stamped with the
    // clock.
    const [other] = await h.connectWithInit("cli", { token: srv.mintToken({ workspace: "cli", sub: "other" }) })
    let stamp = 0
    let flooding = true
    const sendOne = () => other.sendOp("k", { n: 1 }, ++stamp)
    other.ws.on("message", () => { if (flooding) sendOne() })
    for (let i = 0; i < 200; i++) sendOne()
    const before = Date.now() * 1000
    const ok = await put("k", '{"n":1.0}', "read write").finally(() => { flooding = false })
    const after = Date.now() * 1000
    assert.equal(ok.code, 0, ok.stderr)
    const line = JSON.parse(ok.stdout)
    assert.equal(line.type, "op")
    assert.equal(line.payload.key, "k")
    assert.deepEqual(line.payload.value, { n: 1 }, "1.0 comes back as 1 and is taken for the op's own")
    assert.ok(line.payload.timestamp >= before && line.payload.timestamp <= after,
      `the command's own op (stamped ${line.payload.timestamp}), not one of the other client's (1..${stamp})`)

    const refused = await put("k", "2", "read")
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /the server answered 403: /)
    assert.equal(refused.stdout, "")
    const init = await h.initOf("cli")
    assert.deepEqual(init.data, { k: { n: 1 } }, "the refused op changed nothing")
  })
})

test("etherply put: a message over the server's --max-message-bytes, closed with 1009, says so", { timeout: 30_000 }, async (t) => {
  await withServer(t, { args: ["--max-message-bytes", "100"] }, async (srv, h) => {
    const url = `${srv.wsUrl}/v1/sync/cli`
    const token = srv.mintToken({ workspace: "cli", sub: "cli" })
    const r = await new Promise((resolve) =>
      execFile(BIN, ["put", url, "k", JSON.stringify("x".repeat(200)), "--token", token], (error, stdout, stderr) =>
        resolve({ code: error ? error.code : 0, stdout, stderr })))
    assert.equal(r.code, 1)
    assert.match(r.stderr, /closed by the server \(code 1009: a message larger than the server takes \(serve --max-message-bytes\)\)/)
    assert.deepEqual((await h.initOf("cli")).data, {})
  })
})

test("etherply token and serve refuse what they cannot do: an unknown or empty --scope, --threads over 256 (exit 2, with the reason)", { timeout: 30_000 }, async () => {
  const run = (args) =>
    new Promise((resolve) => {
      execFile(BIN, args, { env: { ...process.env, ETHERPLY_JWT_SECRET: "a development secret of 32 bytes!" } }, (error, stdout, stderr) =>
        resolve({ code: error ? error.code : 0, stdout, stderr }))
    })
  for (const [scope, reason] of [["superuser", /unknown scope "superuser"/], ["read superuser", /unknown scope "superuser"/], ["", /--scope names no scope/]]) {
    const r = await run(["token", "--sub", "a", "--workspace", "x", "--scope", scope])
    assert.equal(r.code, 2, `--scope ${JSON.stringify(scope)}: ${r.stderr}`)
    assert.match(r.stderr, reason)
    assert.equal(r.stdout, "", "no token printed")
  }
  const ok = await run(["token", "--sub", "a", "--workspace", "x", "--scope", "read  admin"])
  assert.equal(ok.code, 0, ok.stderr)
  assert.equal(JSON.parse(Buffer.from(ok.stdout.trim().split(".")[1], "base64url")).scope, "read write admin")
  // 2^32 and 2^31 once became 0 and INT_MIN when narrowed before the check.
  for (const n of ["100000", "4294967296", "2147483648", "2769289216", "0"]) {
    const threads = await run(["serve", "--threads", n, "--listen", "127.0.0.1:0", "--data-dir", "/nonexistent/never-made"])
    assert.equal(threads.code, 2, `--threads ${n}: ${threads.stderr}`)
    assert.match(threads.stderr, /--threads wants an integer from 1 to 256/)
  }
})
