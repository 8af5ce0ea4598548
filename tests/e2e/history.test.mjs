// End-to-end tests of the history API (/v1/history/{workspace}: list,
// state, undo, restore; doc/history_api.md) against the real `etherply
// serve`, checked against the reference Automerge (@automerge/automerge
// 3.5.0) loaded from the /doc export.
//
// Run: ETHERPLY_BIN=build/etherply node --test --test-concurrency=1 tests/e2e/
// Single file: ETHERPLY_BIN=build/etherply node --test tests/e2e/history.test.mjs
// Helpers: lib/history.mjs. The API: doc/history_api.md.
import assert from "node:assert/strict"
import net from "node:net"
import { test } from "node:test"
import * as A from "@automerge/automerge"

import {
  HEX64,
  assertError,
  flood,
  fromHex,
  historyApi,
  refChanges,
  refNow,
  refOps,
  refState,
  sorted,
  withServer,
} from "./lib/history.mjs"
import { httpRequest } from "./lib/server.mjs"

const nowMicros = () => Date.now() * 1000
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

/** Sends one op on `c` and waits for its own echo; returns the echoed op. */
const put = (c, ...args) => c.put(...args)

/** The next op message on `c` (skipping other types), via its next() cursor. */
const nextOp = (c, timeoutMs = 5000) => c.nextOfType("op", timeoutMs)

/** Skips c's next() cursor past everything received so far. */
const drain = (c) => {
  c.cursor = c.messages.length
}

/** Waits until `c` has received `count` ops in all, then skips past them. */
async function settle(c, count) {
  await c.waitForOps(count, 5000)
  drain(c)
}

/** Asserts a successful undo/restore answer; returns its JSON. */
function assertEdit(r, what, { undo = true } = {}) {
  assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`)
  const j = r.json
  assert.ok(j, `${what}: JSON body`)
  assert.ok(j.change === null || HEX64.test(j.change), `${what}: change is a hash or null`)
  assert.ok(Array.isArray(j.heads) && j.heads.length >= 1, `${what}: heads`)
  for (const hd of j.heads) assert.match(hd, HEX64)
  if (undo) assert.ok(Array.isArray(j.skipped), `${what}: skipped is an array`)
  else assert.equal(j.skipped, undefined, `${what}: restore has no skipped`)
  if (j.change !== null) assert.deepEqual(j.heads, [j.change], `${what}: the new change is the only head`)
  return j
}

/** Every change of a workspace, oldest first, by listing at `limit`. */
async function historyOf(api, ws, limit = 1000) {
  const { changes } = await api.listAll(ws, limit)
  return changes.reverse()
}

// --- history vs the reference ---------------------------------------------------------------

test("history: the listing equals the reference's A.getHistory (hash, actor, seq, deps, time, message, ops), authors are the writers' subs, state at heads equals A.view", { timeout: 60_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-ref"
    const subs = ["alice", "bob", "carol"]
    const cl = {}
    for (const s of subs) cl[s] = (await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: s }) }))[0]
    const writes = [
      ["alice", "title", "Hello"],
      ["bob", "cfg", { theme: "dark", sizes: [1, 2, { deep: true }], nested: { a: { b: null } } }],
      ["carol", "n", 42],
      ["alice", "title", "Hello, world"],
      ["bob", "f", 1.5],
      ["carol", "list", ["x", ["y", "z"], { k: "v" }]],
      ["alice", "n", null],
      ["bob", "cfg", { theme: "light" }],
    ]
    const opTimes = []
    for (const [s, k, v] of writes) opTimes.push((await put(cl[s], k, v)).payload.timestamp)
    const api = historyApi(srv, srv.mintToken({ workspace: ws, sub: "dave" }))
    let hist = await historyOf(api, ws)
    assert.equal(hist.length, writes.length, "one change per op")
    // dave undoes the list's creation (a key that did not exist before: a
    // delete), erin restores the state after change 3 (deletes f, re-puts
    // title, n and cfg with nested objects).
    const u = assertEdit(await api.undo(ws, hist[5].hash), "undo of list")
    assert.deepEqual(u.skipped, [])
    const erin = historyApi(srv, srv.mintToken({ workspace: ws, sub: "erin" }))
    const r = assertEdit(await erin.restore(ws, [hist[2].hash]), "restore", { undo: false })
    assert.notEqual(r.change, null)

    const authors = [...writes.map((w) => w[0]), "dave", "erin"]
    // Pages of 3, concatenated and reversed, against A.getHistory.
    hist = await historyOf(api, ws, 3)
    const doc = await h.loadDoc(ws)
    const ref = refChanges(doc)
    assert.equal(hist.length, ref.length, "as many changes as the reference")
    assert.equal(hist.length, authors.length)
    const ops = refOps(ref)
    for (let i = 0; i < ref.length; i++) {
      const s = hist[i]
      const rc = ref[i]
      const at = `change #${i}`
      assert.deepEqual(Object.keys(s).sort(), ["actor", "author", "deps", "hash", "message", "ops", "seq", "time"], `${at}: fields`)
      assert.equal(s.hash, rc.hash, `${at}: hash`)
      assert.equal(s.actor, rc.actor, `${at}: actor`)
      assert.equal(s.seq, rc.seq, `${at}: seq`)
      assert.deepEqual(s.deps, rc.deps, `${at}: deps`)
      assert.equal(s.time, rc.time, `${at}: time`)
      assert.equal(s.message, rc.message ?? null, `${at}: message`)
      assert.equal(s.author, authors[i], `${at}: author is the writer's token sub`)
      if (rc.author !== undefined) assert.equal(fromHex(rc.author), s.author, `${at}: author equals the reference's decoded author bytes`)
      assert.deepEqual(s.ops, ops[i], `${at}: ops in readable form`)
    }
    for (let i = 0; i < writes.length; i++)
      assert.equal(hist[i].time, Math.floor(opTimes[i] / 1e6), `change #${i}: time is the op's timestamp in seconds`)
    // One actor per sub: equal subs, equal actors; distinct subs, distinct actors.
    const actorOf = {}
    hist.forEach((c, i) => {
      actorOf[authors[i]] ??= c.actor
      assert.equal(c.actor, actorOf[authors[i]], `change #${i}: ${authors[i]}'s actor`)
    })
    assert.equal(new Set(Object.values(actorOf)).size, Object.keys(actorOf).length, "one actor per sub")

    // Readable ops: nested paths, nulls, list elements, deletes.
    assert.deepEqual(hist[0].ops, [{ action: "set", path: [], key: "title", value: "Hello" }])
    assert.ok(hist[1].ops.some((o) => same(o, { action: "set", path: ["cfg", "nested", "a"], key: "b", value: null })), "nested path of cfg.nested.a.b")
    const deepSet = hist[1].ops.find((o) => o.key === "deep")
    assert.deepEqual(deepSet, { action: "set", path: ["cfg", "sizes", 2], key: "deep", value: true }, "a map inside a list: index in the path")
    assert.deepEqual(hist[2].ops, [{ action: "set", path: [], key: "n", value: 42 }])
    assert.deepEqual(hist[4].ops, [{ action: "set", path: [], key: "f", value: 1.5 }])
    assert.deepEqual(hist[6].ops, [{ action: "set", path: [], key: "n", value: null }])
    assert.deepEqual(hist[8].ops, [{ action: "del", path: [], key: "list" }], "undo of a new key is a delete")
    assert.ok(hist[9].ops.some((o) => same(o, { action: "del", path: [], key: "f" })), "restore deletes f")
    assert.ok(hist[9].ops.some((o) => same(o, { action: "set", path: [], key: "n", value: 42 })), "restore re-puts n")
    assert.ok(hist[9].ops.some((o) => same(o, { action: "set", path: ["cfg", "nested", "a"], key: "b", value: null })), "restore re-puts cfg with nested paths")
    assert.equal(hist[9].ops.filter((o) => o.action === "del").map((o) => o.key).sort().join(), "f", "restore deletes exactly f (list is already gone)")

    // State at every change, and at sets of heads, equals A.view.
    for (let i = 0; i < hist.length; i++) {
      const s = await api.state(ws, [hist[i].hash])
      assert.equal(s.status, 200, `state at #${i}: ${s.text}`)
      assert.deepEqual(s.json.data, refState(doc, [hist[i].hash]), `state at change #${i} equals A.view`)
      assert.deepEqual(s.json.heads, [hist[i].hash])
    }
    for (const pick of [[2, 5], [0, 7], [9, 3, 9]]) {
      const heads = pick.map((i) => hist[i].hash)
      const s = await api.state(ws, heads)
      assert.equal(s.status, 200, `state at ${pick}: ${s.text}`)
      assert.deepEqual(s.json.data, refState(doc, heads), `state at changes ${pick} equals A.view`)
      assert.deepEqual(s.json.heads, sorted(new Set(heads)), "heads: the given ones, sorted, without repeats")
    }
    // Now, and after the restore: equal to the state at change #2.
    const init = await h.initOf(ws)
    assert.deepEqual(init.data, refNow(doc))
    assert.deepEqual(init.data, refState(doc, [hist[2].hash]), "after the restore the workspace equals its state at change #2")
    const s = await api.state(ws, init.heads)
    assert.deepEqual(s.json.data, init.data, "state at the current heads equals init")
  })
})

