// Pipelined op writers for the node benchmarks.

/**
 * Sends `count` ops on the open WebSocket `ws`, at most `window` of them not
 * yet echoed, and resolves once every one has come back. Op n (from 0) sets
 * key(n) to value(n), given as JSON text; every key must start with `prefix`,
 * which is how the writer knows its own echoes. Rejects on an error message
 * or if the socket closes first.
 */
export function writeWindowed(ws, { prefix, count, window, key, value }) {
  return new Promise((resolve, reject) => {
    const mine = `"key":"${prefix}`
    let sent = 0
    let echoed = 0
    const pump = () => {
      while (sent < count && sent - echoed < window) {
        ws.send(`{"type":"op","payload":{"key":"${key(sent)}","value":${value(sent)}}}`)
        sent++
      }
    }
    ws.on("message", (data) => {
      const text = data.toString()
      if (text.includes('"type":"error"')) return reject(new Error(`writer ${prefix}: ${text}`))
      if (text.includes(mine)) {
        echoed++
        if (echoed === count) return resolve()
        pump()
      }
    })
    ws.once("close", (code) => echoed < count && reject(new Error(`writer ${prefix} closed with ${code}`)))
    if (count === 0) return resolve()
    pump()
  })
}
