#include "cli/client_commands.h"

#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

#include "base/json_parse.h"
#include "cli/flags.h"
#include "client/client.h"
#include "server/protocol.h"

namespace etherply::cli {

namespace json = boost::json;
using client::ClientCallbacks;
using client::ClientOptions;
using client::State;
using client::StateName;
using client::SyncClient;

namespace {

constexpr const char* kWatchUsage =
    "usage: etherply watch URL [--token TOKEN] [--max-attempts N]\n"
    "\n"
    "Connects to URL (ws://HOST[:PORT]/v1/sync/WORKSPACE[?token=TOKEN]) and\n"
    "prints every message of the server as one JSON line on stdout: the init\n"
    "message, every op, every error. State changes (Connecting, Authenticating,\n"
    "Connected, Synced, Disconnected, Error) go to stderr. When the connection\n"
    "drops it reconnects, with exponential backoff and jitter (100 ms doubling\n"
    "to 10 s), and prints the new init message. Runs until SIGINT or SIGTERM\n"
    "(exit 0) or until the server refuses the token or the workspace (Error,\n"
    "exit 1). A malformed URL or flag exits 2.\n"
    "\n"
    "  --token TOKEN     the JWT (else the URL's ?token=, else $ETHERPLY_TOKEN);\n"
    "                    sent as \"Authorization: Bearer TOKEN\"\n"
    "  --max-attempts N  give up (Error, exit 1) after N consecutive failed\n"
    "                    connection attempts (default 0: never)\n";

constexpr const char* kPutUsage =
    "usage: etherply put URL KEY JSON [--token TOKEN] [--timeout 10s]\n"
    "\n"
    "Sets KEY to the JSON value in the workspace of URL\n"
    "(ws://HOST[:PORT]/v1/sync/WORKSPACE[?token=TOKEN]): connects, waits for\n"
    "the init message, sends the op stamped with this machine's clock, and\n"
    "waits until the server broadcasts it back (the op with its key, value and\n"
    "stamp). Prints that op as a JSON line on stdout and exits 0. JSON is any\n"
    "JSON value: 42, true, null, '\"text\"' (a string needs its quotes),\n"
    "'{\"a\":[1,2]}'.\n"
    "\n"
    "Exits 2, with the reason on stderr, if URL, KEY, JSON or a flag is\n"
    "malformed (nothing is sent). Exits 1 if the server refuses the token\n"
    "(401: invalid, or not for this workspace), answers the op with an error\n"
    "(403 for a read-only token), the connection drops after the op was sent\n"
    "(it may or may not have been applied), or the timeout passes.\n"
    "\n"
    "  --token TOKEN       the JWT (else the URL's ?token=, else $ETHERPLY_TOKEN);\n"
    "                      sent as \"Authorization: Bearer TOKEN\"\n"
    "  --timeout DURATION  for the whole command, reconnections included\n"
    "                      (default 10s; 90, 90s, 2m; up to 365d)\n";

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int Usage(const char* usage, const std::string& message) {
  std::fprintf(stderr, "%s\n\n%s", message.c_str(), usage);
  return 2;
}

// The token to send: --token, else none (the client takes the URL's
// ?token=), else $ETHERPLY_TOKEN.
std::string TokenFor(const Flags& flags, const std::string& url) {
  if (auto t = flags.Get("token")) return *t;
  auto u = client::ParseSyncUrl(url);
  if (u.ok() && !u->token.empty()) return "";
  if (const char* env = std::getenv("ETHERPLY_TOKEN")) return env;
  return "";
}

static_assert(client::kMaxMessageDepth == automerge::Document::kMaxDepth + 3,
              "the client reads the documents the server holds");

// Prints a server message as one line. The server writes no raw newlines;
// should one appear, the message is re-serialized.
void PrintLine(std::string_view text) {
  if (text.find_first_of("\r\n") != std::string_view::npos) {
    auto v = ParseJson(text, client::kMaxMessageDepth);
    std::string line = v.ok() ? json::serialize(*v) : std::string("null");
    std::fwrite(line.data(), 1, line.size(), stdout);
  } else {
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string ErrorLine(int code, const std::string& message) {
  json::object m;
  m["type"] = "error";
  m["code"] = code;
  m["message"] = message;
  return json::serialize(m);
}

}  // namespace

int RunWatchCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::fputs(kWatchUsage, stdout);
    return 0;
  }
  Flags flags({"token", "max-attempts"}, {});
  if (Status s = flags.Parse(argc, argv); !s.ok()) return Usage(kWatchUsage, s.message());
  if (flags.positional().size() != 1) return Usage(kWatchUsage, "watch takes one URL");
  ClientOptions options;
  options.url = flags.positional()[0];
  if (auto u = client::ParseSyncUrl(options.url); !u.ok())
    return Usage(kWatchUsage, u.status().message());
  options.token = TokenFor(flags, options.url);
  if (auto n = flags.Get("max-attempts")) {
    auto count = ParseCount(*n);
    if (!count.ok() || *count > 1000000) return Usage(kWatchUsage, "bad --max-attempts");
    options.max_attempts = static_cast<int>(*count);
  }

