// Helpers for the history API tests (history.test.mjs): a per-test server
// harness, a small client of /v1/history/{workspace}, and the reference
// Automerge's view of the same history.
//
//   await withServer(t, {}, async (srv, h) => { ... })
//   const api = historyApi(srv, token)
//   await api.list(ws, { limit, cursor })   // {status, json, text}
//   await api.listAll(ws, limit)            // every change, pages concatenated
//   await api.state(ws, heads) / api.undo(ws, hash) / api.restore(ws, heads)
//   refChanges(doc) / refState(doc, heads) / refOps(changes)
import assert from "node:assert/strict"
import * as A from "@automerge/automerge"

import { connect, connectWithInit } from "./client.mjs"
import { httpRequest, startServer } from "./server.mjs"

export const HEX64 = /^[0-9a-f]{64}$/
export const sorted = (a) => [...a].sort()

export { withServer } from "./harness.mjs"

function parse(r) {
  let json = null
  try {
    json = JSON.parse(r.text)
  } catch {}
  return { status: r.status, json, text: r.text, headers: r.headers }
}

/**
 * The history API as `token` (Authorization: Bearer; `token` undefined sends
 * none). Every call resolves {status, json, text, headers}; it never throws on
 * an HTTP error. `srv` may be restarted: the URL is read at each call.
 */
export function historyApi(srv, token) {
  const headers = () => (token === undefined ? {} : { Authorization: `Bearer ${token}` })
  const base = (ws) => `${srv.url}/v1/history/${ws}`
  const api = {
    async get(pathAndQuery) {
      return parse(await httpRequest(`${srv.url}${pathAndQuery}`, { headers: headers() }))
    },
    async post(pathAndQuery, body) {
      return parse(
        await httpRequest(`${srv.url}${pathAndQuery}`, {
          method: "POST",
          headers: { ...headers(), "Content-Type": "application/json" },
          body: typeof body === "string" ? body : JSON.stringify(body),
        }),
      )
    },
    async list(ws, { limit, cursor } = {}) {
      const q = new URLSearchParams()
      if (limit !== undefined) q.set("limit", String(limit))
      if (cursor !== undefined) q.set("cursor", cursor)
      const qs = q.toString()
      return parse(await httpRequest(`${base(ws)}${qs ? `?${qs}` : ""}`, { headers: headers() }))
    },
    /**
     * Walks every page at `limit`; asserts each page is 200, holds at most
     * `limit` changes, that `next` is the hash of the page's last change (or
     * null on the last page only), and that there are no more than
     * `maxPages` pages. Returns {changes (newest first), pages}.
     */
    async listAll(ws, limit, maxPages = 100_000) {
      const changes = []
      let cursor
      let pages = 0
      for (;;) {
        const r = await api.list(ws, { limit, cursor })
        assert.equal(r.status, 200, `page ${pages} (cursor ${cursor}): ${r.status} ${r.text}`)
        pages++
        assert.ok(pages <= maxPages, `more than ${maxPages} pages`)
        const { changes: page, next } = r.json
        assert.ok(Array.isArray(page), "changes is an array")
        assert.ok(page.length <= limit, `page ${pages} has ${page.length} > ${limit} changes`)
        changes.push(...page)
        if (next === null) break
        assert.match(next, HEX64, "next is a hash")
        assert.equal(page.length, limit, "only the last page may be short")
        assert.equal(next, page[page.length - 1].hash, "next is the hash of the page's last change")
        cursor = next
      }
      return { changes, pages }
    },
    async state(ws, heads) {
      const list = Array.isArray(heads) ? heads.join(",") : heads
      return parse(
        await httpRequest(`${base(ws)}/state?heads=${encodeURIComponent(list)}`, { headers: headers() }),
      )
    },
    undo(ws, change) {
      return api.post(`/v1/history/${ws}/undo`, { change })
    },
    restore(ws, heads) {
      return api.post(`/v1/history/${ws}/restore`, { heads })
    },
  }
  return api
}

