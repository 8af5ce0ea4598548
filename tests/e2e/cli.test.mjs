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

test("doc save and merge write through a symlink, into a FIFO or an open file in place, keep a file's mode; a failed write is an error", (t) => {
  const dir = tempDir(t)
  const input = path.join(dir, "in.am")
  fs.writeFileSync(input, savedDoc())
  const plain = path.join(dir, "plain.am")
  assert.equal(run(["doc", "save", input, plain]).code, 0)
  const expected = fs.readFileSync(plain)

  // A symlink: its target is replaced, the link stays.
  const target = path.join(dir, "target.am")
  fs.writeFileSync(target, "old")
  fs.symlinkSync("target.am", path.join(dir, "link.am"))
  assert.equal(run(["doc", "save", input, path.join(dir, "link.am")]).code, 0)
  assert.ok(fs.lstatSync(path.join(dir, "link.am")).isSymbolicLink(), "the link is still a link")
  assert.deepEqual(fs.readFileSync(target), expected, "the target holds the document")
  // A symlink to a file that does not exist yet creates it.
  fs.symlinkSync("new.am", path.join(dir, "dangling.am"))
  assert.equal(run(["doc", "merge", input, input, path.join(dir, "dangling.am")]).code, 0)
  assert.ok(fs.lstatSync(path.join(dir, "dangling.am")).isSymbolicLink())
  assert.deepEqual(fs.readFileSync(path.join(dir, "new.am")), expected)

  // An existing file keeps its permission bits.
  fs.chmodSync(target, 0o600)
  assert.equal(run(["doc", "save", input, target]).code, 0)
  assert.equal(fs.statSync(target).mode & 0o777, 0o600, "mode 0600 kept")

  // A FIFO is written into, not replaced.
  const fifo = path.join(dir, "fifo")
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0)
  const reader = spawnSync("sh", ["-c", `"$0" doc save "$1" "$2" & cat "$2"; wait $!`, BIN, input, fifo], { timeout: 10_000 })
  assert.equal(reader.status, 0, String(reader.stderr))
  assert.deepEqual(reader.stdout, expected, "the document came out of the FIFO")
  assert.ok(fs.lstatSync(fifo).isFIFO(), "the FIFO is still a FIFO")

  // /dev/stdout and /proc/self/fd/N name an open file (here a pipe): written in place.
  const stdoutLink = path.join(dir, "stdout")
  fs.symlinkSync("/proc/self/fd/1", stdoutLink)
  const viaLink = spawnSync(BIN, ["doc", "save", input, stdoutLink], { timeout: 10_000 })
  assert.equal(viaLink.status, 0, String(viaLink.stderr))
  assert.deepEqual(viaLink.stdout, expected, "the document went to stdout")
  assert.ok(fs.lstatSync(stdoutLink).isSymbolicLink(), "the link is still a link")

  // A device that fails the write (through a link: the test never touches /dev itself).
  const full = path.join(dir, "full")
  fs.symlinkSync("/dev/full", full)
  assertRefused(run(["doc", "save", input, full]), 1, /cannot write \/dev\/full: No space left on device/, "/dev/full")
  assert.ok(fs.lstatSync(full).isSymbolicLink(), "the link is still a link")
  assert.ok(fs.statSync("/dev/full").isCharacterDevice())

  // A failed load leaves OUT untouched; no temporary file is left behind.
  assertRefused(run(["doc", "save", path.join(dir, "missing.am"), target]), 1, /cannot open/, "missing input")
  assert.deepEqual(fs.readFileSync(target), expected)
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes(".tmp-")), [])
})

test("durations are bounded to 365d: every duration flag of serve, token --ttl and put --timeout say the forms and the bound", (t) => {
  const dir = tempDir(t)
  const whsec = `whsec_${Buffer.alloc(32, 7).toString("base64")}`
  const webhook = ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", whsec]
  const nats = ["--nats-url", "nats://127.0.0.1:9"]
  const seconds = /wants a duration such as 60s, 5m, 2h or 1d, up to 365d, not "/
  const cases = [
    [["--idle-timeout", "999999d"], seconds],
    [["--idle-timeout", "1099511627776"], seconds],
    [["--ping-interval", "1099511627776"], seconds],
    [["--ping-interval", "366d"], seconds],
    [["--webhook-backoff", "8761h", ...webhook], seconds],
    [["--webhook-timeout", "525601m", ...webhook], seconds],
    [["--anti-entropy-interval", "31536000001ms", ...nats], /wants a duration such as 500ms, 60s, 5m, 2h or 1d, up to 365d/],
    [["--idle-timeout", "10x"], seconds],
    [["--idle-timeout", "0"], /must be at least 1s/],
  ]
  for (const [args, message] of cases) {
    assertRefused(serve(dir, args), 2, new RegExp(`${args[0]} ${message.source}`), args.join(" "))
  }
  assert.equal(fs.existsSync(path.join(dir, "data")), false, "serve created no data dir")
  assertRefused(run(["token", "--sub", "a", "--workspace", "w", "--ttl", "366d"]), 2, new RegExp(`--ttl ${seconds.source}`), "token --ttl 366d")
  const year = run(["token", "--sub", "a", "--workspace", "w", "--ttl", "365d"])
  assert.equal(year.code, 0, year.stderr)
  const c = claims(year.stdout.trim())
  assert.equal(c.exp - c.iat, 365 * 86400)
  assertRefused(run(["put", "ws://127.0.0.1:9/v1/sync/w", "k", "1", "--timeout", "99999999d"]), 2, new RegExp(`--timeout ${seconds.source}`), "put --timeout")
})

