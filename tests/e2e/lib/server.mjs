// A real `etherply serve` process for end-to-end tests, and JWTs for it.
//
//   const srv = await startServer({ args: ["--max-send-queue-bytes", "65536"] })
//   srv.url / srv.wsUrl / srv.port / srv.dataDir / srv.secret
//   srv.mintToken({ sub, scope, workspace, ttl, audience })   // via `etherply token`
//   srv.forge(kind, opts)                           // via node:crypto (see forgeToken)
//   await srv.stop()      // SIGTERM, wait for the exit (SIGKILL after a timeout)
//   await srv.kill9()     // SIGKILL, no chance to flush anything
//   await srv.restart()   // same data dir, same secret, same flags; new port
//   srv.log()             // everything the server wrote to stderr/stdout
//   await srv.cleanup()   // stops it if running and removes the data dir
//
// The binary is $ETHERPLY_BIN (default: build/etherply of the repository).
import { spawn, spawnSync } from "node:child_process"
import crypto from "node:crypto"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, "..", "..", "..")

export const BIN = path.resolve(process.env.ETHERPLY_BIN || path.join(REPO, "build", "etherply"))

/**
 * The disk fault library (tests/e2e/fault/disk_full_fault.cc) to LD_PRELOAD:
 * beside the binary, or ETHERPLY_DISK_FULL_FAULT. Throws if it is missing.
 */
export function diskFaultLibrary() {
  const lib = process.env.ETHERPLY_DISK_FULL_FAULT || path.join(path.dirname(BIN), "libetherply_disk_full_fault.so")
  if (!fs.existsSync(lib))
    throw new Error(`the fault library (CMake target etherply_disk_full_fault) is missing: ${lib}; set ETHERPLY_DISK_FULL_FAULT`)
  return lib
}

const START_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 10_000

// Every server started by this process; killed if the test process exits.
const live = new Set()
process.on("exit", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL")
    } catch {}
  }
})

/** A random secret of exactly 48 printable bytes (base64url of 36 bytes). */
export function randomSecret() {
  return crypto.randomBytes(36).toString("base64url")
}

function b64url(data) {
  return Buffer.from(data).toString("base64url")
}

/**
 * A JWT built by hand: `header` and `payload` objects (or raw strings),
 * signed with HMAC(`hash`, `secret`); `hash` null gives an empty signature.
 */