test("state at heads: an unknown head is 404, malformed heads are 400, both JSON errors", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-heads"
    const [c] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws }) })
    await put(c, "a", 1)
    const api = historyApi(srv, srv.mintToken({ workspace: ws, scope: "read" }))
    const [head] = (await h.initOf(ws)).heads
    const unknown = "ab".repeat(32)
    const r404 = await api.state(ws, [unknown])
    assertError(r404, 404, "unknown head", new RegExp(unknown))
    assertError(await api.state(ws, [head, unknown]), 404, "a known and an unknown head")
    const empty = historyApi(srv, srv.mintToken({ workspace: "hist-empty", scope: "read" }))
    assertError(await empty.state("hist-empty", [unknown]), 404, "a head in a workspace with no changes")
    for (const bad of ["xyz", head.slice(1), head + "0", "g" + head.slice(1), `${head},,${head}`, `,${head}`, `${head},`, "", ","]) {
      assertError(await api.state(ws, bad), 400, `heads=${JSON.stringify(bad)}`, /heads must be 64-digit hex change hashes/)
    }
    assertError(await api.get(`/v1/history/${ws}/state`), 400, "no heads parameter")
    // The control: the right head works.
    const ok = await api.state(ws, [head])
    assert.equal(ok.status, 200)
    assert.deepEqual(ok.json, { data: { a: 1 }, heads: [head] })
  })
})

// --- undo -----------------------------------------------------------------------------------