test("token refuses stray arguments (an unquoted --scope read write) and workspace IDs that cannot exist", () => {
  assertRefused(run(["token", "--sub", "alice", "--scope", "read", "write", "--workspace", "ws1"]), 2, /unexpected argument write/, "--scope read write")
  for (const w of ["bad ws/x", "", "a".repeat(129), "x*", ".", ".."]) {
    assertRefused(run(["token", "--sub", "a", "--workspace", "ok", "--workspace", w]), 2, /is not a workspace ID \(1 to 128 of A-Z a-z 0-9 \. _ -, not \. or \.\.\) or \*/, `--workspace ${JSON.stringify(w)}`)
  }
  for (const w of ["*", "a.b_c-D9", "a".repeat(128)]) {
    const r = run(["token", "--sub", "a", "--workspace", w])
    assert.equal(r.code, 0, `--workspace ${w}: ${r.stderr}`)
    assert.deepEqual(claims(r.stdout.trim()).workspaces, [w])
  }
})

test("webhook flags without --webhook-url are refused; --webhook-url without a secret says the secret is missing", (t) => {
  const dir = tempDir(t)
  const whsec = `whsec_${Buffer.alloc(32, 7).toString("base64")}`
  for (const args of [["--webhook-attempts", "3"], ["--webhook-backoff", "5s"], ["--webhook-timeout", "5s"], ["--webhook-secret", whsec]]) {
    assertRefused(serve(dir, args), 2, new RegExp(`${args[0]} needs --webhook-url`), args.join(" "))
  }
  for (const env of [{}, { ETHERPLY_WEBHOOK_SECRET: "" }]) {
    const r = serve(dir, ["--webhook-url", "http://127.0.0.1:9/x"], env)
    assertRefused(r, 2, /--webhook-url needs a secret: --webhook-secret or \$ETHERPLY_WEBHOOK_SECRET/, "no secret")
    assert.doesNotMatch(r.stderr, /must be in the Standard Webhooks format/)
  }
  assert.equal(fs.existsSync(path.join(dir, "data")), false, "serve created no data dir")
})