export function signJwt({ header = { alg: "HS256", typ: "JWT" }, payload, secret, hash = "sha256" }) {
  const h = typeof header === "string" ? header : JSON.stringify(header)
  const p = typeof payload === "string" ? payload : JSON.stringify(payload)
  const input = `${b64url(h)}.${b64url(p)}`
  if (hash === null) return `${input}.`
  const sig = crypto.createHmac(hash, secret).update(input).digest("base64url")
  return `${input}.${sig}`
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

/**
 * Tokens of the bad-token family (and a good one, as the control that shows
 * the forging itself is right). `kind`:
 *   valid          HS256 with the server's secret, covers `workspace`
 *   wrong-secret   HS256 signed with another secret (bad signature)
 *   tampered       valid token whose payload was swapped after signing
 *   alg-none       {"alg":"none"} and an empty signature
 *   hs384          {"alg":"HS384"} signed with HMAC-SHA-384 and the right secret
 *   expired        exp an hour ago (far beyond the server's 60 s leeway)
 *   expiring       exp 52 s ago: valid for 8 more seconds of the 60 s leeway
 *   not-yet-valid  nbf an hour ahead
 *   wrong-workspace  valid, but for another workspace (expect 401: not valid here)
 *   no-read-scope  valid, covers the workspace, scope "" (expect 401: grants nothing)
 *   garbage        not a JWT at all
 */
export function forgeToken(kind, { secret, workspace, sub = "forger", scope = "read write" }) {
  const now = nowSeconds()
  const payload = { sub, exp: now + 3600, iat: now, scope, workspaces: [workspace] }
  switch (kind) {
    case "valid":
      return signJwt({ payload, secret })
    case "wrong-secret":
      return signJwt({ payload, secret: randomSecret() })
    case "tampered": {
      const good = signJwt({ payload, secret })
      const [h, , s] = good.split(".")
      const evil = b64url(JSON.stringify({ ...payload, sub: "mallory", workspaces: ["*"] }))
      return `${h}.${evil}.${s}`
    }
    case "alg-none":
      return signJwt({ header: { alg: "none", typ: "JWT" }, payload, secret, hash: null })
    case "hs384":
      return signJwt({ header: { alg: "HS384", typ: "JWT" }, payload, secret, hash: "sha384" })
    case "expired":
      return signJwt({ payload: { ...payload, iat: now - 7200, exp: now - 3600 }, secret })
    case "expiring":
      return signJwt({ payload: { ...payload, iat: now - 120, exp: now - 52 }, secret })
    case "not-yet-valid":
      return signJwt({ payload: { ...payload, nbf: now + 3600 }, secret })
    case "wrong-workspace":
      return signJwt({ payload: { ...payload, workspaces: [`not-${workspace}`] }, secret })
    case "no-read-scope":
      return signJwt({ payload: { ...payload, scope: "" }, secret })
    case "garbage":
      return "this-is-not-a-jwt"
    default:
      throw new Error(`unknown token kind ${kind}`)
  }
}

function waitExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not exit within ${timeoutMs} ms`)), timeoutMs)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
}

/**
 * Starts `etherply serve` on 127.0.0.1:0 with a fresh temporary data dir (or
 * `dataDir`) and a random secret (or `secret`), under a limit of
 * `maxOpenFiles` open files if given; resolves once the server has logged
 * "etherply listening on http://127.0.0.1:PORT".
 */
export async function startServer({ args = [], secret = randomSecret(), dataDir, env = {}, maxOpenFiles } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`etherply binary not found at ${BIN}; set ETHERPLY_BIN`)
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "etherply-e2e-"))
  let logText = ""
  let child = null

  const srv = {
    secret,
    dataDir: dir,
    args, // the serve flags of every start; a test may change them before a restart
    port: 0,
    url: "",
    wsUrl: "",
    starts: 0,
    log: () => logText,
    logTail: (lines = 60) => logText.split("\n").slice(-lines).join("\n"),
    get pid() {
      return child?.pid
    },
    get running() {
      return child !== null && child.exitCode === null && child.signalCode === null
    },

    /** A token from the real CLI: `etherply token ...` with the server's secret. */
    mintToken({ sub = "tester", scope = "read write", workspace, workspaces, ttl = "1h", audience } = {}) {
      const ws = workspaces ?? [workspace]
      const argv = ["token", "--sub", sub, "--scope", scope, "--ttl", ttl]
      if (audience !== undefined) argv.push("--audience", audience)
      for (const w of ws) argv.push("--workspace", w)
      const r = spawnSync(BIN, argv, {
        env: { ...process.env, ETHERPLY_JWT_SECRET: secret },
        encoding: "utf8",
        timeout: 10_000,
      })
      if (r.status !== 0) throw new Error(`etherply token failed (${r.status}): ${r.stderr}`)
      return r.stdout.trim()
    },

    forge(kind, opts) {
      return forgeToken(kind, { secret, ...opts })
    },

    async launch() {
      const extra = ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir, ...srv.args]
      logText += `--- start #${++srv.starts}: ${BIN} ${extra.join(" ")}\n`
      // prlimit sets the limit (soft and hard) and execs the server: same pid.
      const [cmd, argv] = maxOpenFiles ? ["prlimit", [`--nofile=${maxOpenFiles}`, BIN, ...extra]] : [BIN, extra]
      const c = spawn(cmd, argv, {
        env: { ...process.env, ETHERPLY_JWT_SECRET: secret, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      })
      child = c
      live.add(c)
      c.on("exit", (code, signal) => {
        live.delete(c)
        logText += `--- exited: code=${code} signal=${signal}\n`
      })
      await new Promise((resolve, reject) => {
        let pending = ""
        const timer = setTimeout(
          () => reject(new Error(`server did not start within ${START_TIMEOUT_MS} ms:\n${logText}`)),
          START_TIMEOUT_MS,
        )
        const onData = (chunk) => {
          const s = chunk.toString()
          logText += s
          pending += s
          const m = /etherply listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(pending)
          if (m) {
            clearTimeout(timer)
            srv.port = Number(m[1])
            srv.url = `http://127.0.0.1:${srv.port}`
            srv.wsUrl = `ws://127.0.0.1:${srv.port}`
            pending = ""
            resolve()
          }
        }
        c.stderr.on("data", onData)
        c.stdout.on("data", (d) => (logText += d.toString()))
        c.once("exit", (code, signal) => {
          clearTimeout(timer)
          reject(new Error(`server exited before listening (code=${code} signal=${signal}):\n${logText}`))
        })
        c.once("error", (e) => {
          clearTimeout(timer)
          reject(e)
        })
      })
      return srv
    },

    /** SIGTERM and wait; returns {code, signal}. */
    async stop() {
      if (!child) return null
      const c = child
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM")
      try {
        return await waitExit(c, STOP_TIMEOUT_MS)
      } catch (e) {
        c.kill("SIGKILL")
        await waitExit(c, STOP_TIMEOUT_MS)
        throw e
      }
    },

    /** Sends `sig` and returns at once; `stopped` resolves {code, signal} at the exit. */
    signal(sig) {
      const c = child
      c.kill(sig)
      return { stopped: waitExit(c, STOP_TIMEOUT_MS) }
    },

    /** SIGKILL: the process gets no chance to flush or close anything. */
    async kill9() {
      if (!child) return null
      const c = child
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
      return waitExit(c, STOP_TIMEOUT_MS)
    },

    /** Starts again on the same data dir with the same secret and flags. */
    async restart() {
      if (srv.running) await srv.stop()
      return srv.launch()
    },

    async cleanup() {
      if (srv.running) {
        try {
          await srv.stop()
        } catch {}
      }
      if (!dataDir) fs.rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    return await srv.launch()
  } catch (e) {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    if (!dataDir) fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

/** GET/POST/... over plain HTTP; resolves {status, headers, body (Buffer), text}. */
export async function httpRequest(url, { method = "GET", headers = {}, body, timeoutMs = 10_000 } = {}) {
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) })
  const buf = Buffer.from(await res.arrayBuffer())
  return { status: res.status, headers: res.headers, body: buf, text: buf.toString("utf8") }
}
