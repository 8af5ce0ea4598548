// `etherply watch` and `etherply put`: the sync client (client/client.h)
// from the command line.
//
//   etherply watch URL [--token T] [--max-attempts N]
//     prints every server message (init, op, error) as one JSON line on
//     stdout and every state change on stderr; reconnects; runs until
//     SIGINT/SIGTERM (exit 0) or the Error state (exit 1).
//   etherply put URL KEY JSON [--token T] [--timeout 10s]
//     sends one op and waits for its broadcast, which it prints; exit 0, or
//     1 with a message on stderr (refused token, error message from the
//     server, timeout).
//
// The token: --token, else the URL's ?token=, else $ETHERPLY_TOKEN; it is
// sent as "Authorization: Bearer TOKEN". Usage errors (a malformed URL, flag,
// key or JSON value), found before connecting, exit with 2.
#pragma once

namespace etherply::cli {

// argv[0] is "watch" / "put". Return the process exit status.
int RunWatchCommand(int argc, char** argv);
int RunPutCommand(int argc, char** argv);

}  // namespace etherply::cli
