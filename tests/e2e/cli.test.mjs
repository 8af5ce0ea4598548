// End-to-end tests of the command line itself: what `etherply serve`,
// `token`, `doc`, `put` and `watch` do with bad input before any server is
// involved. Bad input gets a clear message and the documented exit status
// (2: a usage or configuration error, found before anything is done; 1: a
// failure at run time) and changes nothing; nothing aborts.
//
// Run: ETHERPLY_BIN=build/etherply node --test tests/e2e/cli.test.mjs
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import crypto from "node:crypto"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { test } from "node:test"
import * as A from "@automerge/automerge"

import { BIN, randomSecret } from "./lib/server.mjs"

const SECRET = randomSecret()

/** Runs the binary to its end: {code, signal, stdout, stderr}. */
function run(args, { env = {}, timeout = 10_000 } = {}) {
  const r = spawnSync(BIN, args, {
    env: { ...process.env, ETHERPLY_JWT_SECRET: SECRET, ETHERPLY_WEBHOOK_SECRET: "", ...env },
    encoding: "utf8",
    timeout,
  })
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** Asserts an exit with `code`, stderr matching `message`, nothing on stdout. */
function assertRefused(r, code, message, what) {
  assert.equal(r.signal, null, `${what}: no signal (stderr: ${r.stderr})`)
  assert.equal(r.code, code, `${what}: exit ${code} (stderr: ${r.stderr})`)
  assert.match(r.stderr, message, what)
  assert.equal(r.stdout, "", `${what}: nothing on stdout`)
}

/** A fresh temporary directory, removed at the end of the test. */
function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etherply-cli-"))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** `serve` with flags that would start it; it must refuse before starting. */
function serve(dir, args, env) {
  return run(["serve", "--listen", "127.0.0.1:0", "--data-dir", path.join(dir, "data"), ...args], { env, timeout: 5_000 })
}

/** An Automerge document of one change, as A.save writes it. */
const savedDoc = () => A.save(A.change(A.init(), (d) => { d.k = 1 }))

const claims = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url"))
const signedWith = (token, secret) => {
  const [h, p, sig] = token.split(".")
  return crypto.createHmac("sha256", secret).update(`${h}.${p}`).digest("base64url") === sig
}

test("a directory as the JWT secret file or as a doc input is an error, not an abort", (t) => {
  const dir = tempDir(t)
  assertRefused(serve(dir, ["--jwt-secret-file", dir]), 2, /the JWT secret file: .* is a directory/, "serve")
  assert.equal(fs.existsSync(path.join(dir, "data")), false, "serve created no data dir")
  assertRefused(run(["token", "--sub", "a", "--workspace", "w", "--jwt-secret-file", dir]), 2, /is a directory/, "token")
  for (const cmd of [["json"], ["heads"], ["changes"], ["save"]]) {
    const args = ["doc", ...cmd, dir, ...(cmd[0] === "save" ? [path.join(dir, "out")] : [])]
    assertRefused(run(args), 1, new RegExp(`${dir} is a directory`), args.join(" "))
  }
  assert.equal(fs.existsSync(path.join(dir, "out")), false, "doc save wrote nothing")
})

test("an endless secret file (/dev/zero) is refused once it passes 64 KiB", () => {
  assertRefused(run(["token", "--sub", "a", "--workspace", "w", "--jwt-secret-file", "/dev/zero"]), 2, /\/dev\/zero holds more than 64 KiB/, "token")
})
