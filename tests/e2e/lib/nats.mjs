// Real nats-server processes (Debian's package) on loopback ports, for the
// replication tests: one server, or a cluster of three with JetStream.

import { spawn } from "node:child_process"
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"

const NATS_BIN = process.env.NATS_SERVER_BIN || "/usr/sbin/nats-server"

/** A free loopback port (bound, then released). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/**
 * One nats-server with JetStream (or without: `jetstream: false`). `stop()`/`kill9()` end it, `start()` starts
 * it again on the same port and store, `wipe()` deletes its JetStream store.
 * In a cluster, `routes` names the other servers' cluster ports.
 */
export async function startNats({ name = "n1", cluster = null, jetstream = true } = {}) {
  const port = await freePort()
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), `etherply-nats-${name}-`))
  let child = null
  let log = ""
  const srv = {
    name,
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    log: () => log,
    get running() {
      return child !== null && child.exitCode === null && child.signalCode === null
    },
    async start() {
      const args = ["-a", "127.0.0.1", "-p", String(port), ...(jetstream ? ["-js", "-sd", storeDir] : []), "-n", name]
      if (cluster)
        args.push("--cluster_name", cluster.name, "--cluster", `nats://127.0.0.1:${cluster.port}`,
          "--routes", cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(","))
      const c = spawn(NATS_BIN, args, { stdio: ["ignore", "pipe", "pipe"] })
      child = c
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`nats-server ${name} did not start:\n${log}`)), 15_000)
        const onData = (d) => {
          log += d.toString()
          if (/Server is ready/.test(log.split("--- start").pop())) {
            clearTimeout(timer)
            resolve()
          }
        }
        log += `--- start ${args.join(" ")}\n`
        c.stderr.on("data", onData)
        c.stdout.on("data", onData)
        c.once("exit", (code, sig) => {
          clearTimeout(timer)
          reject(new Error(`nats-server ${name} exited (${code} ${sig}):\n${log}`))
        })
      })
      return srv
    },
    async stop(signal = "SIGTERM") {
      if (!srv.running) return
      const c = child
      const exited = new Promise((r) => c.once("exit", r))
      c.kill(signal)
      await exited
    },
    kill9() {
      return srv.stop("SIGKILL")
    },
    wipe() {
      fs.rmSync(storeDir, { recursive: true, force: true })
      fs.mkdirSync(storeDir)
    },
    async cleanup() {
      await srv.kill9()
      fs.rmSync(storeDir, { recursive: true, force: true })
    },
  }
  return srv.start()
}

/** Three clustered nats-servers with JetStream; `urls` lists all three. */
export async function startNatsCluster() {
  const cports = [await freePort(), await freePort(), await freePort()]
  const servers = []
  for (let i = 0; i < 3; i++) {
    servers.push(
      await startNats({
        name: `c${i}`,
        cluster: { name: "etherply-test", port: cports[i], routes: cports.filter((_, j) => j !== i) },
      }),
    )
  }
  return {
    servers,
    urls: servers.map((s) => s.url).join(","),
    async cleanup() {
      for (const s of servers) await s.cleanup()
    },
  }
}

/**
 * Publishes one message with `headers` (an object) and `payload` (bytes) on
 * core NATS at `url`, as a foreign client would, and resolves once the server
 * has processed it (a PING answered).
 */
export async function publishRaw(url, subject, headers, payload) {
  const { hostname, port } = new URL(url)
  const head = Buffer.from(
    `NATS/1.0\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`)
  const body = Buffer.from(payload)
  const sock = net.connect(Number(port), hostname)
  try {
    await new Promise((resolve, reject) => {
      let seen = ""
      sock.on("error", reject)
      sock.on("data", (d) => {
        seen += d.toString("latin1")
        if (seen.startsWith("INFO") && seen.includes("\r\n") && !sock.sent) {
          sock.sent = true
          sock.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n`)
          sock.write(`HPUB ${subject} ${head.length} ${head.length + body.length}\r\n`)
          sock.write(Buffer.concat([head, body, Buffer.from("\r\nPING\r\n")]))
        }
        if (seen.includes("-ERR")) reject(new Error(`nats-server: ${seen.trim()}`))
        if (seen.includes("PONG")) resolve()
      })
    })
  } finally {
    sock.destroy()
  }
}
