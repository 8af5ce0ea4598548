#include "cli/doc_command.h"

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/document.h"
#include "base/hex.h"
#include "cli/files.h"

namespace etherply::cli {

namespace {

using automerge::Document;

constexpr const char* kUsage =
    "usage: etherply doc COMMAND FILE...\n"
    "\n"
    "FILE is any Automerge file: document chunks (as `A.save` writes them)\n"
    "and change chunks (as `A.getAllChanges` or sync send them), concatenated\n"
    "in any order; up to 1 GiB.\n"
    "\n"
    "commands:\n"
    "  json [--at HEAD[,HEAD...]] FILE\n"
    "                 print the document as JSON (as it was at those heads)\n"
    "  heads FILE     print the heads, lowercase hex, sorted, one per line\n"
    "  changes FILE   print one line per change, in causal order:\n"
    "                 hash actor seq startOp time deps (comma-separated, - for none)\n"
    "  save IN OUT    write IN as one compact document (what `A.save` writes)\n"
    "  merge A B OUT  write the document with the changes of both A and B\n"
    "\n"
    "save and merge write OUT whole or not at all: a temporary file beside it,\n"
    "renamed over it, with the permissions OUT had. A symlink OUT is followed\n"
    "and its target replaced. A device or FIFO (/dev/stdout) is written in place.\n";

// The most `doc` reads of one file: far beyond any document, and a bound on
// what a wrong path (/dev/zero, a disk image) costs.
constexpr size_t kMaxInputBytes = size_t{1} << 30;

Result<std::unique_ptr<Document>> Load(const std::string& path) {
  auto data = ReadFileUpTo(path, kMaxInputBytes);
  if (!data.ok()) return data.status();
  auto doc = std::make_unique<Document>();
  if (Status s = doc->LoadIncremental(*data); !s.ok()) return s.WithContext(path);
  if (doc->queued() > 0) {
    std::string msg = std::to_string(doc->queued()) + " change(s) depend on changes not in the file:";
    for (const auto& h : doc->MissingDeps()) msg += " " + automerge::HashToHex(h);
    return Status::Corruption(msg).WithContext(path);
  }
  return doc;
}

// `doc save IN OUT` and `doc merge A B OUT`: inputs[1..] loaded, merged into
// the first, saved to out.
int SaveCommand(const char* cmd, const std::vector<std::string>& inputs, const std::string& out) {
  auto doc = Load(inputs[0]);
  if (!doc.ok()) {
    std::fprintf(stderr, "etherply doc %s: %s\n", cmd, doc.status().ToString().c_str());
    return 1;
  }
  for (size_t i = 1; i < inputs.size(); ++i) {
    auto other = Load(inputs[i]);
    Status s = other.ok() ? Status::Ok() : other.status();
    if (s.ok()) {
      std::vector<automerge::StoredChange> changes((*other)->changes().begin(),
                                                   (*other)->changes().end());
      s = (*doc)->ApplyChanges(std::move(changes)).WithContext("merging " + inputs[i]);
    }
    if (!s.ok()) {
      std::fprintf(stderr, "etherply doc %s: %s\n", cmd, s.ToString().c_str());
      return 1;
    }
  }
  if (Status s = WriteFileAtomically(out, (*doc)->Save()); !s.ok()) {
    std::fprintf(stderr, "etherply doc %s: %s\n", cmd, s.ToString().c_str());
    return 1;
  }
  return 0;
}

void PrintChanges(const Document& doc) {
  for (const automerge::StoredChange& sc : doc.changes()) {
    const automerge::Change& c = sc.change;
    std::string deps;
    for (const auto& d : c.deps) deps += (deps.empty() ? "" : ",") + automerge::HashToHex(d);
    std::printf("%s %s %llu %llu %lld %s\n", automerge::HashToHex(sc.hash).c_str(),
                ToHex(c.actor).c_str(), static_cast<unsigned long long>(c.seq),
                static_cast<unsigned long long>(c.start_op), static_cast<long long>(c.time),
                deps.empty() ? "-" : deps.c_str());
  }
}

}  // namespace

int RunDocCommand(int argc, char** argv) {
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc == 4 && std::string_view(argv[1]) == "save") return SaveCommand(argv[1], {argv[2]}, argv[3]);
  if (argc == 5 && std::string_view(argv[1]) == "merge")
    return SaveCommand(argv[1], {argv[2], argv[3]}, argv[4]);
  std::optional<std::string> at;
  if (argc == 5 && std::string_view(argv[1]) == "json" && std::string_view(argv[2]) == "--at") {
    at = argv[3];
    argv[2] = argv[4];
    argc = 3;
  }
  if (argc != 3) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  if (cmd == "save" || cmd == "merge") {
    std::fprintf(stderr, "etherply doc %s: wrong number of arguments\n\n%s", argv[1], kUsage);
    return 2;
  }
  if (cmd != "json" && cmd != "heads" && cmd != "changes") {
    std::fprintf(stderr, "etherply doc: unknown command '%s'\n\n%s", argv[1], kUsage);
    return 2;
  }
  auto doc = Load(argv[2]);
  if (!doc.ok()) {
    std::fprintf(stderr, "etherply doc %s: %s\n", argv[1], doc.status().ToString().c_str());
    return 1;
  }
  if (cmd == "json" && at) {
    std::vector<automerge::ChangeHash> heads;
    std::string_view rest = *at;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      auto h = automerge::HashFromHex(rest.substr(0, comma));
      if (!h.ok()) {
        std::fprintf(stderr, "etherply doc json: --at: %s\n", h.status().message().c_str());
        return 2;
      }
      heads.push_back(*h);
      rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    }
    auto clock = (*doc)->ClockAt(heads);
    if (!clock.ok()) {
      std::fprintf(stderr, "etherply doc json: %s\n", clock.status().ToString().c_str());
      return 1;
    }
    std::printf("%s\n", (*doc)->ToJson(&*clock).c_str());
  } else if (cmd == "json") {
    std::printf("%s\n", (*doc)->ToJson().c_str());
  } else if (cmd == "heads") {
    for (const auto& h : (*doc)->heads()) std::printf("%s\n", automerge::HashToHex(h).c_str());
  } else {
    PrintChanges(**doc);
  }
  return 0;
}

}  // namespace etherply::cli
