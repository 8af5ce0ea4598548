// Save/load benchmark, reference side (@automerge/automerge 3.5.0); the C++
// side is save_bench.cc, the driver save_bench.sh.
//
//   node save_bench.mjs trace TRACE OUT   replay the editing trace (one change
//                                         per patch, time 0) and write A.save
//   node save_bench.mjs save FILE OUT     load FILE (untimed), time save, write OUT
//   node save_bench.mjs load FILE         time A.load of FILE
// Prints one JSON line: {"impl":"reference","op":...,"seconds":S,"bytes":N}.
import fs from "node:fs";
import zlib from "node:zlib";
import * as A from "@automerge/automerge";

const [op, file, out] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const print = (o) => process.stdout.write(JSON.stringify({ impl: "reference", op, ...o }) + "\n");

if (op === "trace" && out) {
  const t = JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString("utf8"));
  const h = A.getBackend(A.init({ actor: "0112233445566778899aabbccddeeff0" }));
  const text = h.putObject("_root", "text", "");
  if (t.startContent) h.splice(text, 0, 0, t.startContent);
  h.commit(null, 0);
  for (const txn of t.txns)
    for (const [pos, del, ins] of txn.patches) {
      h.splice(text, pos, del, ins);
      h.commit(null, 0);
    }
  if (h.text(text) !== t.endContent) throw new Error("final text differs from endContent");
  const bytes = h.save();
  fs.writeFileSync(out, bytes);
  print({ bytes: bytes.length });
} else if (op === "save" && out) {
  const doc = A.load(fs.readFileSync(file));
  const t0 = now();
  const bytes = A.save(doc);
  const seconds = now() - t0;
  fs.writeFileSync(out, bytes);
  print({ seconds, bytes: bytes.length });
} else if (op === "load" && file) {
  const bytes = fs.readFileSync(file);
  const t0 = now();
  const doc = A.load(bytes);
  const seconds = now() - t0;
  print({ seconds, heads: A.getHeads(doc).length });
} else {
  process.stderr.write("usage: node save_bench.mjs trace TRACE OUT | save FILE OUT | load FILE\n");
  process.exit(2);
}