test("undo: restores the prior value, broadcast to connected clients as op messages (a new key → deleted:true); nothing to do → no change, no broadcast", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-undo"
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    const [reader] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "reader", scope: "read" }) })
    await put(w, "a", "1") // #0
    await put(w, "b", { x: 1 }) // #1
    await put(w, "a", "2") // #2
    await put(w, "c", "new") // #3
    await put(w, "b", { x: 2, y: [1] }) // #4
    await reader.waitForOps(5)
    drain(reader)
    drain(w)
    const api = historyApi(srv, srv.mintToken({ workspace: ws, sub: "dave" }))
    let hist = await historyOf(api, ws)
    assert.equal(hist.length, 5)

    // Undo #2 (a: "1" → "2"): a is "1" again.
    let t0 = nowMicros()
    let u = assertEdit(await api.undo(ws, hist[2].hash), "undo #2")
    let t1 = nowMicros()
    assert.deepEqual(u.skipped, [])
    assert.notEqual(u.change, null)
    for (const c of [reader, w]) {
      const m = await nextOp(c)
      assert.deepEqual(Object.keys(m.payload).sort(), ["key", "timestamp", "value"])
      assert.equal(m.payload.key, "a")
      assert.equal(m.payload.value, "1")
      assert.ok(Number.isSafeInteger(m.payload.timestamp) && m.payload.timestamp >= t0 - 1_000_000 && m.payload.timestamp <= t1 + 1_000_000, `timestamp ${m.payload.timestamp} is the server's time in µs`)
    }
    let init = await h.initOf(ws)
    assert.deepEqual(init.data, { a: "1", b: { x: 2, y: [1] }, c: "new" })
    assert.deepEqual(init.heads, u.heads, "the answer's heads are the workspace's heads")

    // Undo #3 (c did not exist before): c is deleted, sent as value null + deleted true.
    u = assertEdit(await api.undo(ws, hist[3].hash), "undo #3")
    assert.deepEqual(u.skipped, [])
    for (const c of [reader, w]) {
      const m = await nextOp(c)
      assert.equal(m.payload.key, "c")
      assert.equal(m.payload.value, null)
      assert.equal(m.payload.deleted, true)
      assert.ok(Number.isSafeInteger(m.payload.timestamp))
    }
    init = await h.initOf(ws)
    assert.ok(!("c" in init.data), "c is gone (not null)")

    // Undo #4 (b: {x:1} → {x:2,y:[1]}): b is the object {x:1} again, x an int.
    u = assertEdit(await api.undo(ws, hist[4].hash), "undo #4")
    const mb = await nextOp(reader)
    assert.deepEqual(mb.payload.value, { x: 1 })
    assert.equal(mb.payload.key, "b")
    await nextOp(w)
    init = await h.initOf(ws)
    assert.deepEqual(init.data, { a: "1", b: { x: 1 } })
    const doc = await h.loadDoc(ws)
    const bType = A.getBackend(doc).getWithType(A.getBackend(doc).getWithType("_root", "b")[1], "x")
    assert.deepEqual([bType[0], Number(bType[1])], ["int", 1], "x is re-put as an int")
    assert.deepEqual(refNow(doc), init.data, "the reference agrees")

    // Undo #0 (a): a has been set since (#2 and the undo of #2): skipped, no change, no broadcast.
    const headsBefore = init.heads
    u = assertEdit(await api.undo(ws, hist[0].hash), "undo #0")
    assert.deepEqual(u.skipped, ["a"])
    assert.equal(u.change, null, "nothing to do: no change")
    assert.deepEqual(u.heads, headsBefore, "heads unchanged")
    await put(w, "marker", 1)
    const mk = await nextOp(reader)
    assert.equal(mk.payload.key, "marker", "no op was broadcast for the skipped undo")

    // The history shows each undo as a change by dave, newest first.
    hist = await historyOf(api, ws)
    assert.equal(hist.length, 5 + 3 + 1, "3 undo changes + the marker; none for the empty undo")
    assert.deepEqual(hist.slice(5, 8).map((c) => c.author), ["dave", "dave", "dave"])
    assert.deepEqual(hist[5].ops, [{ action: "set", path: [], key: "a", value: "1" }])
    assert.deepEqual(hist[6].ops, [{ action: "del", path: [], key: "c" }])
    // Every state the undo changes produced equals the reference's view.
    const doc2 = await h.loadDoc(ws)
    for (const c of hist) {
      const s = await api.state(ws, [c.hash])
      assert.deepEqual(s.json.data, refState(doc2, [c.hash]))
    }

    // A change that put a key back to the value it showed (an op is always
    // a change): undoing it has nothing to do, skips nothing, and tells no
    // client anything.
    await put(w, "same", 1)
    await put(w, "same", 1)
    await reader.waitUntil(() => reader.ops().filter((m) => m.payload.key === "same").length === 2, 5000, "both ops")
    drain(reader)
    hist = await historyOf(api, ws)
    const count = hist.length
    u = assertEdit(await api.undo(ws, hist[count - 1].hash), "undo of a re-assert")
    assert.equal(u.change, null, "nothing to do: no change")
    assert.deepEqual(u.skipped, [])
    await put(w, "marker2", 1)
    assert.equal((await nextOp(reader)).payload.key, "marker2", "no op was broadcast for the empty undo")
    assert.equal((await historyOf(api, ws)).length, count + 1, "only the marker was stored")
  })
})

