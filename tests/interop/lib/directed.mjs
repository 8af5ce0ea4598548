// Directed scripts: small hand-written cases for reference behaviours that a
// random script hits only by chance. The differential test runs them before
// the random cases, with the same three checks. Each is written with a
// builder that runs the ops on reference handles as it records them, so that
// object ids come from the reference, never typed by hand.
import { applyOp, newPeer, runMergeStep } from "./reference.mjs"

/** Typed script values. */
export const V = {
  null: () => ({ type: "null" }),
  bool: (value) => ({ type: "bool", value }),
  int: (v) => ({ type: "int", value: String(v) }),
  uint: (v) => ({ type: "uint", value: String(v) }),
  f64: (value) => ({ type: "f64", value }),
  str: (value) => ({ type: "str", value }),
  bytes: (hex) => ({ type: "bytes", value: hex }),
  counter: (v) => ({ type: "counter", value: String(v) }),
  timestamp: (ms) => ({ type: "timestamp", value: String(ms) }),
}

class Builder {
  constructor(actors) {
    this.handles = actors.map((a) => newPeer(a))
    this.script = { peers: actors.map((actor) => ({ actor })), steps: [] }
  }

  /** A change step on `peer`; `fn(t)` issues the ops through `t`, which returns object ids. */
  change(peer, fn, { time = 0, message = null } = {}) {
    const h = this.handles[peer]
    const ops = []
    const rec = (op) => {
      ops.push(op)
      return applyOp(h, op)
    }
    const prop = (p) => (typeof p === "number" ? { index: p } : { key: p })
    fn({
      put: (obj, key, value) => rec({ op: "put", obj, key, value }),
      putObject: (obj, key, type) => rec({ op: "put_object", obj, key, type }),
      insert: (obj, index, value) => rec({ op: "insert", obj, index, value }),
      insertObject: (obj, index, type) => rec({ op: "insert_object", obj, index, type }),
      set: (obj, index, value) => rec({ op: "set", obj, index, value }),
      del: (obj, p) => rec({ op: "delete", obj, ...prop(p) }),
      increment: (obj, p, by) => rec({ op: "increment", obj, ...prop(p), by }),
      spliceText: (obj, index, del, text) => rec({ op: "splice", obj, index, delete: del, text }),
      spliceList: (obj, index, del, values) => rec({ op: "splice", obj, index, delete: del, values }),
    })
    h.commit(message, time)
    this.script.steps.push({ step: "change", peer, time, message, ops })
    return this
  }

  merge(into, from) {
    runMergeStep(this.handles[into], this.handles[from])
    this.script.steps.push({ step: "merge", into, from })
    return this
  }

  /** Merges every peer with every other, so that all end with the same state. */
  mergeAll() {
    for (let i = 0; i < this.handles.length; i++) for (let j = 0; j < this.handles.length; j++) if (i !== j) this.merge(i, j)
    return this
  }
}

const A1 = "0123456789abcdef0123456789abcdef"
const A2 = "fedcba9876543210fedcba9876543210"

