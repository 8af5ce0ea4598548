// The sync protocol against the reference: EtherPly's C++ peer
// (etherply_sync_peer, driven over stdin/stdout) syncs with
// @automerge/automerge 3.5 playing the other peer in this process.
//
//   node sync_test.mjs --peer build/etherply_sync_peer [--seed S] [--count 200]
//
// First directed byte-equality checks: in deterministic situations our
// messages must be the reference's bytes (the empty peer's first message,
// a first message with a bloom, v1 replies and v2 replies of a few
// changes). Then --count random scenarios, each from a seed: histories from
// lib/generator.mjs (divergent, or empty on one side), run over a channel
// that is clean, crossing (both sides speak at once), v1-only (the reference's flags trailer is stripped, so it
// looks like an old peer to us), loses a message, repeats one, or restarts
// one side from its persisted sync state; some add edits on both sides
// while syncing. Every scenario checks that:
//   - the exchange stops (both sides generate nothing) within a bound;
//   - both sides end with the heads and JSON of the merged history;
//   - without loss or duplication, no change reaches a side twice (the
//     reference's whole-document messages repeat changes by design, so the
//     changes inside them, or inside our v2 messages of every change that
//     stand in for them, are not counted);
//   - toward a v1-only reference we send only v1 messages, one change chunk
//     an entry;
//   - every truncation of a message is refused by us iff the reference
//     refuses it, and a refused message changes neither our document nor
//     our state.
// A failure prints its seed; `--seed S --count 1` replays it.
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { CHUNK_DOCUMENT, changeHash, hex, readUleb, walkChunks } from "./lib/chunks.mjs"
import { generateScript } from "./lib/generator.mjs"
import { refJson } from "./lib/json.mjs"
import { Rng } from "./lib/random.mjs"
import { A, replayScript, sortedHeads } from "./lib/reference.mjs"
import { Reporter } from "./lib/reporter.mjs"

const { values: opts } = parseArgs({
  options: {
    peer: { type: "string" },
    seed: { type: "string" },
    count: { type: "string", default: "200" },
    verbose: { type: "boolean", default: false },
  },
})
if (!opts.peer) {
  console.error("usage: node sync_test.mjs --peer PATH [--seed S] [--count N]")
  process.exit(2)
}
const PEER = resolve(opts.peer)
const MAX_ROUNDS = 60

// ---- the C++ peer ---------------------------------------------------------------

class CppPeer {
  constructor() {
    this.proc = spawn(PEER, [], { stdio: ["pipe", "pipe", "inherit"] })
    this.waiting = []
    this.exited = new Promise((res) => this.proc.on("exit", (code, signal) => res({ code, signal })))
    createInterface({ input: this.proc.stdout }).on("line", (line) => this.waiting.shift()?.resolve(line))
    this.exited.then(({ code, signal }) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`peer exited (${code ?? signal})`))
    })
  }

  /** Runs one command; resolves to the reply object, rejects if the peer dies. */
  call(cmd) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve: (line) => resolve(JSON.parse(line)), reject })
      this.proc.stdin.write(JSON.stringify(cmd) + "\n")
    })
  }

  /** Like call, but a refusal is an error. */
  async must(cmd) {
    const r = await this.call(cmd)
    if (!r.ok) throw new Error(`${cmd.cmd}: ${r.error}`)
    return r
  }

  async close() {
    this.proc.stdin.end()
    const { code, signal } = await this.exited
    if (code !== 0) throw new Error(`peer exited with ${code ?? signal}`)
  }
}

// ---- messages -------------------------------------------------------------------

const fromHex = (s) => Uint8Array.from(Buffer.from(s, "hex"))

/** Where the optional flags trailer of a message starts (§8.1). */
function trailerOffset(msg) {
  const buf = Buffer.from(msg)
  let pos = 1
  const skip = (n) => (pos += n)
  const hashes = () => {
    const [n, p] = readUleb(buf, pos)
    pos = p
    skip(32 * Number(n))
  }
  const bytes = () => {
    const [n, p] = readUleb(buf, pos)
    pos = p + Number(n)
  }
  hashes()
  hashes()
  let [n, p] = readUleb(buf, pos)
  pos = p
  for (let i = 0; i < Number(n); i++) {
    hashes()
    bytes()
  }
  ;[n, p] = readUleb(buf, pos)
  pos = p
  for (let i = 0; i < Number(n); i++) bytes()
  return pos
}

/** The message as a v1-only peer would send it: without the flags trailer. */
const stripTrailer = (msg) => msg.subarray(0, trailerOffset(msg))

