// Seeded pseudo-random numbers (mulberry32) for the differential test.
// The same seed gives the same sequence on every platform and node version,
// which is what makes `--seed S --count 1` replay a failing case exactly.

export class Rng {
  constructor(seed) {
    this.state = seed >>> 0
  }

  /** A float in [0, 1). */
  next() {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [0, n). */
  int(n) {
    return Math.floor(this.next() * n)
  }

  /** An integer in [lo, hi], both ends included. */
  range(lo, hi) {
    return lo + this.int(hi - lo + 1)
  }

  chance(p) {
    return this.next() < p
  }

  pick(array) {
    return array[this.int(array.length)]
  }

  /** Picks a key of `weights` ({name: weight}) with probability proportional to its weight. */
  weighted(weights) {
    const entries = Object.entries(weights).filter(([, w]) => w > 0)
    let r = this.next() * entries.reduce((s, [, w]) => s + w, 0)
    for (const [name, w] of entries) {
      if ((r -= w) < 0) return name
    }
    return entries[entries.length - 1][0]
  }

  /** A new array with the elements of `array` in random order (Fisher-Yates). */
  shuffle(array) {
    const out = array.slice()
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[out[i], out[j]] = [out[j], out[i]]
    }
    return out
  }

  /** `n` random bytes as lowercase hex. */
  hex(n) {
    let s = ""
    for (let i = 0; i < n; i++) s += this.int(256).toString(16).padStart(2, "0")
    return s
  }

  /** A random 64-bit pattern as a BigInt in [0, 2^64). */
  bits64() {
    return (BigInt(this.int(2 ** 32)) << 32n) | BigInt(this.int(2 ** 32))
  }
}