test("undo with concurrent writers: keys another writer set since are skipped and left untouched", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-conc"
    const [alice] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    const [bob] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "bob" }) })
    const api = historyApi(srv, srv.mintToken({ workspace: ws, sub: "alice" }))

    // One key: alice sets k, bob sets it after; undoing alice's change skips k.
    await put(alice, "k", "alice")
    await put(bob, "k", "bob")
    let hist = await historyOf(api, ws)
    let u = assertEdit(await api.undo(ws, hist[0].hash), "undo alice's k")
    assert.deepEqual(u.skipped, ["k"])
    assert.equal(u.change, null)
    assert.equal((await h.initOf(ws)).data.k, "bob", "bob's later value is untouched")

    // Several keys: alice writes title and body (heads H), then t2/b2; a
    // restore to H sets both back in one change R. Then bob writes body. An
    // undo of R puts title back to t2 and skips body, which keeps bob's value.
    await put(alice, "title", "t1")
    await put(alice, "body", "b1")
    const H = (await h.initOf(ws)).heads
    await put(alice, "title", "t2")
    await put(alice, "body", "b2")
    const R = assertEdit(await api.restore(ws, H), "restore to H", { undo: false })
    assert.notEqual(R.change, null)
    assert.deepEqual((await h.initOf(ws)).data, { k: "bob", title: "t1", body: "b1" })
    await put(bob, "body", "bob's body")
    drain(bob)
    u = assertEdit(await api.undo(ws, R.change), "undo of the restore")
    assert.deepEqual(u.skipped, ["body"], "body was set by bob since: skipped")
    assert.notEqual(u.change, null, "title still changes")
    const m = await nextOp(bob)
    assert.deepEqual([m.payload.key, m.payload.value], ["title", "t2"])
    assert.deepEqual((await h.initOf(ws)).data, { k: "bob", title: "t2", body: "bob's body" })

    // While bob floods a key, an undo of alice's earlier change to it is
    // skipped; bob's stream is unharmed and his last value stands.
    await put(alice, "hot", "alice")
    hist = await historyOf(api, ws)
    const aliceHot = hist[hist.length - 1]
    assert.deepEqual(aliceHot.ops.map((o) => o.key), ["hot"])
    const before = bob.ops().length
    await put(bob, "hot", "bob-0")
    const N = 200
    for (let i = 1; i < N; i++) bob.sendOp("hot", `bob-${i}`)
    u = assertEdit(await api.undo(ws, aliceHot.hash), "undo of alice's hot during bob's flood")
    assert.deepEqual(u.skipped, ["hot"])
    assert.equal(u.change, null)
    await bob.waitForOps(before + N, 20_000)
    const seen = bob.ops().slice(before).map((o) => o.payload.value)
    assert.deepEqual(seen, Array.from({ length: N }, (_, i) => `bob-${i}`), "bob's ops all arrive, in order, with nothing else on hot")
    assert.equal((await h.initOf(ws)).data.hot, `bob-${N - 1}`)
  })
})

test("undo of an undo, and undo of a restore that deleted a key", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-undo2"
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    const api = historyApi(srv, srv.mintToken({ workspace: ws, sub: "bob" }))
    await put(w, "a", "v1")
    await put(w, "a", "v2")
    let hist = await historyOf(api, ws)
    const u1 = assertEdit(await api.undo(ws, hist[1].hash), "undo")
    assert.equal((await h.initOf(ws)).data.a, "v1")
    // The HTTP answer may come before the broadcast reaches w's socket.
    await settle(w, 3)
    const u2 = assertEdit(await api.undo(ws, u1.change), "undo of the undo")
    assert.deepEqual(u2.skipped, [])
    assert.notEqual(u2.change, null)
    assert.deepEqual((await nextOp(w)).payload.value, "v2")
    assert.equal((await h.initOf(ws)).data.a, "v2", "the undo of the undo brings v2 back")
    const u3 = assertEdit(await api.undo(ws, u2.change), "undo of the undo of the undo")
    assert.notEqual(u3.change, null)
    assert.deepEqual(u3.skipped, [])
    assert.equal((await h.initOf(ws)).data.a, "v1")
    // An older undo is now shadowed by later ones: skipped.
    assert.deepEqual(assertEdit(await api.undo(ws, u1.change), "undo of the first undo again").skipped, ["a"])

    // A restore to the very first change deletes the key added since; its undo brings it back.
    await put(w, "extra", { deep: [1, { z: "q" }] })
    hist = await historyOf(api, ws)
    const r = assertEdit(await api.restore(ws, [hist[0].hash]), "restore to #0", { undo: false })
    assert.deepEqual((await h.initOf(ws)).data, { a: "v1" }, "extra deleted")
    await settle(w, 7) // 2 puts, 3 undos, extra, the restore's delete of extra
    const u4 = assertEdit(await api.undo(ws, r.change), "undo of the restore")
    assert.deepEqual(u4.skipped, [])
    const m = await nextOp(w)
    assert.deepEqual(m.payload, { key: "extra", value: { deep: [1, { z: "q" }] }, timestamp: m.payload.timestamp })
    assert.deepEqual((await h.initOf(ws)).data, { a: "v1", extra: { deep: [1, { z: "q" }] } })
    const doc = await h.loadDoc(ws)
    assert.deepEqual(refNow(doc), (await h.initOf(ws)).data)
  })
})

// --- restore --------------------------------------------------------------------------------

