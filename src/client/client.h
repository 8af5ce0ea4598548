// SyncClient: a C++ client of /v1/sync/{workspace} (doc/protocol.md) that
// follows the state machine of the spec (§2), with reconnection.
//
// Thread-safety: a SyncClient owns one thread that runs its own io_context;
// every network operation and every callback runs on that thread, one
// callback at a time, in the order the events happened. The public methods
// may be called from any thread, including from inside a callback (see
// Stop() for the one caveat). The destructor must not run on the client's
// thread, i.e. not inside a callback. Callbacks must not throw and should
// return quickly: while one runs, the client reads nothing.
//
// States and transitions. The spec's diagram, plus the failure edges it
// leaves out (marked +), which a client that reconnects needs:
//
//   from            to              when
//   (initial)       Disconnected    construction
//   Disconnected    Connecting      Start(), or the backoff delay has passed:
//                                   resolving and opening the TCP connection
//   Connecting      Authenticating  TCP is open; the upgrade request carrying
//                                   the token is sent, the answer awaited
//   Authenticating  Connected       HTTP 101: the WebSocket is open
//   Authenticating  Error           the handshake was refused with a status
//                                   retrying cannot fix: 401 (bad token),
//                                   403, 400, 404, 405, 426, other 4xx
//                                   except 408 and 429
//   Connected       Synced          the "init" message arrived
//   Synced          Synced          ops, both ways (no on_state call)
//   Synced          Disconnected    network failure or close; a retry is
//                                   scheduled after the backoff delay
// + Connecting,     Disconnected    network failure, timeout, or a transient
//   Authenticating,                 refusal (408, 429, 5xx such as 503 "too
//   Connected                       many connections"); a retry is scheduled
// + Disconnected    Error           max_attempts consecutive attempts failed
// + any but Error   Disconnected    Stop() (with an OK status)
//   Error           (final)         the client does nothing more
//
// Backoff is "full jitter": before retry n the client waits a uniformly
// random time in [0, min(backoff_cap, backoff_base * 2^n)], where n is the
// number of retries already made since Start() or the last Synced (so the
// first retry after a lost connection waits at most backoff_base).
//
// Ops are not queued across connections: Put() fails unless the client is
// Synced, and an op accepted by Put() is lost if its connection drops before
// it is written. The server's broadcast of the op, which comes back to the
// sender too, is the confirmation that it was applied.
//
// Each op's outcome goes to the `done` given to Put(). The server answers a
// client's ops in the order they were sent, each by its broadcast or by an
// error (doc/protocol.md), so the client keeps its unanswered ops in that
// order: an error answers the oldest; a broadcast answers it if it carries
// the oldest op's key, value (numbers by value) and timestamp. Put() stamps
// an op with the client's clock (Unix microseconds, increasing from one op to
// the next) unless given a timestamp, so that an op of another client is
// taken for this one's only if it sets the same key to the same value with
// the same microsecond.
//
// Transport: plain ws:// only. wss:// (TLS) is future work; ParseSyncUrl
// refuses it with kUnsupported.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "base/status.h"

namespace etherply::client {

// How deep a server message may nest: an init message holds the document
// (at most 1,024 objects deep: automerge::Document::kMaxDepth) three levels
// down, in "payload" and "state"; an op's value sits two down.
inline constexpr size_t kMaxMessageDepth = 1024 + 3;

enum class State {
  kDisconnected,
  kConnecting,
  kAuthenticating,
  kConnected,
  kSynced,
  kError,
};

// "Disconnected", "Connecting", "Authenticating", "Connected", "Synced",
// "Error": the names of the spec's diagram.
const char* StateName(State state);

// A parsed sync URL: ws://HOST[:PORT]/v1/sync/WORKSPACE[?token=TOKEN]
struct SyncUrl {
  std::string host;         // for resolving: no brackets around an IPv6 address
  std::string host_header;  // for the Host header: "host" or "host:port"
  uint16_t port = 80;
  std::string workspace;  // 1 to 128 of A-Z a-z 0-9 . _ -
  // The request target: "/v1/sync/WORKSPACE", with the URL's query
  // parameters other than token (the token travels in a header).
  std::string target;
  std::string token;  // from ?token=; empty if absent
};

// Parses a sync URL. kUnsupported for wss:// (TLS is future work);
// kInvalidArgument, with a message naming the problem, for anything else
// that is not of the shape above: another scheme, user info, no host, a port
// out of 1..65535, another path, a bad workspace ID, several tokens. A
// #fragment is ignored.
Result<SyncUrl> ParseSyncUrl(std::string_view url);

// The delays of full-jitter exponential backoff, drawn from a seeded
// generator, so a test can predict them.
//
// Thread-safety: none; a Backoff belongs to one thread.
class Backoff {
 public:
  // `base` > 0 and `cap` >= `base` are the caller's to ensure. Seed 0 means
  // a seed from std::random_device.
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed);

  // min(cap, base * 2^retry), without overflow for any retry >= 0.
  std::chrono::milliseconds Ceiling(int retry) const;
  // A uniformly random delay in [0, Ceiling(retry)]; advances the generator.
  std::chrono::milliseconds Delay(int retry);

