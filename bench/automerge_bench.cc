// The Automerge core benchmark, EtherPly side (bench/automerge_bench.mjs is
// the reference side; bench/run.sh runs both and compares).
//
//   etherply_bench_automerge trace [--trace PATH] [--limit N]
//       Replays the automerge-paper editing trace (gzip JSON, see
//       ../shared/bench-data/README.md): every patch [pos, del, ins] of every
//       txn, in order, as one Transaction::SpliceText on the text object at
//       root key "text", one commit per patch. The final text must equal
//       endContent (unless --limit cut the trace short), else exit 1.
//   etherply_bench_automerge mapputs [--limit N]
//       100,000 Transaction::Put of root key "key<i>" = int i, one commit each.
//
// Commits use time 0 and a fixed 16-byte actor, as the reference side's do,
// so the two make the same changes: "head" (the hash of the last change) must
// be the same on both sides, which bench/run.sh checks. Only the edits and
// commits are timed (not reading or parsing the trace). Prints one JSON line:
//   {"impl":"etherply","scenario":...,"ops":N,"seconds":S,"ops_per_sec":...,
//    "changes":N,"final_len":...,"rss_before_kb":...,"peak_rss_kb":...,
//    "setup_peak_kb":...,"hwm_reset":...,"head":"<hex>"}
// (changes counts the first change, which makes the text object, too;
// final_len is the text's length in code points, or the number of keys.)
// Memory, from /proc/self/status: after the setup (reading the trace, making
// the keys) the heap is trimmed and the peak RSS is reset (echo 5 >
// /proc/self/clear_refs), so that
//   rss_before_kb  VmRSS just before the timed part (program + input),
//   peak_rss_kb    VmHWM right after the timed part: its peak RSS,
//   setup_peak_kb  VmHWM before the reset (the peak of reading the input),
//   hwm_reset      false if the reset failed: peak_rss_kb is then the peak
//                  of the whole process.
#include <malloc.h>
#include <zlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/document.h"
#include "automerge/transaction.h"

namespace am = etherply::automerge;

namespace {

constexpr char kDefaultTrace[] = "../shared/bench-data/automerge-paper.json.gz";
constexpr size_t kMapPuts = 100000;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "etherply_bench_automerge: %s\n", msg.c_str());
  std::exit(1);
}

// A field of /proc/self/status ("VmHWM", "VmRSS") in kB; -1 if unreadable.
long ProcStatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':')
      return std::strtol(line.c_str() + n + 1, nullptr, 10);
  return -1;
}

// The same actor as bench/automerge_bench.mjs.
constexpr char kActorHex[] = "0112233445566778899aabbccddeeff0";

am::ActorId FixedActor() {
  am::ActorId a;
  for (size_t i = 0; i + 1 < sizeof kActorHex; i += 2)
    a.push_back(static_cast<uint8_t>(std::stoul(std::string(kActorHex + i, 2), nullptr, 16)));
  return a;
}

std::string ReadGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) Die("cannot open " + path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      Die("reading " + path + ": " + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

struct Patch {
  uint32_t pos;
  uint32_t del;
  std::string ins;
};

struct Trace {
  std::string start;
  std::string end;
  std::vector<Patch> patches;
};

Trace LoadTrace(const std::string& path) {
  std::string text = ReadGzip(path);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) Die("parsing " + path + ": " + ec.message());
  Trace t;
  try {
    const auto& o = v.as_object();
    t.start = std::string(o.at("startContent").as_string());
    t.end = std::string(o.at("endContent").as_string());
    for (const auto& txn : o.at("txns").as_array())
      for (const auto& p : txn.as_object().at("patches").as_array()) {
        const auto& a = p.as_array();
        if (a.size() != 3) Die("a patch is not [pos, del, ins]");
        t.patches.push_back(Patch{static_cast<uint32_t>(a[0].to_number<uint64_t>()),
                                  static_cast<uint32_t>(a[1].to_number<uint64_t>()),
                                  std::string(a[2].as_string())});
      }
  } catch (const std::exception& e) {
    Die("unexpected trace format in " + path + ": " + e.what());
  }
  return t;
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void Check(const etherply::Status& s, const char* what, size_t i) {
  if (!s.ok()) Die(std::string(what) + " failed at op " + std::to_string(i) + ": " + s.ToString());
}

template <typename T>
void CheckCommit(const etherply::Result<T>& r, size_t i) {
  if (!r.ok()) Die("Commit failed at op " + std::to_string(i) + ": " + r.status().ToString());
  if (!*r) Die("Commit made no change at op " + std::to_string(i));
}

struct Outcome {
  size_t ops = 0;
  double seconds = 0;
  size_t changes = 0;
  size_t final_len = 0;
  long rss_before_kb = 0;
  long peak_rss_kb = 0;  // read right after the timed part, before the checks
  long setup_peak_kb = 0;
  bool hwm_reset = false;
  std::string head;  // hex hash of the last change (the only head)
};

// Called just before the timed part: see the top of the file.
void StartMemoryWindow(Outcome& out) {
  malloc_trim(0);
  out.setup_peak_kb = ProcStatusKb("VmHWM");
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    out.hwm_reset = std::fputs("5", f) >= 0;
    out.hwm_reset = (std::fclose(f) == 0) && out.hwm_reset;
  }
  out.rss_before_kb = ProcStatusKb("VmRSS");
}

using Clock = std::chrono::steady_clock;

Outcome RunTrace(const std::string& path, std::optional<size_t> limit) {
  Trace t = LoadTrace(path);
  size_t n = t.patches.size();
  if (limit && *limit < n) n = *limit;
  am::ActorId actor = FixedActor();
  am::CommitOptions opts;
  opts.time = 0;

  am::Document doc;
  am::ObjId text;
  {
    am::Transaction tx(doc, actor);
    auto r = tx.PutObject(am::kRoot, "text", am::ObjType::kText);
    if (!r.ok()) Die("PutObject: " + r.status().ToString());
    text = *r;
    if (!t.start.empty()) Check(tx.SpliceText(text, 0, 0, t.start), "SpliceText", 0);
    CheckCommit(tx.Commit(opts), 0);
  }

  Outcome out;
  StartMemoryWindow(out);
  auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    const Patch& p = t.patches[i];
    am::Transaction tx(doc, actor);
    Check(tx.SpliceText(text, p.pos, p.del, p.ins), "SpliceText", i);
    CheckCommit(tx.Commit(opts), i);
  }
  auto t1 = Clock::now();
  out.seconds = std::chrono::duration<double>(t1 - t0).count();
  out.peak_rss_kb = ProcStatusKb("VmHWM");
  out.ops = n;
  out.changes = doc.changes().size();
  out.head = doc.heads().size() == 1 ? am::HashToHex(doc.heads()[0]) : "";

  std::string final_text = doc.Text(text);
  out.final_len = CodePoints(final_text);
  if (n == t.patches.size() && final_text != t.end) {
    size_t i = 0;
    while (i < final_text.size() && i < t.end.size() && final_text[i] == t.end[i]) ++i;
    Die("final text differs from endContent: " + std::to_string(CodePoints(final_text)) +
        " vs " + std::to_string(CodePoints(t.end)) + " code points, first difference at byte " +
        std::to_string(i));
  }
  return out;
}