test("restore: the workspace equals its state at the old heads, broadcast (deletes as deleted:true), in the history; restoring the current heads is no change", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-restore"
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    const [reader] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "reader", scope: "read" }) })
    await put(w, "a", 1)
    await put(w, "obj", { p: [1, 2], q: { r: "s" } })
    await put(w, "same", "unchanged")
    const old = await h.initOf(ws)
    await put(w, "a", 2)
    await put(w, "obj", null)
    await put(w, "added", "later")
    await put(w, "added2", [1])
    await reader.waitForOps(7)
    drain(reader)
    const api = historyApi(srv, srv.mintToken({ workspace: ws, sub: "restorer" }))
    const oldState = await api.state(ws, old.heads)
    assert.deepEqual(oldState.json.data, old.data)

    const r = assertEdit(await api.restore(ws, old.heads), "restore", { undo: false })
    assert.notEqual(r.change, null)
    const now = await h.initOf(ws)
    assert.deepEqual(now.data, old.data, "the workspace equals its state at the old heads")
    assert.deepEqual(now.heads, r.heads)
    assert.deepEqual((await api.state(ws, r.heads)).json.data, oldState.json.data)
    // Broadcast: one op per key it set or deleted, nothing for "same".
    const got = {}
    for (let i = 0; i < 4; i++) {
      const m = await nextOp(reader)
      got[m.payload.key] = m.payload
    }
    assert.deepEqual(Object.keys(got).sort(), ["a", "added", "added2", "obj"])
    assert.equal(got.a.value, 1)
    assert.deepEqual(got.obj.value, { p: [1, 2], q: { r: "s" } })
    for (const k of ["added", "added2"]) {
      assert.equal(got[k].value, null)
      assert.equal(got[k].deleted, true)
    }
    assert.equal(got.a.deleted, undefined)
    assert.equal(got.a.timestamp, got.obj.timestamp, "one change, one timestamp")
    // In the history, by the restorer; the reference agrees.
    const hist = await historyOf(api, ws)
    const last = hist[hist.length - 1]
    assert.equal(last.hash, r.change)
    assert.equal(last.author, "restorer")
    assert.deepEqual(last.ops.filter((o) => o.action === "del").map((o) => o.key).sort(), ["added", "added2"])
    const doc = await h.loadDoc(ws)
    assert.deepEqual(refNow(doc), old.data)
    assert.deepEqual(refState(doc, old.heads), old.data)

    // Restoring the current heads changes nothing: no change, no broadcast.
    const r2 = assertEdit(await api.restore(ws, now.heads), "restore to now", { undo: false })
    assert.equal(r2.change, null)
    assert.deepEqual(r2.heads, now.heads)
    await put(w, "marker", true)
    assert.equal((await nextOp(reader)).payload.key, "marker", "nothing broadcast for an empty restore")
    // Restore to an unknown head: 404, nothing changes.
    const before = await h.initOf(ws)
    assertError(await api.restore(ws, ["cd".repeat(32)]), 404, "restore to an unknown head")
    assertError(await api.restore(ws, [before.heads[0], "cd".repeat(32)]), 404, "restore to a known and an unknown head")
    assert.deepEqual(await h.initOf(ws), before)
  })
})

test("restore and undo put values back with their types, as the reference reads them: a float JSON shows as an integer stays a float of the same value, -0 stays -0", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-types"
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    // Sent as JSON text: a float the client wrote as such.
    const values = { whole: "2.0", negzero: "-0.0", big: "7.2057594037927933e16", nested: '[1.0,{"z":-0.0}]' }
    let n = 0
    for (const [key, text] of Object.entries(values)) {
      w.sendRaw(`{"type":"op","payload":{"key":"${key}","value":${text}}}`)
      n++
    }
    await settle(w, n)
    // The reference's low-level read: [type, value] (the proxy shows numbers only).
    const withType = (doc, key) => A.getBackend(doc).getWithType("_root", key)
    const typed = (doc) => {
      const d = A.toJS(doc)
      return {
        whole: withType(doc, "whole"),
        negzero: withType(doc, "negzero"),
        big: withType(doc, "big"),
        nested: [Object.is(d.nested[0], 1), Object.is(d.nested[1].z, -0)],
      }
    }
    const original = typed(await h.loadDoc(ws))
    assert.deepEqual(original.whole, ["f64", 2])
    assert.ok(Object.is(original.negzero[1], -0) && original.negzero[0] === "f64", `${original.negzero}`)
    assert.deepEqual(original.big, ["f64", 72057594037927936])
    const then = await h.initOf(ws)
    const api = historyApi(srv, srv.mintToken({ workspace: ws, sub: "restorer" }))
    for (const key of Object.keys(values)) await put(w, key, "changed")
    assertEdit(await api.restore(ws, then.heads), "restore", { undo: false })
    const restored = typed(await h.loadDoc(ws))
    assert.deepEqual(restored.whole, original.whole)
    assert.ok(Object.is(restored.negzero[1], -0) && restored.negzero[0] === "f64", `restored -0: ${restored.negzero}`)
    assert.deepEqual(restored.big, original.big)
    assert.deepEqual(restored.nested, original.nested)

    // Undo of a change that overwrote them puts them back the same way.
    for (const key of Object.keys(values)) await put(w, key, "again")
    const hist = await historyOf(api, ws)
    const u = assertEdit(await api.undo(ws, hist[hist.length - 1].hash), "undo of the last put")
    assert.deepEqual(u.skipped, [])
    const undone = await h.loadDoc(ws)
    assert.equal(withType(undone, "nested")[0], "list")
    assert.deepEqual(typed(undone).nested, original.nested)
  })
})

// --- pagination -----------------------------------------------------------------------------

