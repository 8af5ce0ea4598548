#include "client/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <charconv>
#include <cmath>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "base/json_parse.h"
#include "base/workspace_id.h"

namespace etherply::client {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
namespace urls = boost::urls;
using tcp = net::ip::tcp;

namespace {

using Ws = websocket::stream<beast::tcp_stream>;

// Awaiting with this yields the error code in a tuple instead of throwing.
constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

// JSON has no NaN or infinity; a value holding one cannot be sent.
bool IsFiniteJson(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return std::isfinite(v.get_double());
    case json::kind::array:
      for (const json::value& e : v.get_array())
        if (!IsFiniteJson(e)) return false;
      return true;
    case json::kind::object:
      for (const auto& kv : v.get_object())
        if (!IsFiniteJson(kv.value())) return false;
      return true;
    default:
      return true;
  }
}

// The client whose thread this is, if any: Stop() must not join itself.
thread_local const void* tls_running_client = nullptr;

// How long Stop() lets the close handshake take before it cuts the socket.
constexpr std::chrono::seconds kCloseGrace{2};

// A refused handshake worth retrying: the server is busy or failing, not
// telling the client that its request is wrong.
bool IsTransientStatus(int status) { return status == 408 || status == 429 || status >= 500; }

// The explanation in a refusal: {"error":{"message":M}} as the server writes
// it, else the body's first line, else the reason phrase.
std::string RefusalMessage(const websocket::response_type& res) {
  auto v = ParseJson(res.body());
  if (v.ok() && v->is_object()) {
    const json::value* err = v->as_object().if_contains("error");
    if (err && err->is_object()) {
      const json::value* m = err->as_object().if_contains("message");
      if (m && m->is_string()) return std::string(m->as_string());
    }
  }
  std::string body = res.body().substr(0, res.body().find('\n'));
  if (body.size() > 200) body.resize(200);
  if (!body.empty()) return body;
  return std::string(res.reason());
}

std::string ReadErrorMessage(const beast::error_code& ec, const websocket::close_reason& reason) {
  if (ec == websocket::error::closed) {
    std::string m = "closed by the server (code " + std::to_string(reason.code);
    if (!reason.reason.empty())
      m += ": " + std::string(reason.reason.c_str());
    else if (reason.code == websocket::close_code::too_big)  // the server's Beast says no more
      m += ": a message larger than the server takes (serve --max-message-bytes)";
    else if (reason.code == websocket::close_code::bad_payload)
      m += ": a message that is not valid UTF-8";
    return m + ")";
  }
  if (ec == beast::error::timeout) return "no traffic within the idle timeout";
  return "connection lost: " + ec.message();
}

}  // namespace

const char* StateName(State state) {
  switch (state) {
    case State::kDisconnected:
      return "Disconnected";
    case State::kConnecting:
      return "Connecting";
    case State::kAuthenticating:
      return "Authenticating";
    case State::kConnected:
      return "Connected";
    case State::kSynced:
      return "Synced";
    case State::kError:
      return "Error";
  }
  return "Unknown";
}