/** Asserts an error answer: the status, a JSON body {"error":{code,message}}. */
export function assertError(r, status, what, messageRe) {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text}`)
  assert.ok(r.json && typeof r.json.error === "object", `${what}: JSON error body, got ${r.text}`)
  assert.equal(r.json.error.code, status, `${what}: error.code`)
  assert.equal(typeof r.json.error.message, "string", `${what}: error.message is a string`)
  assert.ok(r.json.error.message.length > 0, `${what}: error.message is not empty`)
  if (messageRe) assert.match(r.json.error.message, messageRe, `${what}: error.message`)
}

/** A BigInt as a JSON number when exact. */
export const unBig = (v) => {
  if (typeof v !== "bigint") return v
  if (!Number.isSafeInteger(Number(v))) throw new Error(`integer ${v} is not exact in JSON`)
  return Number(v)
}

/** A reference value (A.toJS output) as plain JSON: ImmutableString → .val, BigInt → number. */
export function plain(v) {
  if (v === null || v === undefined) return v ?? null
  if (typeof v === "bigint") return unBig(v)
  if (A.isImmutableString?.(v) || v?.constructor?.name === "ImmutableString") return v.val
  if (v instanceof Date) return v.getTime()
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === "object") {
    const out = {}
    for (const [k, x] of Object.entries(v)) out[k] = plain(x)
    return out
  }
  return v
}

/** The document as it was at `heads`, by the reference (A.view), as plain JSON. */
export function refState(doc, heads) {
  return JSON.parse(JSON.stringify(plain(A.toJS(A.view(doc, heads)))))
}

/** The document now, by the reference. */
export function refNow(doc) {
  return JSON.parse(JSON.stringify(plain(A.toJS(doc))))
}

/** A.getHistory's decoded changes, oldest first. */
export function refChanges(doc) {
  return A.getHistory(doc).map((s) => s.change)
}

/**
 * The reference's ops of every change in the server's readable form
 * ({action, path, key, insert?, value?}), computing each object's path from
 * the ops that made it. A path through a list uses the element's index, which
 * is right for the lists these tests make (built by appending, never edited).
 */
export function refOps(changes) {
  const paths = new Map([["_root", []]])
  const listLen = new Map() // list object ID -> elements inserted so far
  const out = []
  for (const c of changes) {
    const ops = []
    c.ops.forEach((op, i) => {
      const id = `${c.startOp + i}@${c.actor}`
      const path = paths.get(op.obj)
      assert.ok(path, `the reference names an object ${op.obj} the history did not make`)
      const isList = op.elemId !== undefined
      const r = { action: op.action, path, key: isList ? op.elemId : op.key }
      let index
      if (isList) {
        r.insert = !!op.insert
        if (op.insert) {
          index = listLen.get(op.obj) ?? 0
          listLen.set(op.obj, index + 1)
        }
      }
      switch (op.action) {
        case "set":
        case "inc":
          r.value = unBig(op.value)
          break
        case "makeMap":
          r.value = {}
          break
        case "makeList":
          r.value = []
          break
        case "makeText":
          r.value = ""
          break
      }
      if (op.action === "makeMap" || op.action === "makeList" || op.action === "makeText") {
        paths.set(id, [...path, isList ? index : op.key])
        if (op.action !== "makeMap") listLen.set(id, 0)
      }
      ops.push(r)
    })
    out.push(ops)
  }
  return out
}

/** hex → UTF-8 string (the reference shows an author's bytes as hex). */
export const fromHex = (hex) => Buffer.from(hex, "hex").toString("utf8")

/**
 * Sends `n` ops on client `c` without waiting (pipelined), key and value from
 * `gen(i)`, then waits until `c` has seen `before + n` ops echoed.
 */
export async function flood(c, n, gen, timeoutMs = 30_000) {
  const before = c.ops().length
  for (let i = 0; i < n; i++) {
    const [key, value] = gen(i)
    c.sendOp(key, value)
  }
  await c.waitForOps(before + n, timeoutMs)
}
