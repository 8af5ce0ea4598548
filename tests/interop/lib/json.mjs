// JSON as the two sides print it.
//
// The reference side: `refJson(A.toJS(doc))` is `JSON.stringify(A.toJS(doc))`
// with the two agreed exceptions, so that it can be compared with EtherPly's
// output as plain text:
//   - bytes (Uint8Array) become standard base64 strings with padding;
//   - BigInt values (the reference returns every uint, and every int outside
//     the safe range, as a BigInt) are written as exact decimal numbers,
//     where JSON.stringify would throw.
// Everything else follows JSON.stringify: key order is the object's own order
// (integer-like keys first, ascending, then the rest in the reference's
// order), Date -> ISO string via toJSON, Counter -> its number,
// ImmutableString -> its string, numbers in JavaScript's shortest form
// (1e+21, 1e-7, -0 -> 0), no whitespace.
//
// The EtherPly side: its text is compared byte for byte, never re-parsed into
// JavaScript numbers; `rawMembers` cuts an output line into the raw text of
// each top-level member so that `"json":{...}` can be compared exactly.

/** Normalised JSON text of a value produced by the reference (A.toJS / materialize). */
export function refJson(v) {
  if (v === null || v === undefined) return "null"
  switch (typeof v) {
    case "bigint":
      return v.toString()
    case "number":
    case "boolean":
    case "string":
      return JSON.stringify(v)
  }
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString("base64"))
  if (Array.isArray(v)) return "[" + v.map(refJson).join(",") + "]"
  // Date, Counter and ImmutableString all define toJSON.
  if (typeof v.toJSON === "function") return refJson(v.toJSON())
  return "{" + Object.keys(v).map((k) => JSON.stringify(k) + ":" + refJson(v[k])).join(",") + "}"
}

const WS = new Set([" ", "\t", "\n", "\r"])

function skipWs(s, i) {
  while (i < s.length && WS.has(s[i])) i++
  return i
}

function expect(s, i, ch) {
  if (s[i] !== ch) throw new Error(`JSON: expected '${ch}' at ${i}, found ${JSON.stringify(s.slice(i, i + 10))}`)
  return i + 1
}

/** Index just past the JSON string starting at s[i] (a quote). */
function skipString(s, i) {
  i = expect(s, i, '"')
  while (i < s.length) {
    const c = s[i]
    if (c === "\\") i += 2
    else if (c === '"') return i + 1
    else i++
  }
  throw new Error("JSON: unterminated string")
}

/** Index just past the JSON value starting at s[i] (no leading whitespace). */
function skipValue(s, i) {
  const c = s[i]
  if (c === '"') return skipString(s, i)
  if (c === "{" || c === "[") {
    const close = c === "{" ? "}" : "]"
    i = skipWs(s, i + 1)
    if (s[i] === close) return i + 1
    for (;;) {
      if (c === "{") {
        i = skipWs(s, skipString(s, i))
        i = skipWs(s, expect(s, i, ":"))
      }
      i = skipWs(s, skipValue(s, i))
      if (s[i] === close) return i + 1
      i = skipWs(s, expect(s, i, ","))
    }
  }
  const start = i
  while (i < s.length && !",]}".includes(s[i]) && !WS.has(s[i])) i++
  if (i === start) throw new Error(`JSON: unexpected ${JSON.stringify(s.slice(i, i + 10))} at ${i}`)
  return i
}

/**
 * The raw text of each member of the JSON object in `line`, as a Map from the
 * (decoded) key to the exact characters of its value. Throws on malformed text.
 */
export function rawMembers(line) {
  const s = line.trim()
  const out = new Map()
  let i = skipWs(s, expect(s, 0, "{"))
  if (s[i] === "}") return out
  for (;;) {
    const keyEnd = skipString(s, i)
    const key = JSON.parse(s.slice(i, keyEnd))
    i = skipWs(s, expect(s, skipWs(s, keyEnd), ":"))
    const valueEnd = skipValue(s, i)
    out.set(key, s.slice(i, valueEnd))
    i = skipWs(s, valueEnd)
    if (s[i] === "}") {
      if (skipWs(s, i + 1) !== s.length) throw new Error("JSON: trailing characters")
      return out
    }
    i = skipWs(s, expect(s, i, ","))
  }
}

/** A short description of where two texts first differ, for failure messages. */
export function describeDiff(expected, actual, context = 60) {
  const a = Array.from(String(expected)) // code points, so that emoji are never cut in half
  const b = Array.from(String(actual))
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  const from = Math.max(0, i - context)
  const cut = (s) => (from > 0 ? "…" : "") + s.slice(from, i + context).join("") + (s.length > i + context ? "…" : "")
  return (
    `first difference at code point ${i} (lengths ${a.length} / ${b.length})\n` +
    `      reference: ${cut(a)}\n` +
    `      etherply:  ${cut(b)}`
  )
}
