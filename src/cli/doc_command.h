// `etherply doc ...`: inspect Automerge files from the command line.
#pragma once

namespace etherply::cli {

// argv[0] is "doc". Returns the process exit status.
int RunDocCommand(int argc, char** argv);

}  // namespace etherply::cli
