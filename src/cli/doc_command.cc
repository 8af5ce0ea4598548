#include "cli/doc_command.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>

#include "automerge/document.h"
#include "base/hex.h"

namespace etherply::cli {

namespace {

using automerge::Document;

constexpr const char* kUsage =
    "usage: etherply doc COMMAND FILE\n"
    "\n"
    "FILE holds Automerge change chunks (as `A.getAllChanges` or sync send\n"
    "them), concatenated in any order.\n"
    "\n"
    "commands:\n"
    "  json [--at HEAD[,HEAD...]] FILE\n"
    "                 print the document as JSON (as it was at those heads)\n"
    "  heads FILE     print the heads, lowercase hex, sorted, one per line\n"
    "  changes FILE   print one line per change, in causal order:\n"
    "                 hash actor seq startOp time deps (comma-separated, - for none)\n";

Result<Bytes> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open " + path);
  Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IoError("cannot read " + path);
  return data;
}

Result<std::unique_ptr<Document>> Load(const std::string& path) {
  auto data = ReadFile(path);
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
