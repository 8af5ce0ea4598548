// Just enough of the Automerge chunk container (FORMAT.md §2, §3) to tell
// files apart and to describe change chunks independently of both
// implementations: chunk walking, the change header, change hashes, and
// type-2 (deflated) change chunks.
import { createHash } from "node:crypto"
import { deflateRawSync, inflateRawSync } from "node:zlib"

export const MAGIC = Buffer.from([0x85, 0x6f, 0x4a, 0x83])
export const CHUNK_DOCUMENT = 0
export const CHUNK_CHANGE = 1
export const CHUNK_COMPRESSED_CHANGE = 2

export const hex = (bytes) => Buffer.from(bytes).toString("hex")

export function sha256(bytes) {
  return createHash("sha256").update(bytes).digest()
}

/** Reads a uLEB128 at `pos`; returns [value as BigInt, next position]. */
export function readUleb(buf, pos) {
  let value = 0n
  let shift = 0n
  for (;;) {
    if (pos >= buf.length) throw new Error("truncated uLEB128")
    const b = buf[pos++]
    value |= BigInt(b & 0x7f) << shift
    shift += 7n
    if (!(b & 0x80)) return [value, pos]
  }
}

/** Reads a signed LEB128 at `pos`; returns [value as BigInt, next position]. */
export function readSleb(buf, pos) {
  let value = 0n
  let shift = 0n
  for (;;) {
    if (pos >= buf.length) throw new Error("truncated LEB128")
    const b = buf[pos++]
    value |= BigInt(b & 0x7f) << shift
    shift += 7n
    if (!(b & 0x80)) return [b & 0x40 ? value - (1n << shift) : value, pos]
  }
}

export function uleb(n) {
  n = BigInt(n)
  const out = []
  do {
    let b = Number(n & 0x7fn)
    n >>= 7n
    if (n) b |= 0x80
    out.push(b)
  } while (n)
  return Buffer.from(out)
}

/**
 * Splits `buf` into its chunks: [{type, start, end, bodyStart}]. Does not
 * verify checksums. Throws when a chunk header is malformed or truncated.
 */
export function walkChunks(buf) {
  const chunks = []
  let pos = 0
  while (pos < buf.length) {
    if (pos + 9 > buf.length || !buf.subarray(pos, pos + 4).equals(MAGIC)) {
      throw new Error(`no chunk header at byte ${pos}`)
    }
    const type = buf[pos + 8]
    const [len, bodyStart] = readUleb(buf, pos + 9)
    const end = bodyStart + Number(len)
    if (end > buf.length) throw new Error(`chunk at byte ${pos} overruns the input`)
    chunks.push({ type, start: pos, end, bodyStart })
    pos = end
  }
  return chunks
}

/** The distinct chunk types of a file, or null when it cannot be walked. */
export function chunkTypes(buf) {
  try {
    return [...new Set(walkChunks(buf).map((c) => c.type))].sort()
  } catch {
    return null
  }
}

/** A type-1 chunk from a type-1 or type-2 change chunk (the checksum is kept). */
export function uncompressedChange(chunk) {
  chunk = Buffer.from(chunk)
  const [c] = walkChunks(chunk)
  if (c.type === CHUNK_CHANGE) return chunk
  if (c.type !== CHUNK_COMPRESSED_CHANGE) throw new Error(`not a change chunk (type ${c.type})`)
  const body = inflateRawSync(chunk.subarray(c.bodyStart, c.end))
  return Buffer.concat([chunk.subarray(0, 8), Buffer.from([CHUNK_CHANGE]), uleb(body.length), body])
}

/** The type-2 (deflated) form of a type-1 change chunk; same checksum, same hash. */
export function compressedChange(chunk) {
  chunk = Buffer.from(chunk)
  const [c] = walkChunks(chunk)
  if (c.type !== CHUNK_CHANGE) throw new Error("expected a type-1 change chunk")
  const body = deflateRawSync(chunk.subarray(c.bodyStart, c.end))
  return Buffer.concat([chunk.subarray(0, 8), Buffer.from([CHUNK_COMPRESSED_CHANGE]), uleb(body.length), body])
}