test("pagination over 3,000 changes: limit 1000 and 7, nothing missing or repeated, next null at the end, cursors stable as changes arrive", { timeout: 90_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-pages"
    const N = 3000
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "flood" }) })
    await flood(w, N, (i) => [`k${i % 50}`, i], 40_000)
    const api = historyApi(srv, srv.mintToken({ workspace: ws, scope: "read" }))

    const big = await api.listAll(ws, 1000)
    assert.equal(big.pages, 3)
    const small = await api.listAll(ws, 7)
    assert.equal(small.pages, Math.ceil(N / 7))
    for (const [name, res] of [["limit 1000", big], ["limit 7", small]]) {
      const hashes = res.changes.map((c) => c.hash)
      assert.equal(hashes.length, N, `${name}: ${N} changes`)
      assert.equal(new Set(hashes).size, N, `${name}: no change repeated`)
      assert.deepEqual(res.changes.map((c) => c.seq), Array.from({ length: N }, (_, i) => N - i), `${name}: newest first (seq ${N} down to 1)`)
    }
    assert.deepEqual(small.changes.map((c) => c.hash), big.changes.map((c) => c.hash), "both walks list the same changes in the same order")
    const doc = await h.loadDoc(ws)
    assert.deepEqual(big.changes.map((c) => c.hash).reverse(), refChanges(doc).map((c) => c.hash), "reversed, the listing is A.getHistory")
    assert.deepEqual(big.changes[0].ops, [{ action: "set", path: [], key: `k${(N - 1) % 50}`, value: N - 1 }])
    assert.equal(big.changes[N - 1].deps.length, 0)
    // The default limit is 100.
    const dflt = await api.list(ws)
    assert.equal(dflt.json.changes.length, 100)
    assert.equal(dflt.json.next, big.changes[99].hash)

    // Stable cursors: take page 1, add changes, then page 2 is unchanged.
    const p1 = await api.list(ws, { limit: 7 })
    await flood(w, 10, (i) => [`new${i}`, i])
    const p2 = await api.list(ws, { limit: 7, cursor: p1.json.next })
    assert.deepEqual(p2.json.changes.map((c) => c.hash), small.changes.slice(7, 14).map((c) => c.hash), "page 2 is the same after new changes")
    const fresh = await api.list(ws, { limit: 10 })
    assert.deepEqual(fresh.json.changes.map((c) => c.seq), Array.from({ length: 10 }, (_, i) => N + 10 - i), "new changes come first in a fresh listing")
    assert.equal(fresh.json.next, fresh.json.changes[9].hash)
    const after = await api.list(ws, { limit: 5, cursor: fresh.json.next })
    assert.deepEqual(after.json.changes.map((c) => c.hash), big.changes.slice(0, 5).map((c) => c.hash))
    // The oldest change as cursor: an empty last page.
    const end = await api.list(ws, { limit: 7, cursor: big.changes[N - 1].hash })
    assert.equal(end.status, 200)
    assert.deepEqual(end.json, { changes: [], next: null })

    // Bad limits and cursors: 400.
    for (const l of ["0", "1001", "-1", "abc", "", "1.5", "99999999999999999999", "5abc", "%205", "%2B5"])
      assertError(await api.get(`/v1/history/${ws}?limit=${l}`), 400, `limit=${l}`)
    assert.equal((await api.list(ws, { limit: 1000 })).json.changes.length, 1000, "limit 1000 is allowed")
    for (const c of ["garbage", "", big.changes[0].hash.slice(2), "ef".repeat(32)])
      assertError(await api.list(ws, { limit: 7, cursor: c }), 400, `cursor=${JSON.stringify(c)}`)
    // A cursor of another workspace names no change here.
    assertError(await historyApi(srv, srv.mintToken({ workspace: "hist-other" })).list("hist-other", { cursor: big.changes[5].hash }), 400, "cursor of another workspace")
  })
})

test("history of a workspace with no changes is empty", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv) => {
    const api = historyApi(srv, srv.mintToken({ workspace: "hist-none", scope: "read" }))
    const r = await api.list("hist-none")
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.json, { changes: [], next: null })
    assert.match(r.headers.get("content-type"), /application\/json/)
  })
})

// --- tokens and errors ----------------------------------------------------------------------

