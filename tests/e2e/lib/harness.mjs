// The harness of the end-to-end tests: a fresh server per test, tracked
// clients, and the checks every test ends with.

import assert from "node:assert/strict"
import * as A from "@automerge/automerge"

import { connect, connectWithInit, tryConnect } from "./client.mjs"
import { httpRequest, startServer } from "./server.mjs"

/**
 * Runs `fn(srv, h)` against a fresh server; `h.connect(...)` opens clients
 * that are torn down at the end. After `fn`, the server must still be running
 * and answer /healthz with 200. On failure the server log goes to the test's
 * diagnostics.
 */
export async function withServer(t, opts, fn) {
  const srv = await startServer(opts)
  const clients = []
  const h = {
    track(c) {
      clients.push(c)
      return c
    },
    async connect(workspace, o = {}) {
      return h.track(await connect(srv.wsUrl, workspace, o))
    },
    async connectWithInit(workspace, o = {}) {
      const [c, init] = await connectWithInit(srv.wsUrl, workspace, o)
      h.track(c)
      return [c, init]
    },
    async tryConnect(workspace, o = {}) {
      const r = await tryConnect(srv.wsUrl, workspace, o)
      if (r.ok) h.track(r.client)
      return r
    },
    /** A fresh client's init message for `workspace`. */
    async initOf(workspace, scope = "read") {
      const [c, init] = await connectWithInit(srv.wsUrl, workspace, {
        token: srv.mintToken({ workspace, scope, sub: "inspector" }),
      })
      await c.close()
      return init
    },
    /** GET /v1/workspaces/{id}/doc, loaded with the reference. */
    async loadDoc(workspace) {
      const token = srv.mintToken({ workspace, scope: "read", sub: "exporter" })
      const r = await httpRequest(`${srv.url}/v1/workspaces/${workspace}/doc`, {
        headers: { Authorization: `Bearer ${token}` },
      })
      assert.equal(r.status, 200, `GET /doc: ${r.status} ${r.text}`)
      return A.load(new Uint8Array(r.body))
    },
  }
  try {
    await fn(srv, h)
    assert.ok(srv.running, "the server process is still running at the end of the test")
    const health = await httpRequest(`${srv.url}/healthz`)
    assert.equal(health.status, 200, "GET /healthz answers 200 at the end of the test")
  } catch (e) {
    t.diagnostic("server log (tail):")
    for (const line of srv.logTail(80).split("\n")) if (line) t.diagnostic(line)
    throw e
  } finally {
    for (const c of clients) c.terminate()
    await srv.cleanup()
  }
}