/** Hash of a change: SHA-256 of its uncompressed chunk without magic and checksum. */
export function changeHash(chunk) {
  return hex(sha256(uncompressedChange(chunk).subarray(8)))
}

/**
 * The header of a change chunk (§3 fields 1-5), with numbers as decimal
 * strings: {hash, actor, seq, startOp, time, deps: [hex, sorted]}.
 * This is what `etherply doc changes` prints, one line per change.
 */
export function changeHeader(chunk) {
  const full = uncompressedChange(chunk)
  const [c] = walkChunks(full)
  let pos = c.bodyStart
  let n
  ;[n, pos] = readUleb(full, pos)
  const deps = []
  for (let i = 0; i < Number(n); i++, pos += 32) deps.push(hex(full.subarray(pos, pos + 32)))
  ;[n, pos] = readUleb(full, pos)
  const actor = hex(full.subarray(pos, pos + Number(n)))
  pos += Number(n)
  let seq, startOp, time
  ;[seq, pos] = readUleb(full, pos)
  ;[startOp, pos] = readUleb(full, pos)
  ;[time, pos] = readSleb(full, pos)
  return {
    hash: hex(sha256(full.subarray(8))),
    actor,
    seq: seq.toString(),
    startOp: startOp.toString(),
    time: time.toString(),
    deps: deps.sort(),
  }
}

/** One `etherply doc changes` line for a change header. */
export function changeLine(h) {
  return [h.hash, h.actor, h.seq, h.startOp, h.time, h.deps.length ? h.deps.join(",") : "-"].join(" ")
}

/**
 * The columns of the first chunk of `buf`, a document chunk (FORMAT.md §6.1),
 * with deflated columns inflated: {actorsAndHeads, changeCols, opCols,
 * headIndexes, rest}, each column {spec (deflate bit cleared), deflated, data}.
 * rest is whatever follows the chunk (queued changes). Throws when the chunk
 * is not a well-formed document chunk.
 */
export function documentColumns(buf) {
  buf = Buffer.from(buf)
  const [c] = walkChunks(buf)
  if (!c || c.type !== CHUNK_DOCUMENT) throw new Error("not a document chunk")
  let pos = c.bodyStart
  const skip = (n) => {
    pos += n
    if (pos > c.end) throw new Error("document chunk is truncated")
  }
  const num = () => {
    const [v, next] = readUleb(buf, pos)
    pos = next
    return Number(v)
  }
  const headStart = pos
  const nActors = num()
  for (let i = 0; i < nActors; i++) skip(num())
  const nHeads = num()
  skip(32 * nHeads)
  const actorsAndHeads = buf.subarray(headStart, pos)
  const meta = () => Array.from({ length: num() }, () => ({ spec: num(), len: num() }))
  const changeMeta = meta()
  const opMeta = meta()
  const data = (m) =>
    m.map(({ spec, len }) => {
      const raw = buf.subarray(pos, pos + len)
      skip(len)
      const deflated = (spec & 8) !== 0
      return { spec: spec & ~8, deflated, data: deflated ? inflateRawSync(raw) : raw }
    })
  const changeCols = data(changeMeta)
  const opCols = data(opMeta)
  return { actorsAndHeads, changeCols, opCols, headIndexes: buf.subarray(pos, c.end), rest: buf.subarray(c.end) }
}

/**
 * Compares two saved documents column by column, ignoring how DEFLATE
 * compressed them. Returns null when equal, else where they first differ.
 */
export function documentDifference(a, b) {
  const x = documentColumns(a)
  const y = documentColumns(b)
  if (!x.actorsAndHeads.equals(y.actorsAndHeads)) return "actors or heads"
  for (const kind of ["changeCols", "opCols"]) {
    const specs = (d) => d[kind].map((col) => `${col.spec}${col.deflated ? "z" : ""}`).join(",")
    if (specs(x) !== specs(y)) return `${kind} layout: ${specs(x)} vs ${specs(y)}`
    const at = x[kind].findIndex((col, i) => !col.data.equals(y[kind][i].data))
    if (at >= 0) return `${kind} column ${x[kind][at].spec}`
  }
  if (!x.headIndexes.equals(y.headIndexes)) return "head indexes"
  if (!x.rest.equals(y.rest)) return "chunks after the document"
  return null
}