test("tokens and errors: read scope reads, write scope changes (403), no or bad token 401, wrong workspace or no scope 401, bad bodies 400, unknown change 404, wrong method 405", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-sec"
    const [w] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    await put(w, "a", 1)
    await put(w, "a", 2)
    const init = await h.initOf(ws)
    const writer = historyApi(srv, srv.mintToken({ workspace: ws, sub: "alice" }))
    const hist = await historyOf(writer, ws)
    const change = hist[1].hash
    const routes = (api) => [
      ["GET list", () => api.list(ws)],
      ["GET state", () => api.state(ws, init.heads)],
      ["POST undo", () => api.undo(ws, change)],
      ["POST restore", () => api.restore(ws, [hist[0].hash])],
    ]

    // Read-only token: GETs work, POSTs 403.
    const ro = historyApi(srv, srv.mintToken({ workspace: ws, sub: "ro", scope: "read" }))
    for (const [name, f] of routes(ro)) {
      const r = await f()
      if (name.startsWith("GET")) assert.equal(r.status, 200, `read-only ${name}: ${r.text}`)
      else assertError(r, 403, `read-only ${name}`)
    }
    // ?token= works for reads, as on the WebSocket.
    const q = await httpRequest(`${srv.url}/v1/history/${ws}?token=${srv.mintToken({ workspace: ws, scope: "read" })}`)
    assert.equal(q.status, 200)
    // No token and bad tokens: 401 with WWW-Authenticate.
    for (const [label, api] of [
      ["no token", historyApi(srv, undefined)],
      ["alg none", historyApi(srv, srv.forge("alg-none", { workspace: ws }))],
      ["wrong secret", historyApi(srv, srv.forge("wrong-secret", { workspace: ws }))],
      ["expired", historyApi(srv, srv.forge("expired", { workspace: ws }))],
    ]) {
      for (const [name, f] of routes(api)) {
        const r = await f()
        assertError(r, 401, `${label}: ${name}`)
        assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/, `${label}: ${name}: WWW-Authenticate`)
      }
    }
    // Valid tokens that do not cover the workspace, or grant no scope, are
    // not valid here: 401 too.
    for (const [label, api] of [
      ["other workspace", historyApi(srv, srv.mintToken({ workspace: "elsewhere" }))],
      ["forged other workspace", historyApi(srv, srv.forge("wrong-workspace", { workspace: ws }))],
      ["no read scope", historyApi(srv, srv.forge("no-read-scope", { workspace: ws }))],
    ]) {
      for (const [name, f] of routes(api)) {
        const r = await f()
        assertError(r, 401, `${label}: ${name}`)
        assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/, `${label}: ${name}: WWW-Authenticate`)
      }
    }
    assert.deepEqual(await h.initOf(ws), init, "nothing refused changed the workspace")

    // Bad bodies: 400.
    const undoBodies = ["", "{", "not json", "[]", "null", "\"x\"", "{}", '{"change":123}', '{"change":null}', '{"change":"xyz"}', `{"change":"${change.slice(1)}"}`, `{"change":["${change}"]}`, `{"heads":["${change}"]}`]
    for (const b of undoBodies) assertError(await writer.post(`/v1/history/${ws}/undo`, b), 400, `undo body ${JSON.stringify(b)}`)
    const restoreBodies = ["", "{", "[]", "{}", '{"heads":[]}', '{"heads":"abc"}', `{"heads":"${change}"}`, '{"heads":[1]}', `{"heads":["${change}", 7]}`, `{"heads":["${change}","zz"]}`, `{"change":"${change}"}`]
    for (const b of restoreBodies) assertError(await writer.post(`/v1/history/${ws}/restore`, b), 400, `restore body ${JSON.stringify(b)}`)
    // Unknown change or head: 404.
    assertError(await writer.undo(ws, "01".repeat(32)), 404, "undo of an unknown change")
    assertError(await historyApi(srv, srv.mintToken({ workspace: "hist-sec-empty" })).undo("hist-sec-empty", "01".repeat(32)), 404, "undo in a workspace with no changes")
    assertError(await writer.restore(ws, ["01".repeat(32)]), 404, "restore to an unknown head")
    assert.deepEqual(await h.initOf(ws), init, "nothing refused changed the workspace")
    // Wrong methods: 405; unknown sub-paths 404; bad workspace IDs 400.
    assertError(await writer.get(`/v1/history/${ws}/undo`), 405, "GET undo")
    assertError(await writer.get(`/v1/history/${ws}/restore`), 405, "GET restore")
    assertError(await writer.post(`/v1/history/${ws}`, "{}"), 405, "POST list")
    assertError(await writer.post(`/v1/history/${ws}/state?heads=${change}`, "{}"), 405, "POST state")
    assertError(await writer.get(`/v1/history/${ws}/nope`), 404, "unknown sub-path")
    assertError(await writer.get(`/v1/history/${ws}/state/x`), 404, "too deep")
    assertError(await writer.get(`/v1/history/%24`), 400, "bad workspace ID")
    assertError(await writer.post(`/v1/history/${"x".repeat(129)}/undo`, { change }), 400, "workspace ID too long")
    // The control: the writer's undo works.
    const u = assertEdit(await writer.undo(ws, change), "the writer's undo")
    assert.deepEqual(u.skipped, [])
    assert.equal((await h.initOf(ws)).data.a, 1)
  })
})

/** Sends `request` over raw TCP; resolves everything received until the server closes (or `waitMs`). */
function rawHttp(port, request, waitMs = 3000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1")
    let data = ""
    const timer = setTimeout(() => {
      sock.destroy()
      resolve({ data, closed: false })
    }, waitMs)
    sock.on("data", (d) => (data += d.toString()))
    sock.on("close", () => {
      clearTimeout(timer)
      resolve({ data, closed: true })
    })
    sock.on("error", (e) => {
      clearTimeout(timer)
      if (data) resolve({ data, closed: true, error: e.code })
      else reject(e)
    })
    sock.write(request)
  })
}

test("a request that announces a body over the 1 MiB limit gets 413 with a JSON error, and the server keeps serving", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv) => {
    const ws = "hist-big"
    const token = srv.mintToken({ workspace: ws })
    // Only the headers: Content-Length announces 2 MiB, which is over the limit.
    const r = await rawHttp(
      srv.port,
      `POST /v1/history/${ws}/undo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${2 << 20}\r\n\r\n`,
    )
    const [head, body] = r.data.split("\r\n\r\n")
    assert.match(head ?? "", /^HTTP\/1\.1 413 /, `answer: ${r.data.slice(0, 200)}`)
    const json = JSON.parse(body)
    assert.equal(json.error.code, 413)
    assert.equal(typeof json.error.message, "string")
    assert.equal((await historyApi(srv, token).list(ws)).status, 200, "the server keeps serving")
  })
})