/**
 * The changes a message carries: {hash, inDocument}, inDocument when it came
 * inside a document chunk (the reference's whole-document v2 messages).
 */
function carried(msg) {
  const out = []
  for (const entry of A.decodeSyncMessage(msg).changes) {
    const buf = Buffer.from(entry)
    for (const c of walkChunks(buf)) {
      const chunk = buf.subarray(c.start, c.end)
      if (c.type === CHUNK_DOCUMENT) {
        for (const ch of A.getAllChanges(A.load(chunk))) out.push({ hash: changeHash(ch), inDocument: true })
      } else {
        out.push({ hash: changeHash(chunk), inDocument: false })
      }
    }
  }
  return out
}

/** Problems with a message we sent to a v1-only peer. */
function v1Problems(msg) {
  const problems = []
  if (msg[0] !== 0x42) problems.push(`a v${msg[0] - 0x41} message to a v1-only peer: ${hex(msg)}`)
  for (const entry of A.decodeSyncMessage(msg).changes) {
    const chunks = walkChunks(Buffer.from(entry))
    if (chunks.length !== 1 || chunks[0].type !== 1) problems.push("a v1 entry that is not one change chunk")
  }
  return problems
}

const refJsonOf = (doc) => refJson(A.toJS(doc))
const headsOf = (doc) => sortedHeads(A.getHeads(doc))

// ---- directed: byte equality ------------------------------------------------------

/** A linear history of n changes by one actor, fixed bytes (time 0). */
function linearDoc(actor, n, prefix = "k") {
  let doc = A.init({ actor })
  for (let i = 0; i < n; i++) doc = A.change(doc, { time: 0 }, (d) => (d[prefix + i] = i))
  return doc
}

async function loadedPeer(doc) {
  const p = new CppPeer()
  const changes = A.getAllChanges(doc)
  if (changes.length) await p.must({ cmd: "load", bytes: hex(Buffer.concat(changes)) })
  return p
}

/** Our first message, and the reference's, from the same document. */
async function firstMessages(doc) {
  const p = await loadedPeer(doc)
  const ours = (await p.must({ cmd: "generate" })).message
  await p.close()
  const [, theirs] = A.generateSyncMessage(doc, A.initSyncState())
  return { ours, theirs: hex(theirs) }
}

/** Both sides (holding `doc`) answer the first message of a peer holding `other`. */
async function replies(doc, other, { v1 }) {
  let [, hello] = A.generateSyncMessage(other, A.initSyncState())
  if (v1) hello = stripTrailer(hello)
  const p = await loadedPeer(doc)
  await p.must({ cmd: "receive", message: hex(hello) })
  const ours = (await p.must({ cmd: "generate" })).message
  await p.close()
  const [replier, state] = A.receiveSyncMessage(A.clone(doc), A.initSyncState(), hello)
  const [, theirs] = A.generateSyncMessage(replier, state)
  return { ours, theirs: hex(theirs) }
}

const same = ({ ours, theirs }) => (ours === theirs ? [] : [`ours   ${ours}`, `theirs ${theirs}`])

async function directed(reporter) {
  const actor = "0123456789abcdef0123456789abcdef"
  const full = linearDoc(actor, 9)
  const part = A.load(A.save(linearDoc(actor, 7)))
  const cases = {
    "empty peer's first message": () => firstMessages(A.init()),
    "first message with a bloom": () => firstMessages(full),
    "v1 reply to an empty peer": () => replies(full, A.init(), { v1: true }),
    "v1 reply to a peer behind": () => replies(full, part, { v1: true }),
    "v2 reply of a few changes": () => replies(full, part, { v1: false }),
    "v2 reply to an empty peer: the whole document": () => replies(full, A.init(), { v1: false }),
    "v1 reply to a divergent peer": () => replies(full, linearDoc("ff".repeat(16), 3, "x"), { v1: true }),
  }
  for (const [name, run] of Object.entries(cases)) {
    try {
      reporter.record(`bytes: ${name}`, same(await run()))
    } catch (e) {
      reporter.fail(`bytes: ${name}`, e?.stack ?? String(e))
    }
  }
}

// ---- random scenarios ---------------------------------------------------------------

/** Two histories from a generated script: peers 0 and 1 (shared past through merges). */
function histories(rng) {
  const { handles } = replayScript(generateScript(rng))
  const all = (h) => h.getChanges([])
  return [all(handles[0]), all(handles[1])]
}

