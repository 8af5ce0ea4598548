// Running the programs under test, with a timeout, never through a shell.
import { spawn } from "node:child_process"

/**
 * Runs `program args...`. A program ending in .mjs/.js is run with this node
 * (the fake implementations of the self-checks). Resolves, never rejects, with
 *   {code, signal, stdout, stderr, timedOut, error}
 * stdout and stderr are UTF-8 strings; `input` (string or bytes) goes to stdin.
 */
export function run(program, args, { input, timeoutMs = 30000 } = {}) {
  const viaNode = /\.(mjs|js)$/.test(program)
  const cmd = viaNode ? process.execPath : program
  const argv = viaNode ? [program, ...args] : args
  return new Promise((resolve) => {
    const out = []
    const err = []
    let timedOut = false
    let child
    try {
      child = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"] })
    } catch (error) {
      resolve({ code: null, signal: null, stdout: "", stderr: "", timedOut, error })
      return
    }
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.stdout.on("data", (d) => out.push(d))
    child.stderr.on("data", (d) => err.push(d))
    child.stdin.on("error", () => {}) // the program may exit without reading its input
    child.on("error", (error) => {
      clearTimeout(timer)
      resolve({ code: null, signal: null, stdout: "", stderr: "", timedOut, error })
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
        error: null,
      })
    })
    child.stdin.end(input ?? "")
  })
}

const SANITIZER = /AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|runtime error:/

/**
 * Why a run did not end normally (timeout, signal, spawn failure, sanitizer
 * report), or null. An exit code alone is not abnormal.
 */
export function abnormal(r) {
  if (r.error) return `could not run: ${r.error.message}`
  if (r.timedOut) return "timed out (killed)"
  if (r.signal) return `killed by signal ${r.signal} (crash)`
  if (SANITIZER.test(r.stderr)) return `sanitizer report:\n${r.stderr.slice(0, 2000)}`
  return null
}

/** A one-line summary of a failed run for messages. */
export function describeRun(r) {
  const why = abnormal(r) ?? `exit code ${r.code}`
  const stderr = r.stderr.trim()
  return stderr ? `${why}; stderr: ${stderr.slice(0, 1000)}` : why
}

/** Runs async `fn` over `items` with at most `limit` at a time; results in order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