bool SameJson(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_double() && !b.is_double()) {
      if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
      if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
      const json::value& i = a.is_int64() ? a : b;  // one int64, one uint64
      const json::value& u = a.is_int64() ? b : a;
      return i.get_int64() >= 0 && static_cast<uint64_t>(i.get_int64()) == u.get_uint64();
    }
    return a.to_number<double>() == b.to_number<double>();
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const json::array &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!SameJson(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const json::object &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& kv : x) {
      const json::value* other = y.if_contains(kv.key());
      if (!other || !SameJson(kv.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

Result<SyncUrl> ParseSyncUrl(std::string_view text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed)
    return Status::InvalidArgument("not a URL: \"" + std::string(text) +
                                   "\" (want ws://HOST[:PORT]/v1/sync/WORKSPACE)");
  urls::url_view u = *parsed;
  if (u.scheme_id() == urls::scheme::wss)
    return Status::Unsupported("wss:// (TLS) is not supported yet; use ws://");
  if (u.scheme_id() != urls::scheme::ws)
    return Status::InvalidArgument("the URL must start with ws://, not " + std::string(u.scheme()) +
                                   "://");
  if (u.has_userinfo()) return Status::InvalidArgument("the URL must not carry user info");
  if (u.encoded_host().empty()) return Status::InvalidArgument("the URL has no host");

  SyncUrl out;
  out.host = u.host_address();
  out.host_header = std::string(u.encoded_host());
  if (u.has_port()) {
    std::string_view p = u.port();
    unsigned port = 0;
    auto r = std::from_chars(p.data(), p.data() + p.size(), port);
    if (p.empty() || r.ec != std::errc() || r.ptr != p.data() + p.size() || port == 0 ||
        port > 65535)
      return Status::InvalidArgument("the URL's port must be 1 to 65535, not \"" + std::string(p) +
                                     "\"");
    out.port = static_cast<uint16_t>(port);
    out.host_header += ":" + std::string(p);
  }

  std::vector<std::string> seg;
  for (auto s : u.segments()) seg.emplace_back(s);
  if (!u.is_path_absolute() || seg.size() != 3 || seg[0] != "v1" || seg[1] != "sync")
    return Status::InvalidArgument("the URL's path must be /v1/sync/{workspace}, not \"" +
                                   std::string(u.encoded_path()) + "\"");
  if (!IsValidWorkspaceId(seg[2]))
    return Status::InvalidArgument("invalid workspace ID \"" + seg[2] + "\": " + kWorkspaceIdRule);
  out.workspace = seg[2];

  urls::url target("/v1/sync/" + out.workspace);
  bool have_token = false;
  for (auto param : u.params()) {
    if (param.key != "token") {
      target.params().append(param);
      continue;
    }
    if (have_token) return Status::InvalidArgument("the URL has more than one token");
    if (!param.has_value || param.value.empty())
      return Status::InvalidArgument("the URL's token is empty");
    have_token = true;
    out.token = param.value;
  }
  out.target = std::string(target.buffer());
  return out;
}

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed)
    : base_(base), cap_(cap), rng_(seed) {
  if (seed == 0) {
    std::random_device rd;
    rng_.seed((uint64_t{rd()} << 32) ^ rd());
  }
}

std::chrono::milliseconds Backoff::Ceiling(int retry) const {
  std::chrono::milliseconds c = base_;
  for (int i = 0; i < retry && c < cap_; ++i) {
    if (c > cap_ / 2) return cap_;  // doubling would pass the cap (or overflow)
    c *= 2;
  }
  return std::min(c, cap_);
}

std::chrono::milliseconds Backoff::Delay(int retry) {
  std::uniform_int_distribution<int64_t> dist(0, Ceiling(retry).count());
  return std::chrono::milliseconds(dist(rng_));
}

// ---------------------------------------------------------------------------

struct SyncClient::Impl {
  // An op put on a connection and not yet answered: what its broadcast
  // carries.
  struct Unanswered {
    std::string key;
    json::value value;
    int64_t timestamp;
    OpDone done;  // may be empty
  };

  // One WebSocket connection (one attempt). Held by shared_ptr so that
  // completion handlers keep it, and the bytes they write, alive.
  struct Connection {
    Connection(net::io_context& ioc, uint64_t gen) : ws(ioc), generation(gen) {}
    Ws ws;
    const uint64_t generation;
    bool open = false;               // the handshake has succeeded
    std::deque<std::string> outbox;  // outbox.front() is being written if writing
    bool writing = false;
    std::deque<Unanswered> unanswered;  // ops sent or queued here, oldest first
  };

  // How an attempt ended.
  struct Outcome {
    enum Kind { kFailed, kRefused, kStopped } kind;
    Status status;
    bool synced = false;  // it reached Synced before it ended
  };

  Impl(ClientOptions o, ClientCallbacks c)
      : options(std::move(o)),
        callbacks(std::move(c)),
        ioc(1),
        backoff(options.backoff_base, options.backoff_cap, options.backoff_seed),
        resolver(ioc),
        retry_timer(ioc),
        close_timer(ioc) {}

  // Reports a transition unless it is none, or the client is in Error.
  void SetState(State s, const Status& why, uint64_t synced_gen = 0) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (state == s || state == State::kError) return;
      state = s;
      if (s == State::kSynced) {
        synced_generation = synced_gen;
        queued_bytes = 0;
      }
    }
    if (callbacks.on_state) callbacks.on_state(s, why);
  }

  // Bytes of an op of `gen` no longer waiting.
  void Unqueue(uint64_t gen, size_t bytes) {
    std::lock_guard<std::mutex> l(mu);
    if (gen == synced_generation) queued_bytes -= std::min(queued_bytes, bytes);
  }

  net::awaitable<void> Run() {
    int retry = 0;     // retries since the last Synced (or Start)
    int failures = 0;  // attempts since the last Synced (or Start) that failed
    while (!stopping) {
      Outcome out = co_await Attempt();
      // Ops are put only on a Synced connection: a refused handshake has none.
      std::deque<Unanswered> unanswered = std::move(conn->unanswered);
      conn.reset();
      if (out.kind == Outcome::kRefused) {
        SetState(State::kError, out.status);
        co_return;
      }
      SetState(State::kDisconnected, stopping ? Status::Ok() : out.status);
      const Status lost =
          Status::IoError(std::string(stopping ? "the client stopped" : "the connection ended") +
                          " before the server answered: the op may or may not have been applied");
      for (Unanswered& op : unanswered)
        if (op.done) op.done(lost, {});
      if (stopping) break;
      if (out.synced) {
        retry = 0;
        failures = 0;
      } else if (++failures >= options.max_attempts && options.max_attempts > 0) {
        SetState(State::kError, out.status.WithContext("gave up after " + std::to_string(failures) +
                                                       (failures == 1 ? " attempt" : " attempts")));
        co_return;
      }
      retry_timer.expires_after(backoff.Delay(retry++));
      co_await retry_timer.async_wait(kNoThrow);
    }
  }

  net::awaitable<Outcome> Attempt() {
    auto c = std::make_shared<Connection>(ioc, ++last_generation);
    conn = c;
    SetState(State::kConnecting, Status::Ok());
    const std::string where = url.host_header;

    auto [rec, endpoints] =
        co_await resolver.async_resolve(url.host, std::to_string(url.port), kNoThrow);
    if (stopping) co_return Outcome{Outcome::kStopped, Status::Ok()};
    if (rec)
      co_return Outcome{Outcome::kFailed,
                        Status::IoError("resolve " + url.host + ": " + rec.message())};

    beast::tcp_stream& stream = beast::get_lowest_layer(c->ws);
    stream.expires_after(options.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, kNoThrow);
    if (stopping) co_return Outcome{Outcome::kStopped, Status::Ok()};
    if (cec)
      co_return Outcome{Outcome::kFailed,
                        Status::IoError("connect to " + where + ": " +
                                        (cec == beast::error::timeout ? std::string("timed out")
                                                                      : cec.message()))};

    SetState(State::kAuthenticating, Status::Ok());
    c->ws.set_option(
        websocket::stream_base::decorator([token = token](websocket::request_type& req) {
          req.set(http::field::user_agent, "etherply-client");
          if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
        }));
    stream.expires_after(options.connect_timeout);
    websocket::response_type res;
    auto [hec] = co_await c->ws.async_handshake(res, url.host_header, url.target, kNoThrow);
    if (stopping) co_return Outcome{Outcome::kStopped, Status::Ok()};
    if (hec == websocket::error::upgrade_declined) {
      int code = res.result_int();
      std::string message = RefusalMessage(res);
      std::string what = "handshake refused: HTTP " + std::to_string(code) + ": " + message;
      if (IsTransientStatus(code)) co_return Outcome{Outcome::kFailed, Status::IoError(what)};
      if (callbacks.on_error) callbacks.on_error(code, message);
      co_return Outcome{Outcome::kRefused, Status::InvalidArgument(what)};
    }
    if (hec)
      co_return Outcome{Outcome::kFailed,
                        Status::IoError("handshake with " + where + ": " +
                                        (hec == beast::error::timeout ? std::string("timed out")
                                                                      : hec.message()))};

    // The WebSocket's own timeouts take over from the TCP stream's.
    stream.expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = options.connect_timeout;  // also bounds the close handshake
    t.idle_timeout = options.idle_timeout;
    t.keep_alive_pings = true;
    c->ws.set_option(t);
    c->ws.read_message_max(options.max_message_bytes);
    c->ws.text(true);
    c->open = true;
    SetState(State::kConnected, Status::Ok());

    bool synced = false;
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await c->ws.async_read(buffer, kNoThrow);
      if (ec) {
        Status why = Status::IoError(ReadErrorMessage(ec, c->ws.reason()));
        stream.close();  // aborts a write still in flight
        if (stopping) co_return Outcome{Outcome::kStopped, Status::Ok(), synced};
        co_return Outcome{Outcome::kFailed, why, synced};
      }
      std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      if (Status s = Dispatch(text, *c, synced); !s.ok()) {
        stream.close();
        co_return Outcome{Outcome::kFailed, s, synced};
      }
    }
  }

  // Hands one server message to its callback. kCorruption if it breaks the
  // protocol; unknown types are ignored, for servers newer than the client.
  Status Dispatch(const std::string& text, Connection& c, bool& synced) {
    auto v = ParseJson(text, kMaxMessageDepth);
    if (!v.ok() || !v->is_object())
      return Status::Corruption("a server message is not a JSON object");
    const json::object& msg = v->as_object();
    const json::value* type = msg.if_contains("type");
    if (!type || !type->is_string()) return Status::Corruption("a server message has no \"type\"");
    if (type->as_string() == "init") {
      const json::value* data = msg.if_contains("data");
      if (!data || !data->is_object()) return Status::Corruption("an init message has no \"data\"");
      if (callbacks.on_init) callbacks.on_init(msg, text);
      if (!synced) {
        synced = true;
        SetState(State::kSynced, Status::Ok(), c.generation);
      }
    } else if (type->as_string() == "op") {
      const json::value* payload = msg.if_contains("payload");
      const json::value* key =
          payload && payload->is_object() ? payload->as_object().if_contains("key") : nullptr;
      if (!key || !key->is_string()) return Status::Corruption("an op message has no payload key");
      if (callbacks.on_op) callbacks.on_op(payload->as_object(), text);
      if (!c.unanswered.empty() && Answers(payload->as_object(), c.unanswered.front()))
        Answer(c, Status::Ok(), text);
    } else if (type->as_string() == "error") {
      const json::value* code = msg.if_contains("code");
      const json::value* message = msg.if_contains("message");
      if (!code || !code->is_int64() || !message || !message->is_string())
        return Status::Corruption("an error message has no code or message");
      const int status = static_cast<int>(code->as_int64());
      const std::string why(message->as_string());
      if (callbacks.on_error) callbacks.on_error(status, why);
      // An error answers the oldest message not yet answered: ops are all
      // this client sends.
      if (!c.unanswered.empty()) {
        std::string what = "the server answered " + std::to_string(status) + ": " + why;
        Answer(
            c,
            status == 400 || status == 403 ? Status::InvalidArgument(what) : Status::IoError(what),
            text);
      }
    }
    return Status::Ok();
  }

  // Whether a broadcast is the one of `op`.
  static bool Answers(const json::object& payload, const Unanswered& op) {
    const json::value* key = payload.if_contains("key");
    const json::value* value = payload.if_contains("value");
    const json::value* timestamp = payload.if_contains("timestamp");
    return key && key->as_string() == op.key && value && SameJson(*value, op.value) && timestamp &&
           timestamp->is_int64() && timestamp->get_int64() == op.timestamp;
  }

  // Pops the oldest unanswered op and tells its `done`.
  static void Answer(Connection& c, const Status& outcome, std::string_view answer) {
    Unanswered op = std::move(c.unanswered.front());
    c.unanswered.pop_front();
    if (op.done) op.done(outcome, answer);
  }

  // Put's stamp: the clock in Unix microseconds, past the last stamp.
  int64_t NextStamp() {
    std::lock_guard<std::mutex> l(mu);
    int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    last_stamp = std::max(now, last_stamp + 1);
    return last_stamp;
  }

  void Enqueue(const std::shared_ptr<Connection>& c, std::string text, Unanswered op) {
    c->unanswered.push_back(std::move(op));
    c->outbox.push_back(std::move(text));
    if (!c->writing) DoWrite(c);
  }

  void DoWrite(std::shared_ptr<Connection> c) {
    c->writing = true;
    c->ws.async_write(net::buffer(c->outbox.front()), [this, c](beast::error_code ec, size_t) {
      c->writing = false;
      Unqueue(c->generation, c->outbox.front().size());
      c->outbox.pop_front();
      if (ec) {
        // The read fails too and reports the loss; make sure it does.
        for (const std::string& m : c->outbox) Unqueue(c->generation, m.size());
        c->outbox.clear();
        beast::get_lowest_layer(c->ws).close();
        return;
      }
      if (!c->outbox.empty()) DoWrite(c);
    });
  }

  void DoStop() {
    if (stopping) return;
    stopping = true;
    retry_timer.cancel();
    resolver.cancel();
    if (!conn) return;
    if (!conn->open) {
      beast::get_lowest_layer(conn->ws).close();  // cancels connect or handshake
      return;
    }
    close_timer.expires_after(kCloseGrace);
    close_timer.async_wait([c = conn](beast::error_code ec) {
      if (!ec) beast::get_lowest_layer(c->ws).close();
    });
    conn->ws.async_close(websocket::close_code::normal,
                         [this, c = conn](beast::error_code) { close_timer.cancel(); });
  }

  // Constant after Start().
  const ClientOptions options;
  const ClientCallbacks callbacks;
  SyncUrl url;
  std::string token;
  net::io_context ioc;

  std::mutex thread_mu;  // taken by Start() and Stop(), never on the client's thread
  std::thread thread;    // guarded by thread_mu

  // Used only on the client's thread.
  Backoff backoff;
  tcp::resolver resolver;
  net::steady_timer retry_timer;
  net::steady_timer close_timer;
  std::shared_ptr<Connection> conn;  // the current attempt's
  uint64_t last_generation = 0;
  bool stopping = false;

  mutable std::mutex mu;
  State state = State::kDisconnected;  // guarded by mu
  uint64_t synced_generation = 0;      // guarded by mu: the connection of the last Synced
  size_t queued_bytes = 0;             // guarded by mu: accepted by Put(), not yet written
  int64_t last_stamp = 0;              // guarded by mu: NextStamp's last
  bool started = false;                // guarded by mu
  bool stop_requested = false;         // guarded by mu
};

