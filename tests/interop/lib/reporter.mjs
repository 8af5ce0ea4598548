// A tiny test reporter: one line per test, details under failures, and the
// closing line `N passed, N failed[, N skipped]` the build greps for.

export class Reporter {
  constructor({ verbose = true } = {}) {
    this.verbose = verbose
    this.passed = 0
    this.failed = 0
    this.skipped = 0
  }

  pass(name) {
    this.passed++
    if (this.verbose) console.log(`ok    ${name}`)
  }

  /** `details`: a string or a list of strings, printed indented. */
  fail(name, details = []) {
    this.failed++
    console.log(`FAIL  ${name}`)
    for (const d of [].concat(details)) console.log(String(d).replace(/^/gm, "      "))
  }

  skip(name, why) {
    this.skipped++
    console.log(`skip  ${name}: ${why}`)
  }

  /** Records a test from a list of problems: none = passed. */
  record(name, problems) {
    if (problems.length) this.fail(name, problems)
    else this.pass(name)
  }

  summary() {
    return `${this.passed} passed, ${this.failed} failed` + (this.skipped ? `, ${this.skipped} skipped` : "")
  }

  /** Prints the closing line and sets the exit code (non-zero on any failure). */
  finish() {
    console.log(this.summary())
    process.exitCode = this.failed ? 1 : 0
  }
}
