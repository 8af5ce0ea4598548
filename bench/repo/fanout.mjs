// Fan-out through an automerge-repo sync server (bench/repo/server.mjs): one
// writer and N readers on one document, each a real automerge-repo 2.5.6 Repo
// with its own WebSocket client adapter, all in this one process (one clock).
// The counterpart of `etherply_load --writers 1 --readers N --rate R` in
// bench/run_peers.sh.
//
//   node bench/repo/fanout.mjs --url ws://HOST:PORT --readers N
//        [--rate R] [--ops K] [--drain-timeout S] [--max-drain S] [--label NAME]
//
// --rate 0 makes the K changes at once, without yielding. Draining ends when
// nothing arrives for --drain-timeout seconds (default 30) or --max-drain
// seconds after the last change (default 120); what has not arrived is lost.
//
// The writer creates a document, waits until the server has it, then the N
// readers find it (repo.find: a `request` to the server) and wait until
// ready. Then the writer makes K changes at R per second (default 1000 at
// 200/s), change n being handle.change(d => d["k<n>"] = "x" * 32); the send
// time of each stays here, by n. Each reader listens to its handle's "change"
// events and takes the time when a put of key k<n> first appears in the
// patches: send→delivery is that time minus the writer's handle.change time.
// Both ends keep automerge-repo's defaults (its DocSynchronizer sends at most
// one sync message per peer and document every 100 ms: syncDebounceRate).
//
// Checks: every reader gets every key exactly once (a key that never arrives
// is "lost"; a put of a key it already had, "duplicates").
// Output: one JSON line on stdout, in etherply_load's shape where it has the
// same figures:
//   {"label","ok","reason","config":{..},"elapsed_ms","ops_sent","deliveries",
//    "deliveries_expected","deliveries_per_s","lost","duplicates","find_retries",
//    "delivery_us":{"n","p50","p99","max"},"client_cpu_pct"}
// Exit status 0 when complete, 1 when not.
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { performance } from "node:perf_hooks";

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const url = flag("url");
const readers = Number(flag("readers", 10));
const rate = Number(flag("rate", 200));
const ops = Number(flag("ops", 1000));
const drainTimeoutMs = Number(flag("drain-timeout", 30)) * 1000;
const maxDrainMs = Number(flag("max-drain", 120)) * 1000;
const label = flag("label", "");
const connectParallel = 64;
const value = "x".repeat(32);
if (!url) {
  console.error("usage: fanout.mjs --url ws://HOST:PORT --readers N [--rate R] [--ops K]");
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const newRepo = (peerId) =>
  new Repo({ network: [new WebSocketClientAdapter(url)], peerId });

// --- the writer and its document ---
const writerRepo = newRepo("writer");
await writerRepo.networkSubsystem.whenReady();
const doc = writerRepo.create({});
doc.change((d) => { d.started = true; });
// The server has it once a Repo that never saw it can find it.
const probe = newRepo("probe");
await probe.networkSubsystem.whenReady();
for (let attempt = 0; ; ++attempt) {
  try {
    await probe.find(doc.url, { signal: AbortSignal.timeout(2000) });
    break;
  } catch (e) {
    if (attempt >= 10) throw new Error(`the server never had the document: ${e}`);
    await sleep(200);
  }
}
probe.shutdown();

// --- the readers ---
const sendMs = new Float64Array(ops);  // by n: performance.now() at handle.change
const latenciesMs = [];
let deliveries = 0;
let duplicates = 0;
let lastProgress = performance.now();
let lastDelivery = 0;
let startMs = 0;
let sending = false;
const readerState = [];
let findRetries = 0;

function onChange(reader, patches) {
  const now = performance.now();
  for (const p of patches) {
    if (p.action !== "put" || p.path.length !== 1) continue;
    const key = p.path[0];
    if (typeof key !== "string" || key[0] !== "k") continue;
    const n = Number(key.slice(1));
    if (!sending || !(n >= 0 && n < ops)) continue;
    if (reader.seen[n]) { ++duplicates; continue; }
    reader.seen[n] = 1;
    ++reader.received;
    ++deliveries;
    latenciesMs.push(now - sendMs[n]);
    lastDelivery = now;
    lastProgress = now;
  }
}

// A find can fail under load ("unavailable"); the Repo then remembers that,
// so a retry takes a fresh Repo.
async function openReader(i) {
  let repo, handle;
  for (let attempt = 0; !handle; ++attempt) {
    repo = newRepo(`reader-${i}-${attempt}`);
    await repo.networkSubsystem.whenReady();
    try {
      handle = await repo.find(doc.url);
    } catch (e) {
      if (attempt >= 5) throw e;
      ++findRetries;
      repo.shutdown().catch(() => {});
      await sleep(500);
    }
  }
  const reader = { repo, handle, seen: new Uint8Array(ops), received: 0 };
  handle.on("change", ({ patches }) => onChange(reader, patches));
  readerState.push(reader);
}
{
  let next = 0;
  const workers = Array.from({ length: Math.min(connectParallel, readers) }, async () => {
    while (next < readers) await openReader(next++);
  });
  await Promise.all(workers);
}
console.error(`fanout.mjs: ${readers} readers ready; sending`);

// --- sending, open loop at `rate` ---
const cpu0 = process.cpuUsage();
startMs = performance.now();
lastProgress = startMs;
sending = true;
for (let n = 0; n < ops; ++n) {
  if (rate > 0) {  // 0: all at once
    const wait = startMs + (n * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
  }
  sendMs[n] = performance.now();
  doc.change((d) => { d[`k${n}`] = value; });
}

// --- draining ---
const expected = ops * readers;
let reason = "complete";
const sentMs = performance.now();
while (deliveries < expected) {
  if (performance.now() - sentMs > maxDrainMs) {
    reason = `not complete ${maxDrainMs / 1000} s after the last change`;
    break;
  }
  if (performance.now() - lastProgress > drainTimeoutMs) {
    reason = `nothing arrived for ${drainTimeoutMs / 1000} s`;
    break;
  }
  await sleep(20);
}
const endMs = performance.now();
const cpu = process.cpuUsage(cpu0);

const sorted = Float64Array.from(latenciesMs).sort();
const rank = (q) => sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1];
const us = (ms) => Math.round(ms * 1000);
const lost = expected - deliveries;
const ok = lost === 0 && duplicates === 0;
const result = {
  label,
  ok,
  reason: ok ? "complete" : reason,
  config: { implementation: "automerge-repo 2.5.6", writers: 1, readers, ops, rate },
  elapsed_ms: Math.round(endMs - startMs),
  ops_sent: ops,
  deliveries,
  deliveries_expected: expected,
  deliveries_per_s: deliveries && Math.round(deliveries / ((lastDelivery - startMs) / 1000)),
  lost,
  duplicates,
  find_retries: findRetries,
  delivery_us: sorted.length
    ? { n: sorted.length, p50: us(rank(0.5)), p99: us(rank(0.99)), max: us(sorted[sorted.length - 1]) }
    : { n: 0, p50: 0, p99: 0, max: 0 },
  client_cpu_pct: Math.round(((cpu.user + cpu.system) / 1000 / (endMs - startMs)) * 100),
};
console.log(JSON.stringify(result));
console.error(`fanout.mjs: ${deliveries}/${expected} deliveries, p50 ${result.delivery_us.p50} us, p99 ${result.delivery_us.p99} us`);
process.exit(ok ? 0 : 1);
