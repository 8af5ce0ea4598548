// A real webhook receiver for end-to-end tests: a node HTTP server on
// 127.0.0.1 that records every request and answers as programmed, and an
// independent Standard Webhooks verifier built on node:crypto only.
//
//   const rx = await startReceiver()                 // 127.0.0.1:<free port>
//   rx.url                                           // http://127.0.0.1:PORT/hooks/etherply?k=v
//   rx.requests                                      // every request, in arrival order (below)
//   rx.respond = (req, rx) => ({ status, delayMs, headers })   // programmable, per request
//   rx.respond = sequence([500, 200])                // the n-th request gets the n-th status (the last repeats)
//   await rx.down()     // closes the listener and drops every open connection (the port is free)
//   await rx.up()       // listens again on the SAME port
//   await rx.waitFor(pred, timeoutMs, what)          // pred(rx) true; bounded
//   await rx.close()
//
// A recorded request:
//   { n, method, url, headers (lower-case names), raw (Buffer), body (utf8 string), json (or null),
//     at (ms, Date.now() when the body was complete), status, respondedAt (ms; null until answered),
//     aborted (true if the connection was dropped before the answer) }
//
// `delayMs` holds the answer back (a slow receiver); the request is recorded at
// once. Connections dropped by down() or close() are marked aborted.
import crypto from "node:crypto"
import http from "node:http"

export const HEX64 = /^[0-9a-f]{64}$/

/** A fresh Standard Webhooks secret: "whsec_" + base64 of `bytes` random bytes. */
export function webhookSecret(bytes = 32) {
  return `whsec_${crypto.randomBytes(bytes).toString("base64")}`
}

/**
 * Verifies one request the Standard Webhooks way, with node:crypto only:
 * HMAC-SHA-256 keyed with the base64-decoded part of `secret` after "whsec_",
 * over `${webhook-id}.${webhook-timestamp}.${raw body}`, compared in constant
 * time with any "v1,<base64>" of the space-separated webhook-signature header;
 * webhook-timestamp must be within `toleranceSec` of now. Throws on failure;
 * returns the parsed body.
 */
export function verifyWebhook(secret, headers, rawBody, { toleranceSec = 5 * 60, nowMs = Date.now() } = {}) {
  const id = headers["webhook-id"]
  const ts = headers["webhook-timestamp"]
  const sigs = headers["webhook-signature"]
  if (typeof id !== "string" || typeof ts !== "string" || typeof sigs !== "string")
    throw new Error("missing webhook-id, webhook-timestamp or webhook-signature")
  if (!/^[0-9]+$/.test(ts)) throw new Error(`webhook-timestamp is not integer seconds: ${ts}`)
  if (Math.abs(nowMs / 1000 - Number(ts)) > toleranceSec) throw new Error(`stale or future webhook-timestamp ${ts}`)
  if (!secret.startsWith("whsec_")) throw new Error("secret without whsec_")
  const key = Buffer.from(secret.slice("whsec_".length), "base64")
  const body = Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, "utf8")
  const expected = crypto
    .createHmac("sha256", key)
    .update(Buffer.concat([Buffer.from(`${id}.${ts}.`, "utf8"), body]))
    .digest()
  const ok = sigs.split(" ").some((s) => {
    const comma = s.indexOf(",")
    if (comma < 0) return false
    const version = s.slice(0, comma)
    const got = Buffer.from(s.slice(comma + 1), "base64")
    return version === "v1" && got.length === expected.length && crypto.timingSafeEqual(got, expected)
  })
  if (!ok) throw new Error("bad signature")
  return JSON.parse(body.toString("utf8"))
}

/** A behaviour: the n-th request (0-based) gets statuses[n], the last one repeating. */
export function sequence(statuses, { delayMs = 0, headers = {} } = {}) {
  let i = 0
  return () => {
    const s = statuses[Math.min(i, statuses.length - 1)]
    i++
    return typeof s === "object" ? { delayMs, headers, ...s } : { status: s, delayMs, headers }
  }
}

