// etherply: one binary, several subcommands.
#include <cstdio>
#include <string_view>

#include "cli/client_commands.h"
#include "cli/doc_command.h"
#include "cli/serve_command.h"

namespace {
constexpr const char* kUsage =
    "usage: etherply COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  serve    run the sync server\n"
    "  token    mint a JWT for a client\n"
    "  doc      inspect Automerge files (json, heads, changes, save, merge)\n"
    "  watch    print a workspace's messages as JSON lines\n"
    "  put      set a key of a workspace and wait for its broadcast\n"
    "\n"
    "Run 'etherply COMMAND --help' for a command's options.\n";
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "doc") return etherply::cli::RunDocCommand(argc - 1, argv + 1);
  if (cmd == "serve") return etherply::cli::RunServeCommand(argc - 1, argv + 1);
  if (cmd == "token") return etherply::cli::RunTokenCommand(argc - 1, argv + 1);
  if (cmd == "watch") return etherply::cli::RunWatchCommand(argc - 1, argv + 1);
  if (cmd == "put") return etherply::cli::RunPutCommand(argc - 1, argv + 1);
  std::fprintf(stderr, "etherply: unknown command '%s'\n\n%s", argv[1], kUsage);
  return 2;
}
