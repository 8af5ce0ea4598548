// The automerge-repo sync server, as @automerge/automerge-repo-sync-server
// builds it, on automerge-repo 2.5.6 (that package still pins repo 1.x): a
// Repo with the WebSocket server adapter, NodeFS storage and sharePolicy
// false (it serves only documents that a peer asks for or sends). The peer of
// bench/run_peers.sh and bench/run_scale.sh.
//
//   node --expose-gc bench/repo/server.mjs [--port P] [--storage DIR]
//        [--preload D --keys K]
//
// --port: 0 (default) takes any free port. --storage: the NodeFS directory;
// without it the Repo keeps documents in memory only. --preload: before
// listening, the Repo takes D documents of K keys (bench/run_scale.sh): one
// document is built with K changes, change n setting "w0-<n>" to a 32-byte
// string (the shape of etherply_load's ops, one change per op), and each of
// the D is a Repo.import of its bytes (its own document ID, the same
// changes), as if a client had synced it and left.
// Prints "repo server listening on ws://127.0.0.1:PORT" once listening. On
// SIGUSR2 it collects garbage (with --expose-gc) and prints one line
//   {"rss_kb":..,"heap_used_kb":..,"documents":..,"peers":..}
// so that a script can read its memory with the garbage gone.
import { Repo } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";
import * as A from "@automerge/automerge";

const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const port = Number(flag("port") ?? 0);
const storageDir = flag("storage");

const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: storageDir ? new NodeFSStorageAdapter(storageDir) : undefined,
  peerId: "sync-server",
  sharePolicy: async () => false,
});

const preload = Number(flag("preload") ?? 0);
if (preload > 0) {
  const keys = Number(flag("keys") ?? 100);
  let template = A.init();
  for (let n = 0; n < keys; ++n) template = A.change(template, (d) => { d[`w0-${n}`] = "x".repeat(32); });
  const bytes = A.save(template);
  for (let i = 0; i < preload; ++i) repo.import(bytes);
}

wss.on("listening", () => {
  console.log(`repo server listening on ws://127.0.0.1:${wss.address().port}`);
});

process.on("SIGUSR2", () => {
  if (global.gc) {
    global.gc();
    global.gc();
  }
  const m = process.memoryUsage();
  console.log(JSON.stringify({
    rss_kb: Math.round(m.rss / 1024),
    heap_used_kb: Math.round(m.heapUsed / 1024),
    documents: Object.keys(repo.handles).length,
    peers: repo.peers.length,
  }));
});
process.on("SIGTERM", () => process.exit(0));