/**
 * Starts a receiver on 127.0.0.1:`port` (0: a free port). `path` is the path
 * and query the server is told to POST to; `respond` the behaviour (default:
 * 200 at once).
 */
export async function startReceiver({ port = 0, path = "/hooks/etherply?k=v%20w", respond } = {}) {
  const sockets = new Set()
  const pending = new Set() // {timer, finish} of answers held back by delayMs
  const waiters = new Set()
  let server = null

  const rx = {
    port: 0,
    path,
    get url() {
      return `http://127.0.0.1:${rx.port}${path}`
    },
    requests: [],
    respond: respond ?? (() => ({ status: 200 })),
    isUp: false,
    /** Requests answered with a 2xx. */
    delivered() {
      return rx.requests.filter((r) => r.status >= 200 && r.status < 300 && r.respondedAt !== null && !r.aborted)
    },
    /** Resolves once pred(rx) is true (checked on every request and answer); bounded. */
    waitFor(pred, timeoutMs = 10_000, what = "a condition on the receiver") {
      if (pred(rx)) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const w = {
          check() {
            let v = false
            try {
              v = pred(rx)
            } catch (e) {
              clearTimeout(w.timer)
              waiters.delete(w)
              return reject(e)
            }
            if (v) {
              clearTimeout(w.timer)
              waiters.delete(w)
              resolve()
            }
          },
        }
        w.timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (receiver has ${rx.requests.length} requests)`))
        }, timeoutMs)
        waiters.add(w)
      })
    },
    async up() {
      if (rx.isUp) return
      server = http.createServer(onRequest)
      server.keepAliveTimeout = 1000
      server.on("connection", (s) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
      })
      await new Promise((resolve, reject) => {
        server.once("error", reject)
        server.listen(rx.port, "127.0.0.1", () => {
          server.off("error", reject)
          resolve()
        })
      })
      rx.port = server.address().port
      rx.isUp = true
    },
    /** Stops listening and drops every connection: the server's requests fail. */
    async down() {
      if (!rx.isUp) return
      rx.isUp = false
      const s = server
      server = null
      for (const p of pending) p.abort()
      const closed = new Promise((resolve) => s.close(() => resolve()))
      for (const sock of sockets) sock.destroy()
      await closed
    },
    async close() {
      await rx.down()
      for (const w of waiters) clearTimeout(w.timer)
      waiters.clear()
    },
  }

  function wake() {
    for (const w of [...waiters]) w.check()
  }

  function onRequest(req, res) {
    const chunks = []
    req.on("data", (c) => chunks.push(c))
    req.on("end", () => {
      const raw = Buffer.concat(chunks)
      const body = raw.toString("utf8")
      let json = null
      try {
        json = JSON.parse(body)
      } catch {}
      const rec = {
        n: rx.requests.length,
        method: req.method,
        url: req.url,
        headers: { ...req.headers },
        raw,
        body,
        json,
        at: Date.now(),
        status: null,
        respondedAt: null,
        aborted: false,
      }
      rx.requests.push(rec)
      let plan
      try {
        plan = rx.respond(rec, rx) ?? {}
      } catch (e) {
        plan = { status: 500 }
      }
      const status = plan.status ?? 200
      const finish = () => {
        if (rec.aborted || res.destroyed) {
          rec.aborted = true
          return wake()
        }
        rec.status = status
        res.writeHead(status, { "Content-Type": "text/plain", ...(plan.headers ?? {}) })
        res.end(status >= 200 && status < 300 ? "ok\n" : "no\n")
        rec.respondedAt = Date.now()
        wake()
      }
      res.on("close", () => {
        if (rec.respondedAt === null) {
          rec.aborted = true
          wake()
        }
      })
      if (plan.delayMs > 0) {
        const p = {
          abort() {
            clearTimeout(p.timer)
            pending.delete(p)
            rec.aborted = true
          },
        }
        p.timer = setTimeout(() => {
          pending.delete(p)
          finish()
        }, plan.delayMs)
        pending.add(p)
      } else {
        finish()
      }
      wake()
    })
  }

  rx.port = port
  await rx.up()
  return rx
}
