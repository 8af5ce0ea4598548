// Online backups end to end (doc/storage.md "Backups"): POST
// /v1/admin/backups on the real server while clients write, then a server
// started on the backup.
//
// Run: ETHERPLY_BIN=build/etherply node --test tests/e2e/backup.test.mjs
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { test } from "node:test"
import * as A from "@automerge/automerge"

import { connect } from "./lib/client.mjs"
import { httpRequest, startServer } from "./lib/server.mjs"

/** POST /v1/admin/backups with `token` (none if null): {status, json}. */
async function backup(srv, token, method = "POST") {
  const headers = token ? { Authorization: `Bearer ${token}` } : {}
  const r = await httpRequest(`${srv.url}/v1/admin/backups`, { method, headers, timeoutMs: 60_000 })
  let json = null
  try { json = JSON.parse(r.text) } catch {}
  return { status: r.status, json, text: r.text }
}

async function docOf(srv, ws) {
  const token = srv.mintToken({ workspace: ws, scope: "read", sub: "exporter" })
  const r = await httpRequest(`${srv.url}/v1/workspaces/${ws}/doc`, { headers: { Authorization: `Bearer ${token}` } })
  assert.equal(r.status, 200, r.text)
  return A.load(new Uint8Array(r.body))
}

test("a backup taken while a client writes holds every op acknowledged before it was asked for; a server started on it serves them and takes new ops", { timeout: 120_000 }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-backups-"))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  const srv = await startServer({ args: ["--backup-dir", path.join(root, "backups")] })
  let restored
  try {
    const ws = "backed-up"
    const c = await connect(srv.wsUrl, ws, { token: srv.mintToken({ workspace: ws, sub: "writer" }) })
    await c.next() // init
    // Ops go on, one after the other, while the backup is written.
    let acked = 0
    let writing = true
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await c.put(`k${i}`, { i, pad: "x".repeat(i % 500) })
        acked = i + 1
      }
    })()
    while (acked < 50) await new Promise((r) => setTimeout(r, 10))
    const admin = srv.mintToken({ workspace: "*", scope: "admin", sub: "operator" })
    const ackedBefore = acked
    const r = await backup(srv, admin)
    assert.equal(r.status, 201, r.text)
    const dir = r.json.backup
    assert.equal(path.dirname(dir), path.join(root, "backups"))
    assert.match(path.basename(dir), /^etherply-\d{8}T\d{6}\.\d{3}Z$/)
    assert.deepEqual(r.json.removed, [], "every backup kept without --backup-keep")
    while (acked < ackedBefore + 100) await new Promise((r) => setTimeout(r, 10))
    writing = false
    await writer
    c.terminate()
    assert.match(srv.log(), new RegExp(`INFO backup written to ${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`))

    // The live store goes on; the backup is as it was when asked for.
    const live = A.toJS(await docOf(srv, ws))
    restored = await startServer({ secret: srv.secret, dataDir: dir })
    const doc = await docOf(restored, ws)
    const data = A.toJS(doc)
    const keys = Object.keys(data).map((k) => Number(k.slice(1))).sort((a, b) => a - b)
    assert.ok(keys.length >= ackedBefore, `${keys.length} ops in the backup, ${ackedBefore} acknowledged before it`)
    assert.ok(keys.length < Object.keys(live).length, "ops made after the backup are not in it")
    keys.forEach((k, i) => assert.equal(k, i, "the backup holds a prefix of the ops, no gap"))
    for (const k of keys) assert.deepEqual(data[`k${k}`], live[`k${k}`])
    assert.equal(A.getAllChanges(doc).length, keys.length)
    // The restored server takes writes of its own.
    const c2 = await connect(restored.wsUrl, ws, { token: restored.mintToken({ workspace: ws, sub: "writer" }) })
    await c2.next()
    await c2.put("after-restore", true)
    c2.terminate()
    assert.equal(A.toJS(await docOf(restored, ws))["after-restore"], true)
  } finally {
    if (restored) await restored.cleanup()
    await srv.cleanup()
  }
})

