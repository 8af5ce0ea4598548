// `etherply serve` and `etherply token`.
#pragma once

namespace etherply::cli {

// argv[0] is "serve" / "token". Return the process exit status.
int RunServeCommand(int argc, char** argv);
int RunTokenCommand(int argc, char** argv);

}  // namespace etherply::cli