SyncClient::SyncClient(ClientOptions options, ClientCallbacks callbacks)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(callbacks))) {}

SyncClient::~SyncClient() {
  Stop();
  // Only if destroyed on its own thread (which the contract forbids): the
  // thread owns a reference to impl_ and ends by itself.
  if (tls_running_client == impl_.get()) {
    std::lock_guard<std::mutex> l(impl_->thread_mu);
    impl_->thread.detach();
  }
}

Status SyncClient::Start() {
  Impl& m = *impl_;
  const ClientOptions& o = m.options;
  if (o.backoff_base.count() <= 0 || o.backoff_cap < o.backoff_base)
    return Status::InvalidArgument("backoff wants 0 < base <= cap");
  if (o.max_attempts < 0) return Status::InvalidArgument("max_attempts must be >= 0");
  if (o.connect_timeout.count() <= 0 || o.idle_timeout.count() <= 0)
    return Status::InvalidArgument("timeouts must be positive");
  auto url = ParseSyncUrl(o.url);
  if (!url.ok()) return url.status();
  {
    std::lock_guard<std::mutex> l(m.mu);
    if (m.started || m.stop_requested)
      return Status::InvalidArgument("a SyncClient is started at most once");
    m.started = true;
  }
  m.url = std::move(*url);
  m.token = o.token.empty() ? m.url.token : o.token;
  net::co_spawn(m.ioc, m.Run(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);  // a callback threw: that is a bug, fail loudly
  });
  std::lock_guard<std::mutex> l(m.thread_mu);
  m.thread = std::thread([self = impl_] {
    tls_running_client = self.get();
    self->ioc.run();
  });
  return Status::Ok();
}