test("backups: 404 without --backup-dir, 401 without a token, 403 without admin over every workspace, 405 for GET; a --backup-dir that cannot be made stops the start", { timeout: 60_000 }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-backups-"))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  const plain = await startServer()
  try {
    const r = await backup(plain, plain.mintToken({ workspace: "*", scope: "admin", sub: "operator" }))
    assert.equal(r.status, 404)
    assert.match(r.json.error.message, /backups are not configured: start the server with --backup-dir DIR/)
  } finally {
    await plain.cleanup()
  }
  const srv = await startServer({ args: ["--backup-dir", path.join(root, "b")] })
  try {
    assert.equal((await backup(srv, null)).status, 401)
    const notAdmin = srv.mintToken({ workspace: "*", scope: "read write", sub: "writer" })
    assert.equal((await backup(srv, notAdmin)).status, 403)
    const oneWorkspace = srv.mintToken({ workspace: "w1", scope: "admin", sub: "operator" })
    const r = await backup(srv, oneWorkspace)
    assert.equal(r.status, 403)
    assert.match(r.json.error.message, /admin scope over every workspace/)
    const admin = srv.mintToken({ workspace: "*", scope: "admin", sub: "operator" })
    assert.equal((await backup(srv, admin, "GET")).status, 405)
    assert.deepEqual(fs.readdirSync(path.join(root, "b")), [], "nothing written by a refused request")
  } finally {
    await srv.cleanup()
  }
  fs.writeFileSync(path.join(root, "file"), "")
  const dataDir = path.join(root, "data")
  await assert.rejects(
    startServer({ dataDir, args: ["--backup-dir", path.join(root, "file", "backups")] }),
    /cannot create backup dir/)
  assert.ok(!fs.existsSync(dataDir), "no data dir made by a start that fails on its backup dir")
})

test("--backup-keep 2: each backup removes the oldest beyond two, and the two left each start a server holding what it should", { timeout: 120_000 }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-backups-"))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  const dir = path.join(root, "backups")
  const srv = await startServer({ args: ["--backup-dir", dir, "--backup-keep", "2"] })
  const ws = "kept"
  const taken = []
  let restored
  try {
    const admin = srv.mintToken({ workspace: "*", scope: "admin", sub: "operator" })
    const c = await connect(srv.wsUrl, ws, { token: srv.mintToken({ workspace: ws, sub: "writer" }) })
    await c.next() // init
    for (let i = 0; i < 4; i++) {
      await c.put("n", i)
      const r = await backup(srv, admin)
      assert.equal(r.status, 201, r.text)
      assert.deepEqual(r.json.removed, i < 2 ? [] : [taken[i - 2]], `backup ${i}`)
      taken.push(r.json.backup)
    }
    c.terminate()
    assert.deepEqual(fs.readdirSync(dir).sort(), taken.slice(2).map((p) => path.basename(p)).sort())
    assert.match(srv.log(), /INFO removed 1 old backup\(s\), oldest /)
  } finally {
    await srv.cleanup()
  }
  for (const [i, backupDir] of taken.slice(2).entries()) {
    restored = await startServer({ secret: srv.secret, dataDir: backupDir })
    try {
      assert.equal(A.toJS(await docOf(restored, ws)).n, i + 2)
    } finally {
      await restored.cleanup()
    }
  }
})

test("--backup-keep wants a count (0: keep all) and --backup-dir", { timeout: 30_000 }, async () => {
  for (const [args, message] of [
    [["--backup-keep", "2"], /--backup-keep needs --backup-dir/],
    [["--backup-dir", "b", "--backup-keep", "-1"], /--backup-keep wants an integer from 0 to 1000000/],
    [["--backup-dir", "b", "--backup-keep", "x"], /--backup-keep wants an integer from 0 to 1000000/],
  ])
    await assert.rejects(startServer({ args }), message)
})