function scenario(seed) {
  const rng = new Rng(seed)
  let [refChanges, cppChanges] = histories(rng)
  const history = rng.weighted({ divergent: 60, refEmpty: 20, cppEmpty: 20 })
  if (history === "refEmpty") refChanges = []
  if (history === "cppEmpty") cppChanges = []
  const channel = rng.weighted({
    clean: 25, crossing: 15, v1: 15, drop: 15, duplicate: 10, restartRef: 10, restartCpp: 10,
  })
  return {
    rng,
    history,
    channel,
    refChanges,
    cppChanges,
    cppFirst: rng.chance(0.5),
    liveEdits: rng.chance(0.3) ? rng.range(1, 4) : 0,
    fault: rng.range(0, 5), // which message is lost or repeated
  }
}

async function runScenario(seed) {
  const s = scenario(seed)
  const { rng, channel } = s
  const problems = []
  let refDoc, expectedHeads
  try {
    refDoc = A.applyChanges(A.init({ actor: "aa".repeat(16) }), s.refChanges)[0]
    expectedHeads = headsOf(A.applyChanges(A.clone(refDoc), s.cppChanges)[0])
  } catch (e) {
    // Rarely, the reference's immutable JS layer throws while applying the
    // patches of a merge ("cannot increment a non-numeric value", "Reflect.get
    // called on non-object"), though A.load of the same changes works; its core
    // is fine, but the JS sync API cannot be used on such histories.
    return { s, problems, skipped: `the reference's JS layer cannot merge these histories: ${e}` }
  }
  const cpp = new CppPeer()
  try {
    if (s.cppChanges.length) await cpp.must({ cmd: "load", bytes: hex(Buffer.concat(s.cppChanges)) })
    let refState = A.initSyncState()
    const cppActor = "bb".repeat(16)
    const receivedBy = { ref: new Map(), cpp: new Map() }
    let sent = 0

    // How often each change reached a side on its own, not inside a whole
    // document.
    const count = (side, msg) => {
      for (const { hash, inDocument } of carried(msg))
        if (!inDocument) receivedBy[side].set(hash, (receivedBy[side].get(hash) ?? 0) + 1)
    }
    const generate = async (side) => {
      if (side === "ref") {
        let msg
        ;[refState, msg] = A.generateSyncMessage(refDoc, refState)
        return msg && channel === "v1" ? stripTrailer(msg) : msg
      }
      const { message } = await cpp.must({ cmd: "generate" })
      if (!message) return null
      const msg = fromHex(message)
      if (channel === "v1") problems.push(...v1Problems(msg))
      return msg
    }
    // Delivers message number n from `side` to the other side, unless it is the one lost.
    const deliver = async (side, msg, n, fault) => {
      if (fault === "drop" && n === s.fault) return
      for (let i = fault === "duplicate" && n === s.fault ? 2 : 1; i > 0; i--) {
        if (side === "ref") {
          count("cpp", msg)
          await cpp.must({ cmd: "receive", message: hex(msg) })
        } else {
          count("ref", msg)
          ;[refDoc, refState] = A.receiveSyncMessage(refDoc, refState, msg)
        }
      }
    }
    // One message each way, in the scenario's order; on a crossing channel
    // both are generated before either is delivered. True if either spoke.
    const round = async (fault) => {
      const crossing = []
      for (const side of s.cppFirst ? ["cpp", "ref"] : ["ref", "cpp"]) {
        const msg = await generate(side)
        if (!msg) continue
        if (channel === "crossing") crossing.push([side, msg, sent++])
        else await deliver(side, msg, sent++, fault)
        crossing.spoke = true
      }
      for (const [side, msg, n] of crossing) await deliver(side, msg, n, fault)
      return crossing.spoke === true
    }
    const untilQuiet = async (fault, what) => {
      for (let r = 0; r < MAX_ROUNDS; r++) {
        if (r < s.liveEdits && what === "sync") {
          refDoc = A.change(refDoc, { time: 0 }, (d) => (d[`ref${r}`] = r))
          await cpp.must({ cmd: "put", actor: cppActor, key: `cpp${r}`, value: r })
        }
        if (!(await round(fault))) return true
      }
      problems.push(`${what}: still talking after ${MAX_ROUNDS} rounds`)
      return false
    }
    const restart = async (ref, ours) => {
      if (ref === "persisted") refState = A.decodeSyncState(A.encodeSyncState(refState))
      if (ref === "fresh") refState = A.initSyncState()
      const state = ours === "persisted" ? (await cpp.must({ cmd: "encode_state" })).state : null
      await cpp.must({ cmd: "restart", state })
    }

    if (channel === "drop") {
      // A lost message stalls the exchange; new connections from the
      // persisted states resume it.
      await untilQuiet("drop", "until the loss stalls")
      await restart("persisted", "persisted")
    }
    if (channel === "restartRef" || channel === "restartCpp") {
      await untilQuiet(null, "first sync")
      refDoc = A.change(refDoc, { time: 0 }, (d) => (d.afterRestart = "ref"))
      await cpp.must({ cmd: "put", actor: cppActor, key: "afterRestart", value: 1 })
      const other = rng.chance(0.5) ? "persisted" : "fresh"
      if (channel === "restartRef") await restart("persisted", other)
      else await restart(other, "persisted")
      receivedBy.ref.clear()
      receivedBy.cpp.clear()
    }
    await untilQuiet(channel === "duplicate" ? "duplicate" : null, "sync")

    // Converged to the merged history (plus the edits made meanwhile).
    const report = await cpp.must({ cmd: "report" })
    if (s.liveEdits || channel.startsWith("restart")) expectedHeads = headsOf(refDoc)
    if (JSON.stringify(headsOf(refDoc)) !== JSON.stringify(expectedHeads))
      problems.push(`reference heads ${headsOf(refDoc)} are not the merged heads ${expectedHeads}`)
    if (JSON.stringify(report.heads) !== JSON.stringify(headsOf(refDoc)))
      problems.push(`heads differ: ours ${report.heads}, reference ${headsOf(refDoc)}`)
    if (report.json !== refJsonOf(refDoc)) problems.push(`JSON differs:\n ours ${report.json}\n ref  ${refJsonOf(refDoc)}`)
    if (report.queued !== 0) problems.push(`${report.queued} changes still queued`)
    if (report.changes !== A.getAllChanges(refDoc).length)
      problems.push(`${report.changes} changes, the reference has ${A.getAllChanges(refDoc).length}`)
    // Nothing sent twice on a channel that lost and repeated nothing.
    if (channel !== "drop" && channel !== "duplicate") {
      for (const [side, seen] of Object.entries(receivedBy))
        for (const [h, n] of seen) if (n > 1) problems.push(`${side} received change ${h} ${n} times`)
    }
    // Truncated messages: refused by us iff by the reference, and harmless.
    problems.push(...(await truncations(rng, cpp, refDoc)))
  } finally {
    await cpp.close().catch((e) => problems.push(String(e)))
  }
  return { s, problems }
}