/** Every scalar type with its edge values, and keys that test JSON key order. */
function scalars() {
  const b = new Builder([A1])
  b.change(0, (t) => {
    t.put("_root", "uint max", V.uint("18446744073709551615"))
    t.put("_root", "uint 2^63", V.uint("9223372036854775808"))
    t.put("_root", "int min", V.int("-9223372036854775808"))
    t.put("_root", "int max", V.int("9223372036854775807"))
    t.put("_root", "int 2^53+1", V.int("9007199254740993"))
    t.put("_root", "int -4", V.int(-4))
    for (const [i, f] of [1e21, 1e-7, 3.14159267, 5e-324, 1.7976931348623157e308, 0.1, 100, -0.5, 2 ** 53].entries()) {
      t.put("_root", `f64 ${i}`, V.f64(f))
    }
    t.put("_root", "ts 1941", V.timestamp(Date.UTC(1941, 3, 26, 8, 17, 0, 123)))
    t.put("_root", "ts max", V.timestamp(8.64e15))
    t.put("_root", "ts min", V.timestamp(-8.64e15))
    t.put("_root", "ts year -1", V.timestamp(-62198755200000))
    t.put("_root", "ts 0", V.timestamp(0))
    t.put("_root", "counter", V.counter(5))
    t.put("_root", "bytes", V.bytes("856f4a83"))
    t.put("_root", "bytes empty", V.bytes(""))
    t.put("_root", "bool", V.bool(false))
    t.put("_root", "null", V.null())
    t.put("_root", "str", V.str("👨‍👩‍👧 \"q\" \\ \n\t\u0000\u001f\u007f\u2028 é e\u0301"))
    t.put("_root", "str empty", V.str(""))
    for (const k of ["10", "2", "01", "-1", "0", "4294967294", "4294967295", "ｚ", "😀", "\uffff", "é", "Z", "a", ""]) {
      t.put("_root", k, V.int(k.length))
    }
  })
  return b.script
}

/** Writing back the value a key already has makes no op; "same" compares datatype and value. */
function putSameValue() {
  const b = new Builder([A1])
  let list
  b.change(0, (t) => {
    t.put("_root", "k", V.int(1))
    t.put("_root", "c", V.counter(5))
    t.put("_root", "f", V.f64(0))
    list = t.putObject("_root", "l", "list")
    t.insert(list, 0, V.str("x"))
  })
  b.change(0, (t) => t.put("_root", "k", V.int(1)), { time: 1 }) // no change
  b.change(0, (t) => t.put("_root", "k", V.uint(1)), { time: 2 }) // another datatype: a change
  b.change(0, (t) => t.increment("_root", "c", 2), { time: 3 })
  b.change(0, (t) => t.put("_root", "c", V.counter(7)), { time: 4 }) // equals the counter's current value: no change
  b.change(0, (t) => t.put("_root", "c", V.counter(5)), { time: 5 }) // the counter's initial value: a change
  b.change(0, (t) => t.put("_root", "f", V.f64(-0)), { time: 6 }) // the script says 0 (JSON has no -0)
  b.change(0, (t) => t.set(list, 0, V.str("x")), { time: 7 }) // no change
  b.change(0, (t) => {
    t.put("_root", "n", V.str("q"))
    t.put("_root", "n", V.str("q")) // the second put of the same transaction is a no-op
  }, { time: 8 })
  b.change(0, (t) => t.del("_root", "missing"), { time: 9 }) // deleting a missing key: no change
  b.change(0, () => {}, { time: 10, message: "empty" }) // no ops: no change
  return b.script
}

/** Putting the winner's value over a conflict deletes the losers; the loser's value overwrites all. */
function conflictPutSame() {
  const b = new Builder([A1, A2, "00"])
  b.change(0, (t) => t.put("_root", "k", V.str("x")))
  b.change(1, (t) => t.put("_root", "k", V.str("y")))
  b.change(2, (t) => t.put("_root", "k", V.str("z")))
  b.mergeAll()
  b.change(0, (t) => t.put("_root", "k", V.str("y")), { time: 1 }) // the winner's value (fedc... wins)
  b.change(1, (t) => t.put("_root", "k", V.str("x")), { time: 1 }) // a loser's value
  b.mergeAll()
  return b.script
}

/** Increments over conflicts between counters and other values, and against concurrent deletes/sets. */
function counterConflicts() {
  const b = new Builder([A1, A2])
  b.change(0, (t) => {
    t.put("_root", "a", V.int(1))
    t.put("_root", "b", V.counter(5))
    t.put("_root", "c", V.counter(7))
    t.put("_root", "d", V.counter(1))
    t.put("_root", "e", V.counter(1))
  })
  b.change(1, (t) => {
    t.put("_root", "a", V.counter(5)) // winner counter, loser int
    t.put("_root", "b", V.int(1)) // winner int, loser counter
    t.put("_root", "c", V.counter(9)) // both counters
  })
  b.mergeAll()
  b.change(0, (t) => {
    t.increment("_root", "a", 2)
    t.increment("_root", "b", 2)
    t.increment("_root", "c", 2)
    t.increment("_root", "d", 3)
    t.increment("_root", "e", -3)
  })
  b.change(1, (t) => {
    t.del("_root", "d") // concurrent with the increment: the delete wins
    t.put("_root", "e", V.int(9)) // concurrent with the increment: the set wins
  })
  b.mergeAll()
  return b.script
}