test("a request that cannot be parsed gets 400 with a JSON error, headers over 8 KiB get 431; nothing is changed and the server keeps serving", { timeout: 30_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-malformed"
    const token = srv.mintToken({ workspace: ws })
    const post = (headers, body = "{}") => `POST /v1/history/${ws}/undo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${headers}\r\n${body}`
    const cases = [
      ["Content-Length not a number", post("Content-Length: abc\r\n")],
      ["two different Content-Lengths", post("Content-Length: 2\r\nContent-Length: 3\r\n")],
      ["a header without a colon", post("Content-Length: 2\r\nNoColonHere\r\n")],
      ["a garbage request line", "HELLO\r\n\r\n"],
      ["HTTP/2.0", `GET /v1/history/${ws} HTTP/2.0\r\nHost: x\r\n\r\n`],
      ["a bad chunk size", post("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n")],
    ]
    for (const [what, request] of cases) {
      const r = await rawHttp(srv.port, request)
      const [head, body] = r.data.split("\r\n\r\n")
      assert.match(head ?? "", /^HTTP\/1\.1 400 /, `${what}: ${r.data.slice(0, 200)}`)
      const json = JSON.parse(body)
      assert.equal(json.error.code, 400, what)
      assert.match(json.error.message, /^malformed HTTP request: /, what)
      assert.equal(r.closed, true, `${what}: the connection is closed after the answer`)
    }
    const big = await rawHttp(srv.port, `GET /v1/history/${ws} HTTP/1.1\r\nHost: x\r\nX-Big: ${"x".repeat(9_000)}\r\n\r\n`)
    assert.match(big.data, /^HTTP\/1\.1 431 /, big.data.slice(0, 200))
    assert.match(big.data, /request line and headers over 8192 bytes/)
    // Headers under the limit are fine: a /state query of 100 heads is read
    // (and answered 404 for heads this workspace lacks).
    const heads = Array.from({ length: 100 }, (_, i) => i.toString(16).padStart(64, "0")).join(",")
    assertError(await historyApi(srv, token).get(`/v1/history/${ws}/state?heads=${heads}`), 404, "100 unknown heads")
    assert.deepEqual((await h.initOf(ws)).data, {}, "nothing was changed")
  })
})

test("a client that sends a whole 8 MiB body (over the 1 MiB limit) can read the 413 answer: the server drains before closing", { timeout: 30_000 }, async (t) => {
  // An ordinary HTTP client (fetch) writes the whole body before it reads the
  // answer. If the server closes the socket with the body unread, the kernel
  // resets the connection and the client sees EPIPE/ECONNRESET, not the 413
  // (RFC 9112 §9.6: close in stages, keep reading for a while).
  await withServer(t, {}, async (srv) => {
    const ws = "hist-big2"
    const api = historyApi(srv, srv.mintToken({ workspace: ws }))
    let r = null
    let err = null
    try {
      r = await api.post(`/v1/history/${ws}/undo`, JSON.stringify({ change: "01".repeat(32), pad: "x".repeat(8 << 20) }))
    } catch (e) {
      err = e
    }
    assert.equal(err, null, `an over-limit body must get an HTTP answer, not a broken connection (${err?.cause?.code ?? err?.message})`)
    assert.equal(r.status, 413, `${r.status} ${r.text}`)
    assert.equal(r.json?.error?.code, 413, "a JSON error body")
    assert.equal((await api.list(ws)).status, 200, "the server keeps serving")
  })
})

// --- persistence ----------------------------------------------------------------------------

test("persistence: after a restart the history (listing, cursors, authors, ops, states) is the same, and undo still works", { timeout: 45_000 }, async (t) => {
  await withServer(t, {}, async (srv, h) => {
    const ws = "hist-persist"
    const [a] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "alice" }) })
    const [b] = await h.connectWithInit(ws, { token: srv.mintToken({ workspace: ws, sub: "bob" }) })
    for (let i = 0; i < 30; i++) await put(i % 2 ? a : b, `k${i % 7}`, i % 3 ? i : { i, l: [i, `s${i}`] })
    const api = historyApi(srv, srv.mintToken({ workspace: ws, sub: "carol" }))
    let hist = await historyOf(api, ws)
    assertEdit(await api.undo(ws, hist[29].hash), "undo")
    assertEdit(await api.restore(ws, [hist[10].hash]), "restore", { undo: false })
    const before = await api.listAll(ws, 4)
    const cursor = (await api.list(ws, { limit: 9 })).json.next
    const page = (await api.list(ws, { limit: 9, cursor })).json
    const states = []
    for (const i of [0, 10, 20, 31]) states.push((await api.state(ws, [before.changes[i].hash])).json)
    const exit = await srv.stop()
    assert.deepEqual(exit, { code: 0, signal: null })
    await srv.restart()
    const after = await api.listAll(ws, 4)
    assert.deepEqual(after, before, "the same history after the restart")
    assert.deepEqual(after.changes.map((c) => c.author).slice(0, 2), ["carol", "carol"])
    assert.deepEqual((await api.list(ws, { limit: 9, cursor })).json, page, "an old cursor gives the same page")
    for (const [j, i] of [0, 10, 20, 31].entries())
      assert.deepEqual((await api.state(ws, [before.changes[i].hash])).json, states[j], `state at #${i}`)
    const doc = await h.loadDoc(ws)
    assert.deepEqual(after.changes.map((c) => c.hash).reverse(), refChanges(doc).map((c) => c.hash))
    hist = after.changes.slice().reverse()
    const u = assertEdit(await api.undo(ws, hist[hist.length - 1].hash), "undo of the restore after the restart")
    assert.notEqual(u.change, null)
    assert.deepEqual((await h.initOf(ws)).data, refState(doc, [hist[hist.length - 2].hash]), "undoing the restore gives the state before it")
  })
})
