// Opens many WebSocket connections and holds them idle, for the memory
// measurements of bench/run_scale.sh.
//
//   node bench/scale/hold.mjs --protocol etherply|repo --url URL --count N
//        [--token T] [--spread] [--parallel P]
//
// etherply: connects to URL + "/v1/sync/<workspace>" with the token as a
//   Bearer header and waits for the server's first message (its "init").
//   The workspace is "idle" for every connection, or with --spread
//   "<prefix>-<i>" for connection i, where --prefix names it (default scale):
//   one connection per workspace, so that every workspace is loaded.
// repo: connects to URL (an automerge-repo server), sends the `join` of
//   FORMAT.md §9 as an ephemeral peer "idle-<i>" and waits for its `peer`.
// At most P (default 100) connections open at a time. Once all N are open it
// prints "held N" on stdout and keeps them (answering pings) until SIGTERM
// or SIGINT, then closes them and exits 0. Exits 1 if one cannot be opened.
import { WebSocket } from "ws";
import { encode, decode } from "cbor-x";

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const protocol = flag("protocol", "etherply");
const url = flag("url");
const count = Number(flag("count", 1000));
const token = flag("token", "");
const spread = args.includes("--spread");
const prefix = flag("prefix", "scale");
const parallel = Number(flag("parallel", 100));

const sockets = [];
function open(i) {
  return new Promise((resolve, reject) => {
    let ws;
    if (protocol === "etherply") {
      const workspace = spread ? `${prefix}-${i}` : "idle";
      ws = new WebSocket(`${url}/v1/sync/${workspace}`, {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      ws.once("message", () => resolve());
    } else {
      ws = new WebSocket(url, { perMessageDeflate: false });
      const peerId = `idle-${i}`;
      ws.once("open", () =>
        ws.send(encode({
          type: "join",
          senderId: peerId,
          peerMetadata: { isEphemeral: true },
          supportedProtocolVersions: ["1"],
        })));
      ws.once("message", (data) => {
        const msg = decode(data);
        if (msg.type === "peer") resolve();
        else reject(new Error(`answer to join: ${msg.type}`));
      });
    }
    ws.on("error", reject);
    ws.on("close", () => reject(new Error(`connection ${i} closed`)));
    sockets.push(ws);
  });
}

let next = 0;
try {
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) await open(next++);
  }));
} catch (e) {
  console.error(`hold.mjs: ${e.message}`);
  process.exit(1);
}
for (const ws of sockets) ws.removeAllListeners("close");
console.log(`held ${count}`);
const stop = () => {
  for (const ws of sockets) ws.terminate();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
setInterval(() => {}, 1 << 30);