/** Splices insert before they delete; text indexes count code points. */
function splices() {
  const b = new Builder([A1])
  let list, text
  b.change(0, (t) => {
    list = t.putObject("_root", "l", "list")
    t.spliceList(list, 0, 0, [V.int(1), V.int(2), V.int(3), V.int(4)])
    text = t.putObject("_root", "t", "text")
    t.spliceText(text, 0, 0, "a😀é\u0301👨‍👩‍👧z")
  })
  b.change(0, (t) => {
    t.spliceList(list, 1, 2, [V.str("x"), V.f64(2.5), V.timestamp(5), V.bytes("00ff"), V.null(), V.bool(true), V.int(0), V.int(-3), V.int("-9223372036854775808"), V.uint("18446744073709551615")])
    t.spliceText(text, 1, 3, "中文")
    t.spliceText(text, 4, 5, "")
    t.spliceText(text, 0, 0, "\u0000")
  })
  b.change(0, (t) => t.spliceText(text, 0, 0, ""), { time: 1 }) // nothing: no change
  return b.script
}

/** Concurrent inserts at one place, inserts after a deleted element, counters in lists. */
function lists() {
  const b = new Builder([A1, A2, "ff"])
  let list
  b.change(0, (t) => {
    list = t.putObject("_root", "l", "list")
    t.insert(list, 0, V.int(0))
    t.insert(list, 1, V.counter(10))
  })
  b.mergeAll()
  b.change(0, (t) => t.insert(list, 1, V.str("a")))
  b.change(1, (t) => {
    t.insert(list, 1, V.str("b"))
    t.increment(list, 2, 5)
  })
  b.change(2, (t) => {
    t.del(list, 0)
    t.insertObject(list, 0, "map")
  })
  b.mergeAll()
  b.change(0, (t) => t.increment(list, 3, -1))
  b.change(1, (t) => t.set(list, 3, V.counter(3)))
  b.mergeAll()
  return b.script
}

/** Writes into an object that a concurrent change deleted; actors of 1, 8, 16 and 32 bytes. */
function deletedObject() {
  const b = new Builder(["01", "0100000000000000", A1, "ff".repeat(32)])
  let map
  b.change(0, (t) => {
    map = t.putObject("_root", "m", "map")
    t.put(map, "x", V.int(1))
  })
  b.mergeAll()
  b.change(0, (t) => t.del("_root", "m"))
  b.change(1, (t) => t.put(map, "x", V.int(2)))
  b.change(2, (t) => t.putObject(map, "inner", "text"))
  b.change(3, (t) => t.put("_root", "m", V.str("scalar")))
  b.mergeAll()
  return b.script
}

/** Commit times and messages. */
function timesAndMessages() {
  const b = new Builder([A1])
  b.change(0, (t) => t.put("_root", "a", V.int(1)), { time: -1, message: "" })
  b.change(0, (t) => t.put("_root", "a", V.int(2)), { time: 2 ** 53 - 1, message: "édition 😀\nline" })
  b.change(0, (t) => t.put("_root", "a", V.int(3)), { time: -(2 ** 40), message: null })
  return b.script
}

export const DIRECTED = {
  scalars,
  "put-same-value": putSameValue,
  "conflict-put-same": conflictPutSame,
  "counter-conflicts": counterConflicts,
  splices,
  lists,
  "deleted-object": deletedObject,
  "times-and-messages": timesAndMessages,
}