 private:
  const std::chrono::milliseconds base_;
  const std::chrono::milliseconds cap_;
  std::mt19937_64 rng_;
};

struct ClientOptions {
  // ws://host[:port]/v1/sync/{workspace}[?token=...]; see ParseSyncUrl.
  std::string url;
  // The bearer token, sent as "Authorization: Bearer TOKEN". Empty: the
  // URL's ?token= is used (and is not put in the request target). A
  // connection without any token is refused by the server with 401.
  std::string token;

  // Backoff between attempts (see above). Small values reconnect quickly
  // and load a recovering server more; the cap bounds how stale a client
  // can be after a long outage.
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_cap{10000};
  // Consecutive attempts that do not reach Synced before the client gives
  // up and enters Error. 0: never give up.
  int max_attempts = 0;
  // The seed of the jitter; 0 draws one from std::random_device. Tests set
  // it to predict the delays.
  uint64_t backoff_seed = 0;

  // Time allowed for the TCP connection and, again, for the WebSocket
  // handshake (the token check).
  std::chrono::milliseconds connect_timeout{10000};
  // An open connection with no traffic for this long counts as lost. The
  // client pings at half this interval, so a live server always answers in
  // time; a dead network is noticed within this bound.
  std::chrono::milliseconds idle_timeout{60000};
  // Largest message accepted from the server (the init message holds the
  // whole document), and largest op Put() sends.
  size_t max_message_bytes = 64 << 20;
  // Bytes accepted by Put() but not yet written to the socket. Past this,
  // Put() fails instead of letting memory grow while the network is slow.
  size_t max_send_queue_bytes = 16 << 20;
};

// The callbacks, all optional. They run on the client's thread.
struct ClientCallbacks {
  // Every state change. `why` is OK for the transitions of success and for
  // Stop(); otherwise it says what failed (kIoError for the network,
  // kInvalidArgument for a refused handshake, kCorruption for a server
  // message that breaks the protocol).
  std::function<void(State state, const Status& why)> on_state;
  // The "init" message: `message` is the whole object ({"type":"init",
  // "data":{...},"heads":[...]}), `text` the message as received. Called
  // just before the transition to Synced, so that Synced means the data is
  // in hand; it comes again after every reconnection.
  std::function<void(const boost::json::object& message, std::string_view text)> on_init;
  // Every op broadcast by the server, the client's own included: `payload`
  // is {"key":K,"value":V,"timestamp":T}, `text` the whole message as
  // received.
  std::function<void(const boost::json::object& payload, std::string_view text)> on_op;
  // Every {"type":"error","code":C,"message":M} the server sends on the
  // socket (e.g. 403 for a write with a read-only token; the connection stays
  // open) and, before the transition to Error, the refusal of the handshake:
  // then `code` is the HTTP status and `message` the server's explanation.
  std::function<void(int code, const std::string& message)> on_error;
};

// How an op given to Put() ended, on the client's thread, once:
//  - OK: its broadcast came back: it is durable and sent to every client of
//    the workspace. `answer` is the broadcast as received (on_op has seen it).
//  - kInvalidArgument: the server refused it (400, or 403 for a token
//    without write scope); kIoError: the server could not apply it (500).
//    `answer` is the error message as received (on_error has seen it).
//  - kIoError with an empty `answer`: no answer came. The message says
//    "not applied" if the op was never handed to a connection (the one it
//    was put on had ended, or the client had stopped), and "may or may not
//    have been applied" if the connection ended or the client stopped while
//    the op was on it, written or not.
using OpDone = std::function<void(const Status& outcome, std::string_view answer)>;

// Equal as JSON values, numbers by value: the server writes numbers as
// JavaScript does, so 1.0 comes back as 1 and 1e3 as 1000.
bool SameJson(const boost::json::value& a, const boost::json::value& b);

class SyncClient {
 public:
  SyncClient(ClientOptions options, ClientCallbacks callbacks);
  // Stops the client (see Stop()).
  ~SyncClient();

  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // Parses the URL and starts the client's thread, which connects. Fails,
  // doing nothing, with kInvalidArgument or kUnsupported for a bad URL or
  // bad options, and with kInvalidArgument on a second call. A client is
  // started at most once.
  Status Start();

  // Closes the connection (a WebSocket close handshake, cut after 2 s),
  // cancels any retry, reports the transition to Disconnected (unless in
  // Error), and waits for the client's thread to end. No callback runs after
  // it returns. Called from a callback it cannot wait for its own thread:
  // it then only starts the shutdown, and the final transition follows
  // after the callback returns. Idempotent.
  void Stop();

  // Sends {"type":"op","payload":{"key":key,"value":value,"timestamp":t}}
  // on the current connection, t being `timestamp` or the client's clock.
  // OK means accepted for sending, not applied: `done`, if given, is told
  // the outcome (see OpDone). Fails, sending nothing and calling nothing,
  // with kInvalidArgument for an empty key, a value holding NaN or an
  // infinity, or an op over max_message_bytes; with kIoError when the client
  // is not Synced (nothing is queued for later) or when
  // max_send_queue_bytes are already waiting.
  Status Put(std::string_view key, const boost::json::value& value,
             std::optional<int64_t> timestamp = std::nullopt, OpDone done = nullptr);

  State state() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace etherply::client