void SyncClient::Stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> l(m.mu);
    m.stop_requested = true;
  }
  net::post(m.ioc, [&m] { m.DoStop(); });
  if (tls_running_client == &m) return;  // in a callback: cannot wait for itself
  std::lock_guard<std::mutex> l(m.thread_mu);
  if (m.thread.joinable()) m.thread.join();
}

Status SyncClient::Put(std::string_view key, const json::value& value,
                       std::optional<int64_t> timestamp, OpDone done) {
  Impl& m = *impl_;
  if (key.empty()) return Status::InvalidArgument("an op's key must not be empty");
  if (!IsFiniteJson(value))
    return Status::InvalidArgument("an op's value holds NaN or an infinity, which JSON cannot");
  Impl::Unanswered op{std::string(key), value, timestamp ? *timestamp : m.NextStamp(),
                      std::move(done)};
  json::object payload;
  payload["key"] = key;
  payload["value"] = value;
  payload["timestamp"] = op.timestamp;
  json::object message;
  message["type"] = "op";
  message["payload"] = std::move(payload);
  std::string text = json::serialize(message);
  if (text.size() > m.options.max_message_bytes)
    return Status::InvalidArgument("the op is " + std::to_string(text.size()) +
                                   " bytes, over max_message_bytes");
  std::lock_guard<std::mutex> l(m.mu);
  if (m.stop_requested) return Status::IoError("the client is stopped");
  if (m.state != State::kSynced)
    return Status::IoError(std::string("not synced (state ") + StateName(m.state) +
                           "); ops are not queued while disconnected");
  if (m.queued_bytes + text.size() > m.options.max_send_queue_bytes)
    return Status::IoError("the send queue is full (max_send_queue_bytes)");
  m.queued_bytes += text.size();
  // Posted with mu held: Synced means the client's thread is running, and
  // Stop() (which takes mu first) posts its shutdown behind this, so the
  // handler runs and `done` is told, whatever happens next.
  net::post(
      m.ioc, [&m, gen = m.synced_generation, text = std::move(text), op = std::move(op)]() mutable {
        if (!m.conn || m.conn->generation != gen || !m.conn->open || m.stopping) {
          m.Unqueue(gen, text.size());  // that connection is gone: the op is lost
          if (op.done)
            op.done(Status::IoError(
                        std::string(m.stopping ? "the client stopped" : "the connection ended") +
                        " before the op was sent: not applied"),
                    {});
          return;
        }
        m.Enqueue(m.conn, std::move(text), std::move(op));
      });
  return Status::Ok();
}

State SyncClient::state() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->state;
}

}  // namespace etherply::client
