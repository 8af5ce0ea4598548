// The reference side: @automerge/automerge 3.5.0 driven through its low-level
// handle (A.getBackend), exactly as etherply_script is driven by a script.
// See README.md for the script format.
import * as A from "@automerge/automerge"
import { refJson } from "./json.mjs"
import { hex } from "./chunks.mjs"

export { A }

const OBJECT_INIT = { map: () => ({}), list: () => [], text: () => "" }

function integer(decimal) {
  const n = BigInt(decimal)
  return Number.isSafeInteger(Number(n)) ? Number(n) : n
}

/** A typed script value V as the [value, datatype] arguments of put/insert. */
export function putArgs(v) {
  switch (v.type) {
    case "null":
      return [null, undefined]
    case "bool":
      return [v.value, undefined]
    case "int":
      return [integer(v.value), "int"]
    case "uint":
      return [integer(v.value), "uint"]
    case "f64":
      return [v.value, "f64"]
    case "str":
      return [v.value, "str"]
    case "bytes":
      return [Uint8Array.from(Buffer.from(v.value, "hex")), "bytes"]
    case "counter":
      return [integer(v.value), "counter"]
    case "timestamp":
      return [integer(v.value), "timestamp"]
  }
  throw new Error(`unknown value type ${JSON.stringify(v.type)}`)
}

/**
 * A typed script value as an element of a list splice. The reference infers
 * the datatype of splice values from their JavaScript type: a BigInt is an
 * int (a uint from 2^63 up), a non-integer number an f64 (but a positive
 * integer number would become an int, and zero or a negative one an f64),
 * a Date a timestamp. So counters, uints below 2^63 and integer-valued f64s
 * cannot be spliced, and the generator never puts them in a splice.
 */
export function spliceValue(v) {
  switch (v.type) {
    case "null":
      return null
    case "bool":
    case "str":
      return v.value
    case "int":
      return BigInt(v.value)
    case "uint":
      if (BigInt(v.value) < 2n ** 63n) break
      return BigInt(v.value)
    case "f64":
      if (Number.isInteger(v.value)) break
      return v.value
    case "bytes":
      return Uint8Array.from(Buffer.from(v.value, "hex"))
    case "timestamp":
      return new Date(Number(v.value))
  }
  throw new Error(`value ${JSON.stringify(v)} cannot be spliced into a list on the reference`)
}

const REFERENCE_TYPE = { bool: "boolean" }

/** Guards against the inference above: the spliced values have the script's datatypes. */
function checkSplicedTypes(h, op) {
  op.values.forEach((v, k) => {
    const [type] = h.getWithType(op.obj, op.index + k)
    if (type !== (REFERENCE_TYPE[v.type] ?? v.type)) {
      throw new Error(`harness: spliced ${JSON.stringify(v)} became a ${type} on the reference`)
    }
  })
}

/** UTF-16 offset of code point number `cp` in `s` (cp may equal the length). */
export function utf16Index(s, cp) {
  let units = 0
  let seen = 0
  for (const ch of s) {
    if (seen === cp) return units
    units += ch.length
    seen++
  }
  if (seen === cp) return units
  throw new Error(`code point index ${cp} beyond text of ${seen} code points`)
}

const prop = (op) => ("key" in op ? op.key : op.index)

/** Applies one script op to a reference handle (inside the open transaction). */
export function applyOp(h, op) {
  switch (op.op) {
    case "put":
    case "set":
      return h.put(op.obj, prop(op), ...putArgs(op.value))
    case "insert":
      return h.insert(op.obj, op.index, ...putArgs(op.value))
    case "put_object":
      return h.putObject(op.obj, op.key, OBJECT_INIT[op.type]())
    case "insert_object":
      return h.insertObject(op.obj, op.index, OBJECT_INIT[op.type]())
    case "delete":
      return h.delete(op.obj, prop(op))
    case "increment":
      return h.increment(op.obj, prop(op), op.by)
    case "splice":
      if ("text" in op) {
        // Script indexes count code points; the reference counts UTF-16 units.
        const s = h.text(op.obj)
        const from = utf16Index(s, op.index)
        const to = utf16Index(s, op.index + op.delete)
        return h.splice(op.obj, from, to - from, op.text)
      }
      h.splice(op.obj, op.index, op.delete, op.values.map(spliceValue))
      return checkSplicedTypes(h, op)
  }
  throw new Error(`unknown op ${JSON.stringify(op.op)}`)
}

export function newPeer(actor) {
  return A.getBackend(A.init({ actor }))
}

/**
 * Runs one change step: all its ops in one transaction, then a commit with
 * the step's time and message. Returns {hash, change} (both null when the
 * step made no change), change as a Uint8Array.
 */
export function runChangeStep(h, step) {
  for (const op of step.ops) applyOp(h, op)
  const hash = h.commit(step.message ?? null, step.time)
  if (hash === null) return { hash: null, change: null }
  const change = h.getLastLocalChange()
  return { hash, change }
}

/** Merge step: gives `into` every change `from` has that `into` lacks. */
export function runMergeStep(into, from) {
  into.applyChanges(into.getChangesAdded(from))
}

export const handleJson = (h) => refJson(h.materialize("/"))
export const sortedHeads = (heads) => heads.slice().sort()

/**
 * Replays a whole script on fresh reference handles. Returns
 *   steps: [{step, hash, change}] for the change steps (change: Uint8Array|null)
 *   peers: [{peer, json, heads}] with json as normalised text
 *   handles: the handles, for further inspection.
 */
export function replayScript(script) {
  const handles = script.peers.map((p) => newPeer(p.actor))
  const steps = []
  script.steps.forEach((step, i) => {
    if (step.step === "change") steps.push({ step: i, ...runChangeStep(handles[step.peer], step) })
    else if (step.step === "merge") runMergeStep(handles[step.into], handles[step.from])
    else throw new Error(`unknown step ${JSON.stringify(step.step)}`)
  })
  const peers = handles.map((h, peer) => ({ peer, json: handleJson(h), heads: sortedHeads(h.getHeads()) }))
  return { steps, peers, handles }
}

/** The lines etherply_script must print for a script (what the JS runner prints). */
export function runnerLines(result) {
  const lines = result.steps.map((s) =>
    JSON.stringify({ step: s.step, hash: s.hash, change: s.change ? hex(s.change) : null }),
  )
  for (const p of result.peers) {
    lines.push(`{"peer":${p.peer},"json":${p.json},"heads":${JSON.stringify(p.heads)}}`)
  }
  return lines
}

/**
 * Loads bytes (any chunks) with the reference and describes the result as
 * EtherPly prints it: {json, heads, changes: [chunk bytes, in the reference's order]}.
 */
export function loadDescription(bytes) {
  const doc = A.load(bytes)
  return {
    json: refJson(A.toJS(doc)),
    heads: sortedHeads(A.getHeads(doc)),
    changes: A.getAllChanges(doc),
  }
}