test("an empty --webhook-url or --nats-url (an unset shell variable) is refused, not taken as off; --webhook-backoff over its 1h cap is refused before anything is made", (t) => {
  const dir = tempDir(t)
  const whsec = `whsec_${Buffer.alloc(32, 7).toString("base64")}`
  for (const name of ["--webhook-url", "--nats-url"]) {
    assertRefused(serve(dir, [name, ""]), 2, new RegExp(`${name} must not be empty \\(leave it out to run without\\)`), `${name} ''`)
  }
  const over = serve(dir, ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", whsec, "--webhook-backoff", "2h"])
  assertRefused(over, 2, /--webhook-backoff is at most 1h, the cap on every wait/, "--webhook-backoff 2h")
  assert.equal(fs.existsSync(path.join(dir, "data")), false, "serve created no data dir")
  // 1h itself passes, on to the next check (the JWT secret, here missing).
  const cap = serve(dir, ["--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", whsec, "--webhook-backoff", "1h"], { ETHERPLY_JWT_SECRET: "" })
  assertRefused(cap, 2, /JWT secret|ETHERPLY_JWT_SECRET/, "--webhook-backoff 1h, no JWT secret")
})

test("serve names the flag and its range: a --listen without a host, a send queue too small for a handshake, an empty --node-id or --region, --nats-replicas over 5, replication flags without --nats-url; token --ttl 0", (t) => {
  const dir = tempDir(t)
  const nats = ["--nats-url", "nats://127.0.0.1:9"]
  for (const [args, why] of [
    [["--listen", ":8080"], /--listen wants a host before the port: 127\.0\.0\.1:PORT for this machine only, 0\.0\.0\.0:PORT for every IPv4 interface/],
    [["--max-send-queue-bytes", "1023"], /--max-send-queue-bytes wants an integer from 1024 to 1099511627776/],
    [["--warm-workspaces", "-1"], /--warm-workspaces wants an integer from 0 to 1000000/],
    [[...nats, "--node-id", ""], /--node-id must not be empty \(leave it out for the default\)/],
    [[...nats, "--region", ""], /--region must not be empty/],
    [[...nats, "--nats-replicas", "6"], /--nats-replicas wants an integer from 1 to 5/],
    [["--region", "eu"], /--region needs --nats-url/],
    [["--anti-entropy-interval", "1s"], /--anti-entropy-interval needs --nats-url/],
  ])
    assertRefused(serve(dir, args), 2, why, args.join(" "))
  assert.equal(fs.existsSync(path.join(dir, "data")), false, "serve created no data dir")
  assertRefused(run(["token", "--sub", "a", "--workspace", "w", "--ttl", "0"]), 2, /--ttl must be at least 1s/, "--ttl 0")
})

test("a secret file loses all its trailing newlines (\\n and \\r\\n), as $(cat FILE) does, and nothing else", (t) => {
  const dir = tempDir(t)
  const secret = randomSecret()
  const file = path.join(dir, "secret")
  for (const [content, effective] of [
    [`${secret}\n\n`, secret],
    [`${secret}\r\n\r\n`, secret],
    [`${secret}\n\r\n\n`, secret],
    [`${secret}`, secret],
    [`${secret}  \n`, `${secret}  `],
    [`${secret}\t\n`, `${secret}\t`],
  ]) {
    fs.writeFileSync(file, content)
    const r = run(["token", "--sub", "a", "--workspace", "w", "--jwt-secret-file", file], { env: { ETHERPLY_JWT_SECRET: "" } })
    assert.equal(r.code, 0, r.stderr)
    assert.ok(signedWith(r.stdout.trim(), effective), `${JSON.stringify(content)} signs with ${JSON.stringify(effective)}`)
  }
  // 31 bytes and newlines: too short, whatever the newlines.
  fs.writeFileSync(file, `${"a".repeat(31)}\n\n\n`)
  assertRefused(run(["token", "--sub", "a", "--workspace", "w", "--jwt-secret-file", file]), 2, /holds 31 bytes; the JWT secret needs at least 32/, "short")
})

test("doc: an empty file is no document; --help anywhere shows the usage; --at in any position; a file over 1 GiB is refused at once", (t) => {
  const dir = tempDir(t)
  const empty = path.join(dir, "empty.am")
  fs.writeFileSync(empty, "")
  for (const file of [empty, "/dev/null"]) {
    for (const cmd of ["json", "heads", "changes"])
      assertRefused(run(["doc", cmd, file]), 1, new RegExp(`${file} holds no Automerge data`), `doc ${cmd} ${file}`)
  }
  assertRefused(run(["doc", "save", empty, path.join(dir, "out.am")]), 1, /holds no Automerge data/, "doc save")
  assert.equal(fs.existsSync(path.join(dir, "out.am")), false)

  for (const args of [["json", "--help"], ["--help"], ["save", "a", "-h"], ["merge", "--help", "a", "b", "c"]]) {
    const r = run(["doc", ...args])
    assert.equal(r.code, 0, `doc ${args.join(" ")}: ${r.stderr}`)
    assert.match(r.stdout, /^usage: etherply doc COMMAND FILE/)
  }

  const file = path.join(dir, "doc.am")
  fs.writeFileSync(file, savedDoc())
  const head = run(["doc", "heads", file]).stdout.trim()
  assert.match(head, /^[0-9a-f]{64}$/)
  for (const args of [["--at", head, file], [`--at=${head}`, file], [file, "--at", head]]) {
    const r = run(["doc", "json", ...args])
    assert.equal(r.code, 0, `doc json ${args.join(" ")}: ${r.stderr}`)
    assert.deepEqual(JSON.parse(r.stdout), { k: 1 })
  }
  assertRefused(run(["doc", "heads", "--at", head, file]), 2, /--at is for doc json only/, "doc heads --at")

  const huge = path.join(dir, "huge.am")
  fs.writeFileSync(huge, "")
  fs.truncateSync(huge, 2 ** 30 + 1) // sparse: no disk used
  const started = Date.now()
  assertRefused(run(["doc", "json", huge]), 1, /huge\.am holds more than 1 GiB/, "a file over 1 GiB")
  assert.ok(Date.now() - started < 5_000, "refused without reading it")
})

test("doc: a document nesting objects more than 1,024 deep is refused, as a document or as changes, not a crash; 1,024 deep reads as the reference reads it", (t) => {
  const dir = tempDir(t)
  // Through the reference's low-level handle: its proxy API takes time
  // quadratic in the depth.
  const chain = (depth) => {
    const h = A.getBackend(A.init())
    let obj = "_root"
    for (let i = 0; i < depth; i++) obj = h.putObject(obj, "a", {})
    h.commit()
    return { saved: h.save(), change: h.getLastLocalChange() }
  }
  for (const depth of [1025, 200_000]) {
    const { saved, change } = chain(depth)
    for (const [form, bytes] of [["document", saved], ["change", change]]) {
      const file = path.join(dir, `${depth}-${form}.am`)
      fs.writeFileSync(file, bytes)
      for (const cmd of ["json", "heads"])
        assertRefused(run(["doc", cmd, file]), 1, /an object nested more than 1024 objects deep \(the most this implementation holds\)/, `doc ${cmd}: ${depth} deep, as a ${form}`)
    }
  }
  const { saved, change } = chain(1024)
  const expected = A.toJS(A.load(saved))
  for (const [form, bytes] of [["document", saved], ["change", change]]) {
    const file = path.join(dir, `1024-${form}.am`)
    fs.writeFileSync(file, bytes)
    const r = run(["doc", "json", file])
    assert.equal(r.code, 0, `1024 deep, as a ${form}: ${r.stderr}`)
    assert.deepEqual(JSON.parse(r.stdout), expected)
  }
})

test("exit status: 2 for a bad --listen, an empty --data-dir, a malformed URL, key, JSON or --at hash; 1 for failures at run time", (t) => {
  const dir = tempDir(t)
  // A host that is no IP address and resolves to none (.invalid never does).
  const r = run(["serve", "--listen", "no-such-host.invalid:1", "--data-dir", path.join(dir, "data")])
  assertRefused(r, 2, /no-such-host\.invalid/, "--listen no-such-host.invalid:1")
  assertRefused(run(["serve", "--listen", "127.0.0.1:0", "--data-dir", ""]), 2, /--data-dir must not be empty/, '--data-dir ""')
  for (const [flag, value, why] of [["--wal-recovery", "lenient", /--wal-recovery takes strict or point-in-time/],
    ["--jwt-audience", "", /--jwt-audience must not be empty/], ["--backup-dir", "", /--backup-dir must not be empty/]]) {
    assertRefused(run(["serve", "--listen", "127.0.0.1:0", "--data-dir", path.join(dir, "data"), flag, value]), 2, why, `${flag} ${JSON.stringify(value)}`)
    assert.ok(!fs.existsSync(path.join(dir, "data")), `${flag}: no data dir made`)
  }

  for (const url of ["http://127.0.0.1:9/v1/sync/w", "garbage", "ws://127.0.0.1:9/v1/other/w", "ws://127.0.0.1:9/v1/sync/bad%20id"]) {
    assertRefused(run(["put", url, "k", "1", "--token", "t"]), 2, /usage: etherply put/, `put ${url}`)
    assertRefused(run(["watch", url, "--token", "t"]), 2, /usage: etherply watch/, `watch ${url}`)
  }
  const url = "ws://127.0.0.1:9/v1/sync/w"
  assertRefused(run(["put", url, "k", "bar", "--token", "t"]), 2, /a string needs its quotes/, "put bad JSON")
  assertRefused(run(["put", url, "", "1", "--token", "t"]), 2, /the key must not be empty/, "put empty key")
  // Nothing listens on port 9: a failure at run time.
  assertRefused(run(["put", url, "k", "1", "--token", "t", "--timeout", "1s"]), 1, /timed out after 1s/, "put to no server")

  assertRefused(run(["doc", "json", "--at", "zz", path.join(dir, "missing.am")]), 2, /--at: /, "a malformed --at, whatever the file")
  const doc = path.join(dir, "doc.am")
  fs.writeFileSync(doc, savedDoc())
  const head = run(["doc", "heads", doc]).stdout.trim()
  for (const at of ["", `${head},`, `,${head}`, `${head},,${head}`])
    assertRefused(run(["doc", "json", "--at", at, doc]), 2, /--at: heads must be 64-digit hex change hashes/, `--at ${JSON.stringify(at)}`)
  const file = path.join(dir, "doc.am")
  fs.writeFileSync(file, savedDoc())
  assertRefused(run(["doc", "json", "--at", "a".repeat(64), file]), 1, /unknown head a{64}/, "an --at head not in the file")
  assertRefused(run(["doc", "json", path.join(dir, "missing.am")]), 1, /cannot open .*missing\.am: No such file or directory/, "a missing file")
})