/** Feeds truncations of a fresh reference message to both decoders and to our receive. */
async function truncations(rng, cpp, refDoc) {
  const problems = []
  // A message that carries changes: the reply to an empty v1 peer.
  const [, hello] = A.generateSyncMessage(A.init(), A.initSyncState())
  const [replier, state] = A.receiveSyncMessage(A.clone(refDoc), A.initSyncState(), stripTrailer(hello))
  const [, msg] = A.generateSyncMessage(replier, state)
  const before = [await cpp.must({ cmd: "report" }), await cpp.must({ cmd: "encode_state" })]
  for (let t = 0; t < 4; t++) {
    const cut = msg.subarray(0, rng.int(msg.length))
    let refOk = true
    try {
      A.decodeSyncMessage(cut)
    } catch {
      refOk = false
    }
    const ours = await cpp.call({ cmd: "decode", message: hex(cut) })
    if (ours.ok !== refOk) problems.push(`a ${cut.length}-byte prefix: reference ${refOk ? "accepts" : "refuses"}, we ${ours.error ?? "accept"}`)
    if (refOk) continue
    const r = await cpp.call({ cmd: "receive", message: hex(cut) })
    if (r.ok) problems.push(`receive accepted a ${cut.length}-byte prefix`)
    const after = [await cpp.must({ cmd: "report" }), await cpp.must({ cmd: "encode_state" })]
    if (JSON.stringify(after) !== JSON.stringify(before)) problems.push("a refused message changed the document or state")
  }
  return problems
}

// ---- main -------------------------------------------------------------------------------

const reporter = new Reporter({ verbose: opts.verbose })
await directed(reporter)
const first = opts.seed !== undefined ? Number(opts.seed) : (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0
const count = Number(opts.count)
for (let i = 0; i < count; i++) {
  const seed = (first + i) >>> 0
  let name = `seed ${seed}`
  try {
    const { s, problems, skipped } = await runScenario(seed)
    name += ` (${s.history}, ${s.channel}${s.liveEdits ? `, ${s.liveEdits} live edits` : ""})`
    if (skipped) reporter.skip(name, skipped)
    else reporter.record(name, problems)
  } catch (e) {
    reporter.fail(name, e?.stack ?? String(e))
  }
}
if (reporter.failed) console.log(`replay one: node sync_test.mjs --peer ${opts.peer} --seed <seed> --count 1`)
reporter.finish()
