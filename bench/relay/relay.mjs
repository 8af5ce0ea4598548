// The plain relay: the least a WebSocket fan-out server can do, to measure
// EtherPly's sync server against (bench/run_peers.sh).
//
//   node bench/relay/relay.mjs [--port P]       (default 0: any free port)
//
// Prints "relay listening on ws://127.0.0.1:PORT" on stdout once listening.
// Accepts a WebSocket upgrade on any path and ignores any token. Speaks just
// enough of EtherPly's protocol (doc/protocol.md) for bench/load.cc to drive
// it unchanged: on connect it sends {"type":"init","data":{},"heads":[]}; each
// text message a client sends goes, as the same bytes, to every client of the
// same path, the sender included (EtherPly echoes too). The client's op
// message {"type":"op","payload":{...}} is already the broadcast's shape, so
// nothing is parsed, stored or checked: no JSON, no Automerge, no disk.
// One Node.js thread (the `ws` package, permessage-deflate off).
import { WebSocketServer } from "ws";

const args = process.argv.slice(2);
const portIndex = args.indexOf("--port");
const port = portIndex >= 0 ? Number(args[portIndex + 1]) : 0;

const kInit = JSON.stringify({ type: "init", data: {}, heads: [] });
const rooms = new Map(); // path -> Set of sockets

const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws, req) => {
  const path = req.url;
  let room = rooms.get(path);
  if (!room) rooms.set(path, (room = new Set()));
  room.add(ws);
  ws.send(kInit);
  ws.on("message", (data, isBinary) => {
    for (const peer of room) peer.send(data, { binary: isBinary });
  });
  ws.on("close", () => {
    room.delete(ws);
    if (room.size === 0) rooms.delete(path);
  });
  ws.on("error", () => {});
});
wss.on("listening", () => {
  console.log(`relay listening on ws://127.0.0.1:${wss.address().port}`);
});
