#include "cli/doc_command.h"

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/document.h"
#include "base/hex.h"
#include "cli/files.h"
#include "cli/flags.h"

namespace etherply::cli {

namespace {

using automerge::Document;

constexpr const char* kUsage =
    "usage: etherply doc COMMAND FILE...\n"
    "\n"
    "FILE is any Automerge file: document chunks (as `A.save` writes them)\n"
    "and change chunks (as `A.getAllChanges` or sync send them), concatenated\n"
    "in any order; up to 1 GiB. An empty file is an error, not an empty document.\n"
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
    "and its target replaced. A device or FIFO (/dev/stdout) is written in place.\n"
    "\n"
    "Exit status: 0; 1 if a file cannot be read or written, holds no Automerge\n"
    "data or is malformed, or an --at head is not in it; 2 for a usage error\n"
    "(such as a malformed --at hash).\n";

// The most `doc` reads of one file: far beyond any document, and a bound on
// what a wrong path (/dev/zero, a disk image) costs.
constexpr size_t kMaxInputBytes = size_t{1} << 30;

Result<std::unique_ptr<Document>> Load(const std::string& path) {
  auto data = ReadFileUpTo(path, kMaxInputBytes);
  if (!data.ok()) return data.status();
  if (data->empty()) return Status::InvalidArgument(path + " holds no Automerge data: it is empty");
  auto doc = std::make_unique<Document>();
  if (Status s = doc->LoadIncremental(*data); !s.ok()) return s.WithContext(path);
  if (doc->queued() > 0) {
    std::string msg = std::to_string(doc->queued()) + " change(s) depend on changes not in the file:";
    for (const auto& h : doc->MissingDeps()) msg += " " + automerge::HashToHex(h);
    return Status::Corruption(msg).WithContext(path);
  }
  return doc;
}

// A usage error: the message, then the usage, on stderr; exit status 2.
int Usage(const std::string& message) {
  std::fprintf(stderr, "etherply doc: %s\n\n%s", message.c_str(), kUsage);
  return 2;
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
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  Flags flags({"at"}, {});
  if (Status s = flags.Parse(argc, argv); !s.ok()) return Usage(s.message());
  const std::vector<std::string>& args = flags.positional();
  if (args.empty()) return Usage("no command");
  const std::string& cmd = args[0];
  const std::vector<std::string> files(args.begin() + 1, args.end());
  if (cmd != "json" && cmd != "heads" && cmd != "changes" && cmd != "save" && cmd != "merge")
    return Usage("unknown command '" + cmd + "'");
  if (flags.Has("at") && cmd != "json") return Usage("--at is for doc json only");
  if (cmd == "save" || cmd == "merge") {
    size_t inputs = cmd == "save" ? 1 : 2;
    if (files.size() != inputs + 1) return Usage(cmd + ": wrong number of arguments");
    return SaveCommand(cmd.c_str(), std::vector<std::string>(files.begin(), files.begin() + inputs),
                       files.back());
  }
  if (files.size() != 1) return Usage(cmd + " takes one FILE");
  // --at is checked before the file is read: a usage error (2) whatever the
  // file; a head that the file does not hold is found after (1).
  std::optional<std::vector<automerge::ChangeHash>> heads;
  if (auto at = flags.Get("at")) {
    auto parsed = automerge::HashesFromHexList(*at);
    if (!parsed.ok()) return Usage("--at: " + parsed.status().message());
    heads = std::move(*parsed);
  }
  auto doc = Load(files[0]);
  if (!doc.ok()) {
    std::fprintf(stderr, "etherply doc %s: %s\n", cmd.c_str(), doc.status().ToString().c_str());
    return 1;
  }
  if (heads) {
    auto clock = (*doc)->ClockAt(*heads);
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