  std::atomic<bool> failed{false};
  ClientCallbacks cb;
  cb.on_state = [&failed](State s, const Status& why) {
    if (why.ok())
      std::fprintf(stderr, "etherply watch: %s\n", StateName(s));
    else
      std::fprintf(stderr, "etherply watch: %s: %s\n", StateName(s), why.ToString().c_str());
    if (s == State::kError) failed = true;
  };
  cb.on_init = [](const json::object&, std::string_view text) { PrintLine(text); };
  cb.on_op = [](const json::object&, std::string_view text) { PrintLine(text); };
  cb.on_error = [](int code, const std::string& message) { PrintLine(ErrorLine(code, message)); };

  // SIGINT and SIGTERM are blocked before the client's thread exists, so
  // that it inherits the mask and only this thread takes them, here.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);

  SyncClient client(options, std::move(cb));
  if (Status s = client.Start(); !s.ok()) {
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    std::fprintf(stderr, "etherply watch: %s\n", s.ToString().c_str());
    return 1;
  }
  const timespec tick{0, 100 * 1000 * 1000};
  while (!failed) {
    if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) break;  // interrupted
  }
  client.Stop();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return failed ? 1 : 0;
}

int RunPutCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::fputs(kPutUsage, stdout);
    return 0;
  }
  Flags flags({"token", "timeout"}, {});
  if (Status s = flags.Parse(argc, argv); !s.ok()) return Usage(kPutUsage, s.message());
  if (flags.positional().size() != 3) return Usage(kPutUsage, "put takes URL KEY JSON");
  const std::string& url = flags.positional()[0];
  const std::string& key = flags.positional()[1];
  const std::string& text = flags.positional()[2];
  if (auto u = client::ParseSyncUrl(url); !u.ok()) return Usage(kPutUsage, u.status().message());
  auto timeout = ParseDuration(flags.Get("timeout").value_or("10s"));
  if (!timeout.ok()) return Usage(kPutUsage, "--timeout " + timeout.status().message());
  if (*timeout == 0) return Usage(kPutUsage, "--timeout must be at least 1s");
  if (key.empty()) return Usage(kPutUsage, "the key must not be empty");

  // ParseJson, not json::parse: Boost.JSON 1.81 may round 0.1 to a
  // neighbour of the nearest double (see base/json_parse.h).
  auto parsed = ParseJson(text, server::kMaxValueDepth);
  if (!parsed.ok()) {
    std::fprintf(stderr, "etherply put: the value %s: %s\n", parsed.status().message().c_str(),
                 text.c_str());
    if (!text.empty() && std::isalpha(static_cast<unsigned char>(text[0])))
      std::fprintf(stderr, "a string needs its quotes: '\"%s\"'\n", text.c_str());
    return 2;
  }
  const json::value value = std::move(*parsed);

  ClientOptions options;
  options.url = url;
  options.token = TokenFor(flags, url);

  std::mutex mu;
  std::condition_variable cv;
  bool sent = false;                 // guarded by mu
  bool finished = false;             // guarded by mu
  std::string outcome;               // guarded by mu: the op's line, or the failure
  bool succeeded = false;            // guarded by mu
  Status last_problem;               // guarded by mu: why the last attempt failed
  SyncClient* put_client = nullptr;  // set before Start()

  auto finish = [&](bool ok, std::string what) {  // with mu held
    if (finished) return;
    finished = true;
    succeeded = ok;
    outcome = std::move(what);
    cv.notify_all();
  };
  ClientCallbacks cb;
  // The op's outcome: its broadcast (printed), the server's error, or the
  // connection lost after it was sent (it may or may not have been applied).
  auto done = [&](const Status& outcome, std::string_view answer) {
    std::lock_guard<std::mutex> l(mu);
    if (outcome.ok()) return finish(true, std::string(answer));
    std::string what = outcome.message();
    if (answer.empty() && !last_problem.ok()) what += " (" + last_problem.ToString() + ")";
    finish(false, what);
  };
  cb.on_state = [&](State s, const Status& why) {
    std::lock_guard<std::mutex> l(mu);
    if (!why.ok()) last_problem = why;
    if (s == State::kSynced && !sent) {
      if (Status st = put_client->Put(key, value, std::nullopt, done); !st.ok())
        return finish(false, st.ToString());
      sent = true;
    } else if (s == State::kError) {
      finish(false, why.message());
    }
  };
  // An error before the op is sent answers no op of ours: the server could
  // not load the workspace (and closes the connection) or refused the
  // handshake. The command ends with it rather than retrying until --timeout.
  cb.on_error = [&](int code, const std::string& message) {
    std::lock_guard<std::mutex> l(mu);
    if (!sent) finish(false, "the server answered " + std::to_string(code) + ": " + message);
  };

  SyncClient client(options, std::move(cb));
  put_client = &client;
  if (Status s = client.Start(); !s.ok()) {
    std::fprintf(stderr, "etherply put: %s\n", s.ToString().c_str());
    return 1;
  }
  {
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_for(l, std::chrono::seconds(*timeout), [&] { return finished; })) {
      std::string what = std::string("timed out after ") + std::to_string(*timeout) + "s (state " +
                         StateName(client.state()) + (sent ? ", op sent" : "") + ")";
      if (!last_problem.ok()) what += "; last problem: " + last_problem.ToString();
      finish(false, what);
    }
  }
  client.Stop();
  std::lock_guard<std::mutex> l(mu);
  if (!succeeded) {
    std::fprintf(stderr, "etherply put: %s\n", outcome.c_str());
    return 1;
  }
  PrintLine(outcome);
  return 0;
}

}  // namespace etherply::cli
