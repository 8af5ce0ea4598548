// A small promise-based WebSocket client over the `ws` package.
//
//   const c = await connect(srv.wsUrl, "ws-1", { token })          // Authorization: Bearer
//   const c = await connect(srv.wsUrl, "ws-1", { token, via: "query" }) // ?token=
//   const init = await c.next()          // next message, parsed JSON
//   c.sendOp("foo", "bar")               // {"type":"op","payload":{...}}
//   const { code } = await c.closed      // close code and reason
//
// Every message is buffered from the moment the socket opens, so nothing is
// missed between awaits; `messages` holds all of them in arrival order.
// Every wait is bounded by a timeout.
import WebSocket from "ws"

export const DEFAULT_TIMEOUT_MS = 10_000

export function syncUrl(wsUrl, workspace, { token, via = "header" } = {}) {
  let u = `${wsUrl}/v1/sync/${workspace}`
  if (token !== undefined && via === "query") u += `?token=${encodeURIComponent(token)}`
  return u
}

export class Client {
  constructor(ws) {
    this.ws = ws
    this.messages = [] // every message received, parsed (or {raw} if not JSON)
    this.cursor = 0 // index of the next message next() returns
    this.waiters = []
    this.closeInfo = null
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        resolve(this.closeInfo)
        this._wake()
      })
    })
    this.errors = []
    ws.on("error", (e) => this.errors.push(e))
    ws.on("message", (data, isBinary) => {
      const text = data.toString()
      let msg
      try {
        msg = JSON.parse(text)
      } catch {
        msg = { raw: text }
      }
      if (isBinary) msg = { binary: true, raw: text }
      this.messages.push(msg)
      this._wake()
    })
  }

  _wake() {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Resolves when `pred()` is true; rejects after `timeoutMs` with `what`. */
  async waitUntil(pred, timeoutMs = DEFAULT_TIMEOUT_MS, what = "condition") {
    const deadline = Date.now() + timeoutMs
    while (!pred()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  /** The next message not yet returned by next(). */
  async next(timeoutMs = DEFAULT_TIMEOUT_MS) {
    await this.waitUntil(
      () => this.cursor < this.messages.length || this.closeInfo !== null,
      timeoutMs,
      `message #${this.cursor}`,
    )
    if (this.cursor >= this.messages.length)
      throw new Error(`socket closed (code ${this.closeInfo.code}) while waiting for message #${this.cursor}`)
    return this.messages[this.cursor++]
  }

  /** The next message of `type`, skipping others. */
  async nextOfType(type, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()))
      if (m.type === type) return m
    }
  }

  /** Waits until `count` messages in total have arrived; returns them all. */
  async collect(count, timeoutMs = DEFAULT_TIMEOUT_MS) {
    await this.waitUntil(
      () => this.messages.length >= count,
      timeoutMs,
      `${count} messages (have ${this.messages.length})`,
    )
    return this.messages.slice(0, count)
  }

  /** Ops (type "op") received so far. */
  ops() {
    return this.messages.filter((m) => m.type === "op")
  }

  async waitForOps(count, timeoutMs = DEFAULT_TIMEOUT_MS) {
    await this.waitUntil(() => this.ops().length >= count, timeoutMs, `${count} ops (have ${this.ops().length})`)
    return this.ops()
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj))
  }

  sendRaw(data, opts) {
    this.ws.send(data, opts)
  }

  sendOp(key, value, timestamp) {
    const payload = { key, value }
    if (timestamp !== undefined) payload.timestamp = timestamp
    this.send({ type: "op", payload })
  }

  /**
   * Sends one op and waits for its own echo (an error message fails it);
   * returns the echoed op message.
   */
  async put(key, value, timestamp, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const before = this.messages.length
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
    this.sendOp(key, value, timestamp)
    let found = null
    await this.waitUntil(
      () => {
        for (let i = before; i < this.messages.length; i++) {
          const m = this.messages[i]
          if (m.type === "error") throw new Error(`op ${key} refused: ${JSON.stringify(m)}`)
          if (m.type === "op" && m.payload.key === key && same(m.payload.value, value)) {
            found = m
            return true
          }
        }
        return false
      },
      timeoutMs,
      `the echo of ${key}`,
    )
    return found
  }

  /** Waits for the close; rejects if it does not come in time. */
  async waitClose(timeoutMs = DEFAULT_TIMEOUT_MS) {
    await this.waitUntil(() => this.closeInfo !== null, timeoutMs, "the socket to close")
    return this.closeInfo
  }

  get open() {
    return this.ws.readyState === WebSocket.OPEN
  }

  async close() {
    if (this.closeInfo) return this.closeInfo
    this.ws.close(1000)
    try {
      return await this.waitClose(3000)
    } catch {
      this.ws.terminate()
      return this.waitClose(3000)
    }
  }

  terminate() {
    this.ws.terminate()
  }
}

/**
 * Tries a WebSocket handshake. Resolves
 *   {ok: true, client, status: 101, headers}            on upgrade
 *   {ok: false, status, headers, body}                  on an HTTP answer
 * and rejects on a network error or after `timeoutMs`.
 */
export function tryConnect(
  wsUrl,
  workspace,
  { token, via = "header", headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS, url, wsOptions = {} } = {},
) {
  const target = url ?? syncUrl(wsUrl, workspace, { token, via })
  const h = { ...headers }
  if (token !== undefined && via === "header") h.Authorization = `Bearer ${token}`
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target, { headers: h, handshakeTimeout: timeoutMs, ...wsOptions })
    let settled = false
    const done = (f, v) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      f(v)
    }
    const timer = setTimeout(() => {
      ws.terminate()
      done(reject, new Error(`handshake to ${target} timed out after ${timeoutMs} ms`))
    }, timeoutMs + 500)
    let upgradeRes = null
    ws.on("upgrade", (res) => (upgradeRes = res))
    // Buffer messages from the first moment: the client is built on "open".
    const client = new Client(ws)
    ws.on("open", () =>
      done(resolve, { ok: true, client, status: upgradeRes?.statusCode, headers: upgradeRes?.headers ?? {} }),
    )
    ws.on("unexpected-response", (req, res) => {
      const chunks = []
      res.on("data", (d) => chunks.push(d))
      res.on("end", () => {
        done(resolve, {
          ok: false,
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          opened: false,
        })
        req.destroy()
      })
      res.on("error", (e) => done(reject, e))
    })
    ws.on("error", (e) => done(reject, e))
  })
}

/** Connects and returns the Client; throws with the HTTP answer if refused. */
export async function connect(wsUrl, workspace, opts = {}) {
  const r = await tryConnect(wsUrl, workspace, opts)
  if (!r.ok) throw new Error(`handshake refused: HTTP ${r.status} ${r.body}`)
  return r.client
}

/** Connects and returns [client, init message]. */
export async function connectWithInit(wsUrl, workspace, opts = {}) {
  const c = await connect(wsUrl, workspace, opts)
  const init = await c.next(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  if (init.type !== "init") throw new Error(`first message is not init: ${JSON.stringify(init)}`)
  return [c, init]
}