Outcome RunMapPuts(std::optional<size_t> limit) {
  size_t n = limit ? std::min(*limit, kMapPuts) : kMapPuts;
  am::ActorId actor = FixedActor();
  am::CommitOptions opts;
  opts.time = 0;
  am::Document doc;
  // The keys are made before timing, as the reference side does (its strings
  // are made in JS either way; here it keeps the timed part to the library).
  std::vector<std::string> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i) keys.push_back("key" + std::to_string(i));

  Outcome out;
  StartMemoryWindow(out);
  auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    am::Transaction tx(doc, actor);
    Check(tx.Put(am::kRoot, keys[i], am::ScalarValue(static_cast<int64_t>(i))), "Put", i);
    CheckCommit(tx.Commit(opts), i);
  }
  auto t1 = Clock::now();
  out.seconds = std::chrono::duration<double>(t1 - t0).count();
  out.peak_rss_kb = ProcStatusKb("VmHWM");
  out.ops = n;
  out.changes = doc.changes().size();
  out.head = doc.heads().size() == 1 ? am::HashToHex(doc.heads()[0]) : "";
  out.final_len = doc.Keys(am::kRoot).size();
  if (out.final_len != n) Die("expected " + std::to_string(n) + " keys, got " +
                              std::to_string(out.final_len));
  auto last = doc.Get(am::kRoot, keys[n - 1]);
  if (!last || last->is_object() ||
      std::get<am::ScalarValue>(last->v) != am::ScalarValue(static_cast<int64_t>(n - 1)))
    Die("the last key does not hold its value");
  return out;
}

void Usage() {
  std::fprintf(stderr,
               "usage: etherply_bench_automerge trace [--trace PATH] [--limit N]\n"
               "       etherply_bench_automerge mapputs [--limit N]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Usage();
  std::string scenario = argv[1];
  std::string trace_path = kDefaultTrace;
  std::optional<size_t> limit;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--trace" && i + 1 < argc) {
      trace_path = argv[++i];
    } else if (a == "--limit" && i + 1 < argc) {
      limit = std::strtoull(argv[++i], nullptr, 10);
      if (*limit == 0) Usage();
    } else {
      Usage();
    }
  }

  Outcome o;
  if (scenario == "trace") {
    o = RunTrace(trace_path, limit);
  } else if (scenario == "mapputs") {
    o = RunMapPuts(limit);
  } else {
    Usage();
  }
  std::printf(
      "{\"impl\":\"etherply\",\"scenario\":\"%s\",\"ops\":%zu,\"seconds\":%.6f,"
      "\"ops_per_sec\":%.1f,\"changes\":%zu,\"final_len\":%zu,\"rss_before_kb\":%ld,"
      "\"peak_rss_kb\":%ld,\"setup_peak_kb\":%ld,\"hwm_reset\":%s,\"head\":\"%s\"}\n",
      scenario.c_str(), o.ops, o.seconds, o.seconds > 0 ? o.ops / o.seconds : 0.0, o.changes,
      o.final_len, o.rss_before_kb, o.peak_rss_kb, o.setup_peak_kb,
      o.hwm_reset ? "true" : "false", o.head.c_str());
  return 0;
}
