// etherply_load: a load generator and delivery checker for the sync protocol
// (doc/protocol.md). bench/run_load.sh runs it against a fresh server.
//
//   etherply_load --url ws://HOST:PORT --token T [options]
//
//   --writers N           writer connections per workspace (default 1)
//   --readers M           reader connections per workspace (default 0)
//   --workspaces W        workspaces, each with N writers and M readers (default 1)
//   --ops K               ops each writer sends at most (default 1000)
//   --rate R              ops per second per writer; 0 sends as fast as the
//                         window allows (default 0)
//   --window P            ops a writer may have sent whose broadcast has not
//                         come back to it yet (default 64; 1 = one at a time)
//   --value-bytes B       length of each op's string value (default 32)
//   --duration S          stop sending after S seconds (90, 90s, 2m; default:
//                         no limit, K ops per writer)
//   --drain-timeout S     give up when nothing arrives for S seconds while ops
//                         are still expected (default 30s)
//   --connect-parallel C  connections opened at a time (default 64)
//   --workspace-prefix P  workspaces are P-0 .. P-(W-1) (default load-<unix ms>)
//   --label NAME          echoed in the output, for the scripts that collect it
//   --first-op N          writers number their ops from N (keys w<i>-<N+n>), so
//                         that runs on one workspace write new keys
//   --reader-url ws://HOST:PORT
//                         readers connect here instead (another node of a
//                         replicated cluster: send→delivery is then the
//                         cross-node latency; the one-order check still spans
//                         every connection: with all writers on one node the
//                         stream keeps that node's commit order)
//
// How it runs. Everything is on one thread (one io_context): the server being
// measured needs the other cores. All N+M connections of all W workspaces
// open first, and sending starts only once every one has its "init", so that
// every connection must see every op. Writer i (numbered across workspaces)
// sends {"type":"op","payload":{"key":"w<i>-<n>","value":"xxx…"}} for
// n = 0, 1, ...; the value carries nothing: the send time of each op stays
// in this process, by key. A writer also reads: the server broadcasts every
// op to every client of the workspace, its sender included.
//
// What it measures (steady clock, this process):
//   send→broadcast  at the writer, from handing its op to the socket to its
//                   own op coming back (the server's acknowledgement);
//   send→delivery   at each reader, from the writer's send to the reader's
//                   receipt;
//   send→apply, apply→broadcast
//                   the first split at the server's timestamp (the server's
//                   wall clock when the op reached the workspace, before the
//                   durable write); meaningful only with client and server
//                   on one host, one clock;
//   ops/s           ops acknowledged (own broadcast received) per second,
//                   from the first send to the last acknowledgement;
//   deliveries/s    reader receipts per second, first send to last receipt;
//   receptions/s    receipts at all connections, writers included (every op
//                   goes to every client of its workspace: what the server
//                   sends), first send to last receipt.
//
// What it checks, at every connection of a workspace (writers included):
// every op sent there arrives exactly once ("lost", "duplicates"), and all
// connections of a workspace receive the ops in one order
// ("order_mismatches": connections whose sequence differs from the order of
// first arrival). "fifo_violations" counts ops broadcast out of their
// writer's send order (the protocol does not promise it; informational).
// Error messages from the server count as "errors"; anything else out of
// place (an op not sent, a second init, a message that is not JSON) as
// "unexpected".
//
// Output: one JSON line on stdout,
//   {"label":..,"ok":true,"reason":"complete","config":{..},"elapsed_ms":..,
//    "ops_sent":..,"ops_acked":..,"errors":..,"ops_per_s":..,
//    "deliveries":..,"deliveries_expected":..,"deliveries_per_s":..,
//    "receptions":..,"receptions_expected":..,"receptions_per_s":..,
//    "lost":..,"duplicates":..,"order_mismatches":..,"fifo_violations":..,
//    "unexpected":..,
//    "broadcast_us":{"n","p50","p99","max"},"delivery_us":{..},   (whole µs)
//    "send_to_apply_us":{..},"apply_to_broadcast_us":{..},"client_cpu_pct":..}
// and a human-readable summary on stderr.
//
// Exit status: 0 when every op reached every connection of its workspace
// once, in one order, without errors; 1 when not (or on a timeout or a
// dropped connection); 2 on bad flags; 3 when a connection cannot be opened.
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "cli/flags.h"
#include "samples.h"

namespace etherply::bench {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr const char* kUsage =
    "usage: etherply_load --url ws://HOST:PORT --token T [--writers N] [--readers M]\n"
    "                     [--workspaces W] [--ops K] [--rate R] [--window P]\n"
    "                     [--value-bytes B] [--duration S] [--drain-timeout S]\n"
    "                     [--connect-parallel C] [--workspace-prefix P] [--label NAME]\n"
    "                     [--reader-url ws://HOST:PORT] [--first-op N]\n"
    "(see the comment at the top of bench/load.cc)\n";

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConnect = 3;

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t WallNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// --- options -------------------------------------------------------------------

struct LoadOptions {
  std::string host;
  std::string port;
  uint64_t first_op = 0;
  std::string reader_host;  // empty: readers use host and port
  std::string reader_port;
  std::string token;
  uint64_t writers = 1;  // per workspace
  uint64_t readers = 0;  // per workspace
  uint64_t workspaces = 1;
  uint64_t ops = 1000;   // per writer, at most
  uint64_t rate = 0;     // ops/s per writer; 0: as the window allows
  uint64_t window = 64;  // unacknowledged ops per writer
  uint64_t value_bytes = 32;
  int64_t duration_s = 0;  // 0: no limit
  int64_t drain_timeout_s = 30;
  uint64_t connect_parallel = 64;
  std::string workspace_prefix;
  std::string label;
};

// "ws://HOST:PORT" (a trailing "/" allowed) into host and port.
Status ParseWsUrl(std::string_view url, LoadOptions& o) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return Status::InvalidArgument("--url wants ws://HOST:PORT");
  url.remove_prefix(kScheme.size());
  if (!url.empty() && url.back() == '/') url.remove_suffix(1);
  auto colon = url.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || url.find('/') != std::string_view::npos)
    return Status::InvalidArgument("--url wants ws://HOST:PORT");
  o.host = std::string(url.substr(0, colon));
  o.port = std::string(url.substr(colon + 1));
  return cli::ParseCount(o.port).status();
}

Result<LoadOptions> ParseLoadOptions(int argc, char** argv) {
  cli::Flags flags({"url", "token", "writers", "readers", "workspaces", "ops", "rate", "window",
                    "value-bytes", "duration", "drain-timeout", "connect-parallel",
                    "workspace-prefix", "label", "reader-url", "first-op"},
                   {});
  if (Status s = flags.Parse(argc, argv); !s.ok()) return s;
  if (!flags.positional().empty())
    return Status::InvalidArgument("unexpected argument " + flags.positional()[0]);
  LoadOptions o;
  auto url = flags.Get("url");
  auto token = flags.Get("token");
  if (!url || !token) return Status::InvalidArgument("--url and --token are required");
  if (Status s = ParseWsUrl(*url, o); !s.ok()) return s;
  if (auto r = flags.Get("reader-url")) {
    LoadOptions readers;
    if (Status s = ParseWsUrl(*r, readers); !s.ok()) return s;
    o.reader_host = readers.host;
    o.reader_port = readers.port;
  }
  o.token = *token;
  auto count = [&](const char* name, uint64_t& field, uint64_t min) -> Status {
    if (auto v = flags.Get(name)) {
      auto n = cli::ParseCount(*v);
      if (!n.ok() || *n < min)
        return Status::InvalidArgument(std::string("--") + name +
                                       " wants an integer >= " + std::to_string(min));
      field = *n;
    }
    return Status::Ok();
  };
  auto duration = [&](const char* name, int64_t& field) -> Status {
    if (auto v = flags.Get(name)) {
      auto d = cli::ParseDuration(*v);
      if (!d.ok())
        return Status::InvalidArgument(std::string("--") + name + " " + d.status().message());
      field = *d;
    }
    return Status::Ok();
  };
  for (Status s :
       {count("writers", o.writers, 0), count("readers", o.readers, 0),
        count("workspaces", o.workspaces, 1), count("ops", o.ops, 1), count("rate", o.rate, 0),
        count("first-op", o.first_op, 0), count("window", o.window, 1),
        count("value-bytes", o.value_bytes, 0), count("connect-parallel", o.connect_parallel, 1),
        duration("duration", o.duration_s), duration("drain-timeout", o.drain_timeout_s)})
    if (!s.ok()) return s;
  if (o.writers == 0) return Status::InvalidArgument("--writers must be at least 1");
  if (o.drain_timeout_s == 0) return Status::InvalidArgument("--drain-timeout must be positive");
  int64_t unix_ms = WallNowNs() / 1'000'000;
  o.workspace_prefix = flags.Get("workspace-prefix").value_or("load-" + std::to_string(unix_ms));
  o.label = flags.Get("label").value_or("");
  return o;
}

// --- one WebSocket client connection ---------------------------------------------

// A client of /v1/sync/{workspace}: opens (TCP, then the upgrade with the
// token), then reads every message until closed, and writes one message at a
// time. Not thread-safe: it lives on the io_context's one thread. Callbacks
// may call any method, Close() included.
class Connection {
 public:
  using OnOpened = std::function<void(const Status&)>;
  using OnMessage = std::function<void(std::string_view text, int64_t received_ns)>;
  using OnFailed = std::function<void(const std::string& what)>;

  Connection(net::io_context& io, std::string target) : ws_(io), target_(std::move(target)) {}

  // Connects and upgrades; `opened` gets OK, or why not (with the HTTP
  // status if the server refused).
  void Open(const tcp::resolver::results_type& endpoints, const std::string& host_header,
            const std::string& token, OnOpened opened) {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(ws_).async_connect(
        endpoints, [this, host_header, token, opened = std::move(opened)](
                       beast::error_code ec, const tcp::endpoint&) mutable {
          if (ec) return opened(Status::IoError("connect: " + ec.message()));
          Upgrade(host_header, token, std::move(opened));
        });
  }

  // Reads messages until the connection ends; `failed` is told of an end
  // that Close() did not ask for.
  void StartReading(OnMessage on_message, OnFailed failed) {
    on_message_ = std::move(on_message);
    on_failed_ = std::move(failed);
    DoRead();
  }

  bool writing() const { return writing_; }

  // Writes one text message; only when !writing(). `written` runs once the
  // message is handed to the socket, unless the connection closes first.
  void Write(std::string message, std::function<void()> written) {
    out_ = std::move(message);
    writing_ = true;
    ws_.async_write(net::buffer(out_),
                    [this, written = std::move(written)](beast::error_code ec, size_t) {
                      writing_ = false;
                      if (close_requested_) return DoClose();
                      if (ec) return Failed("write: " + ec.message());
                      written();
                    });
  }

  // Sends a normal close (after the write in flight, if any); `closed` runs
  // when the close handshake ends or fails.
  void Close(std::function<void()> closed) {
    if (close_requested_) return;
    close_requested_ = true;
    on_closed_ = std::move(closed);
    if (!writing_) DoClose();
  }

 private:
  void Upgrade(const std::string& host_header, const std::string& token, OnOpened opened) {
    auto& tcp_stream = beast::get_lowest_layer(ws_);
    tcp_stream.expires_never();
    beast::error_code ignored;
    tcp_stream.socket().set_option(tcp::no_delay(true), ignored);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    // An init carries the whole workspace: a million keys are tens of MB.
    ws_.read_message_max(uint64_t{1} << 30);
    ws_.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      req.set(beast::http::field::authorization, "Bearer " + token);
    }));
    ws_.text(true);
    ws_.async_handshake(response_, host_header, target_,
                        [this, opened = std::move(opened)](beast::error_code ec) {
                          if (!ec) return opened(Status::Ok());
                          std::string why = "upgrade " + target_ + ": " + ec.message();
                          if (response_.result_int() != 0)
                            why += " (HTTP " + std::to_string(response_.result_int()) + ")";
                          opened(Status::IoError(why));
                        });
  }

  void DoRead() {
    ws_.async_read(buffer_, [this](beast::error_code ec, size_t) {
      if (ec) return Failed("read: " + ec.message());
      int64_t received_ns = SteadyNowNs();
      auto data = buffer_.data();
      on_message_(std::string_view(static_cast<const char*>(data.data()), data.size()),
                  received_ns);
      buffer_.consume(buffer_.size());
      DoRead();
    });
  }

  void DoClose() {
    ws_.async_close(websocket::close_code::normal, [this](beast::error_code) {
      if (on_closed_) std::exchange(on_closed_, nullptr)();
    });
  }

  void Failed(const std::string& what) {
    if (close_requested_) return;  // the end we asked for
    if (on_failed_) on_failed_(what);
  }

  // The io_context's own executor, not the polymorphic any_io_executor of
  // beast::tcp_stream: copying and destroying that one on each read cost
  // the client about a tenth of its CPU (it shares the machine's cores with
  // the server it measures).
  websocket::stream<beast::basic_stream<tcp, net::io_context::executor_type>> ws_;
  const std::string target_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::string out_;  // the message being written
  bool writing_ = false;
  bool close_requested_ = false;
  OnMessage on_message_;
  OnFailed on_failed_;
  std::function<void()> on_closed_;
};

// --- the run ---------------------------------------------------------------------

// A writer's sending state.
struct Sender {
  explicit Sender(net::io_context& io) : pace(io) {}
  uint64_t global_index = 0;     // i in the keys w<i>-<n>
  std::vector<int64_t> send_ns;  // by n: when op n was handed to the socket
  uint64_t outstanding = 0;      // sent, own broadcast not yet back
  uint64_t acked = 0;
  bool done = false;       // sends nothing more
  net::steady_timer pace;  // --rate: wakes the writer when its next op is due
  bool pace_armed = false;
};

// One connection and what it has received.
struct Peer {
  std::unique_ptr<Connection> conn;
  size_t workspace = 0;
  std::unique_ptr<Sender> sender;       // writers only
  uint32_t local_writer = 0;            // writers: index among the workspace's writers
  bool synced = false;                  // "init" received
  uint64_t position = 0;                // ops received, duplicates included
  bool diverged = false;                // its order differs from the order of first arrival
  std::vector<std::vector<bool>> seen;  // [local writer][n]
  uint64_t received = 0;                // distinct ops
  uint64_t duplicates = 0;
};

struct WorkspaceState {
  std::string name;
  std::vector<Peer*> peers;             // writers first, then readers
  std::vector<uint64_t> order;          // ops in order of first arrival: writer << 32 | n
  std::vector<int64_t> last_ordered_n;  // per local writer, for the FIFO check
  uint64_t ops_sent = 0;
  uint64_t ops_failed = 0;  // answered with an error
};

// An op identified by its key "w<i>-<n>".
struct OpKey {
  uint64_t writer = 0;  // global writer index i
  uint64_t n = 0;
};

std::optional<OpKey> ParseOpKey(std::string_view key) {
  if (key.size() < 4 || key[0] != 'w') return std::nullopt;
  auto dash = key.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  OpKey k;
  auto parse = [](std::string_view s, uint64_t& v) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
  };
  if (!parse(key.substr(1, dash - 1), k.writer) || !parse(key.substr(dash + 1), k.n))
    return std::nullopt;
  return k;
}

// The fields of a server message that the run reads, taken by Boost.JSON's
// streaming parser without building the document (a DOM per message was
// the largest part of this tool's CPU, which it shares with the server):
// "type" at the top level, and "key" and "timestamp" of an op's "payload".
// The parser still checks the whole message is valid JSON.
struct MessageFields {
  std::string type;
  bool has_payload = false;          // "payload" is an object
  std::optional<std::string> key;    // payload.key, a string
  std::optional<int64_t> timestamp;  // payload.timestamp, an integer
};

class FieldsHandler {
 public:
  static constexpr size_t max_object_size = size_t(-1);
  static constexpr size_t max_array_size = size_t(-1);
  static constexpr size_t max_key_size = size_t(-1);
  static constexpr size_t max_string_size = size_t(-1);

  MessageFields fields;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) {
    if (depth_ == 1 && field_ == Field::kPayload) fields.has_payload = true;
    return Enter();
  }
  bool on_object_end(size_t, boost::system::error_code&) { return Leave(); }
  bool on_array_begin(boost::system::error_code&) { return Enter(); }
  bool on_array_end(size_t, boost::system::error_code&) { return Leave(); }
  bool on_key_part(std::string_view s, size_t, boost::system::error_code&) {
    part_.append(s);
    return true;
  }
  bool on_key(std::string_view s, size_t, boost::system::error_code&) {
    std::string_view key = Whole(s);
    field_ = Field::kOther;
    if (depth_ == 1 && key == "type") field_ = Field::kType;
    if (depth_ == 1 && key == "payload") field_ = Field::kPayload;
    if (depth_ == 2 && in_payload_ && key == "key") field_ = Field::kKey;
    if (depth_ == 2 && in_payload_ && key == "timestamp") field_ = Field::kTimestamp;
    part_.clear();
    return true;
  }
  bool on_string_part(std::string_view s, size_t, boost::system::error_code&) {
    if (field_ == Field::kType || field_ == Field::kKey) part_.append(s);
    return true;
  }
  bool on_string(std::string_view s, size_t, boost::system::error_code&) {
    if (field_ == Field::kType) fields.type = Whole(s);
    if (field_ == Field::kKey) fields.key = std::string(Whole(s));
    part_.clear();
    return Scalar();
  }
  bool on_number_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_int64(int64_t v, std::string_view, boost::system::error_code&) {
    if (field_ == Field::kTimestamp) fields.timestamp = v;
    return Scalar();
  }
  bool on_uint64(uint64_t, std::string_view, boost::system::error_code&) { return Scalar(); }
  bool on_double(double, std::string_view, boost::system::error_code&) { return Scalar(); }
  bool on_bool(bool, boost::system::error_code&) { return Scalar(); }
  bool on_null(boost::system::error_code&) { return Scalar(); }
  bool on_comment_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_comment(std::string_view, boost::system::error_code&) { return true; }

 private:
  enum class Field { kOther, kType, kPayload, kKey, kTimestamp };
  bool Enter() {
    if (depth_ == 1) in_payload_ = field_ == Field::kPayload;
    ++depth_;
    field_ = Field::kOther;
    return true;
  }
  bool Leave() {
    if (--depth_ == 1) in_payload_ = false;
    field_ = Field::kOther;
    return true;
  }
  bool Scalar() {
    field_ = Field::kOther;
    return true;
  }
  // A key or string the parser gave in parts (it spans its buffer): joined.
  std::string_view Whole(std::string_view last) {
    if (part_.empty()) return last;
    part_.append(last);
    return part_;
  }

  int depth_ = 0;                // objects and arrays open
  bool in_payload_ = false;      // inside the top-level "payload" object
  Field field_ = Field::kOther;  // what the next value is
  std::string part_;
};

// The fields of `text`, or nullopt if it is not valid JSON.
std::optional<MessageFields> ParseMessageFields(std::string_view text) {
  json::basic_parser<FieldsHandler> parser{json::parse_options{}};
  boost::system::error_code ec;
  size_t n = parser.write_some(false, text.data(), text.size(), ec);
  if (ec || n != text.size()) return std::nullopt;
  return std::move(parser.handler().fields);
}

class LoadRun {
 public:
  explicit LoadRun(LoadOptions options)
      : o_(std::move(options)), watchdog_(io_), deadline_(io_), close_timer_(io_) {}

  // Runs the whole load; returns the process exit status.
  int Run() {
    if (Status s = Setup(); !s.ok()) {
      std::fprintf(stderr, "etherply_load: %s\n", s.message().c_str());
      return kExitConnect;
    }
    OpenNext();
    ArmWatchdog();
    io_.run();
    return Report();
  }

 private:
  // --- setup and connecting ---

  Status Setup() {
    beast::error_code ec;
    tcp::resolver resolver(io_);
    endpoints_ = resolver.resolve(o_.host, o_.port, ec);
    if (ec) return Status::IoError("resolve " + o_.host + ": " + ec.message());
    host_header_ = o_.host + ":" + o_.port;
    reader_endpoints_ = endpoints_;
    reader_host_header_ = host_header_;
    if (!o_.reader_host.empty()) {
      reader_endpoints_ = resolver.resolve(o_.reader_host, o_.reader_port, ec);
      if (ec) return Status::IoError("resolve " + o_.reader_host + ": " + ec.message());
      reader_host_header_ = o_.reader_host + ":" + o_.reader_port;
    }
    value_json_ = "\"" + std::string(o_.value_bytes, 'x') + "\"";
    wall_offset_ns_ = WallNowNs() - SteadyNowNs();
    workspaces_.resize(o_.workspaces);
    for (size_t w = 0; w < o_.workspaces; ++w) AddWorkspace(w);
    last_progress_ns_ = SteadyNowNs();
    return Status::Ok();
  }

  void AddWorkspace(size_t w) {
    WorkspaceState& ws = workspaces_[w];
    ws.name = o_.workspace_prefix + "-" + std::to_string(w);
    ws.last_ordered_n.assign(o_.writers, -1);
    for (uint64_t i = 0; i < o_.writers + o_.readers; ++i) {
      auto peer = std::make_unique<Peer>();
      peer->conn = std::make_unique<Connection>(io_, "/v1/sync/" + ws.name);
      peer->workspace = w;
      peer->seen.resize(o_.writers);
      if (i < o_.writers) {
        peer->sender = std::make_unique<Sender>(io_);
        peer->sender->global_index = writer_peers_.size();
        peer->local_writer = static_cast<uint32_t>(i);
        writer_peers_.push_back(peer.get());
      }
      ws.peers.push_back(peer.get());
      peers_.push_back(std::move(peer));
    }
  }

  // Opens connections, at most --connect-parallel at a time.
  void OpenNext() {
    while (next_to_open_ < peers_.size() && opening_ < o_.connect_parallel) {
      Peer& peer = *peers_[next_to_open_++];
      ++opening_;
      bool reader = peer.sender == nullptr;
      peer.conn->Open(reader ? reader_endpoints_ : endpoints_,
                      reader ? reader_host_header_ : host_header_, o_.token,
                      [this, &peer](const Status& s) { OnOpened(peer, s); });
    }
  }

  void OnOpened(Peer& peer, const Status& s) {
    --opening_;
    if (finished_) return;
    if (!s.ok()) return Finish("cannot open a connection: " + s.message(), kExitConnect);
    last_progress_ns_ = SteadyNowNs();
    peer.conn->StartReading(
        [this, &peer](std::string_view text, int64_t at) { OnMessage(peer, text, at); },
        [this](const std::string& what) { Finish("a connection ended: " + what, kExitFailed); });
    OpenNext();
  }

  // --- receiving ---

  void OnMessage(Peer& peer, std::string_view text, int64_t received_ns) {
    if (finished_) return;
    last_progress_ns_ = received_ns;
    std::optional<MessageFields> msg = ParseMessageFields(text);
    if (!msg || msg->type.empty()) return Unexpected(text);
    if (msg->type == "init") return OnInit(peer);
    if (msg->type == "error") return OnServerError(peer, text);
    if (msg->type != "op" || !peer.synced || !msg->has_payload) return Unexpected(text);
    OnOp(peer, *msg, text, received_ns);
  }

  void Unexpected(std::string_view text) {
    ++unexpected_;
    if (unexpected_ <= 3)
      std::fprintf(stderr, "etherply_load: unexpected message: %.200s\n",
                   std::string(text).c_str());
  }

  void OnInit(Peer& peer) {
    if (peer.synced) return Unexpected("a second init");
    peer.synced = true;
    if (++synced_ == peers_.size()) StartSending();
  }

  void OnServerError(Peer& peer, std::string_view msg) {
    ++errors_;
    if (errors_ <= 3)
      std::fprintf(stderr, "etherply_load: server error: %.*s\n", static_cast<int>(msg.size()),
                   msg.data());
    if (!peer.sender) return;
    // An error answers one op of this writer, which will not be broadcast.
    WorkspaceState& ws = workspaces_[peer.workspace];
    ++ws.ops_failed;
    receptions_expected_ -= ws.peers.size();
    if (peer.sender->outstanding > 0) --peer.sender->outstanding;
    TrySend(peer);
    CheckComplete();
  }

  void OnOp(Peer& peer, const MessageFields& msg, std::string_view text, int64_t received_ns) {
    std::optional<OpKey> k = msg.key ? ParseOpKey(*msg.key) : std::nullopt;
    if (k && k->n < o_.first_op) k.reset();
    if (k) k->n -= o_.first_op;
    if (!k || k->writer >= writer_peers_.size()) return Unexpected(text);
    Peer& writer = *writer_peers_[k->writer];
    if (writer.workspace != peer.workspace || k->n >= writer.sender->send_ns.size())
      return Unexpected(text);
    CheckOrder(peer, writer.local_writer, k->n);
    if (!MarkSeen(peer, writer.local_writer, k->n)) return;
    last_reception_ns_ = received_ns;
    int64_t latency_ns = received_ns - writer.sender->send_ns[k->n];
    if (&peer == &writer) {
      OnAcknowledged(writer, k->n, msg.timestamp, received_ns);
    } else if (!peer.sender) {
      delivery_.Add(latency_ns);
      ++deliveries_;
      last_delivery_ns_ = received_ns;
    }
    CheckComplete();
  }

  // Compares the op at this peer's position with the order of first arrival.
  void CheckOrder(Peer& peer, uint32_t local_writer, uint64_t n) {
    WorkspaceState& ws = workspaces_[peer.workspace];
    uint64_t id = (uint64_t{local_writer} << 32) | n;
    if (peer.position == ws.order.size()) {
      ws.order.push_back(id);
      int64_t& last = ws.last_ordered_n[local_writer];
      if (static_cast<int64_t>(n) != last + 1) ++fifo_violations_;
      last = std::max(last, static_cast<int64_t>(n));
    } else if (ws.order[peer.position] != id) {
      peer.diverged = true;
    }
    ++peer.position;
  }

  // Records that `peer` has op (local_writer, n); false if it already had it.
  bool MarkSeen(Peer& peer, uint32_t local_writer, uint64_t n) {
    std::vector<bool>& seen = peer.seen[local_writer];
    if (seen.size() <= n) seen.resize(std::max<size_t>(n + 1, 2 * seen.size()));  // amortized
    if (seen[n]) {
      ++peer.duplicates;
      return false;
    }
    seen[n] = true;
    ++peer.received;
    ++receptions_;
    return true;
  }

  void OnAcknowledged(Peer& writer, uint64_t n, std::optional<int64_t> timestamp,
                      int64_t received_ns) {
    Sender& s = *writer.sender;
    int64_t sent_ns = s.send_ns[n];
    broadcast_.Add(received_ns - sent_ns);
    if (timestamp) {
      int64_t applied_ns = *timestamp * 1000 - wall_offset_ns_;  // on the steady scale
      send_to_apply_.Add(applied_ns - sent_ns);
      apply_to_broadcast_.Add(received_ns - applied_ns);
    }
    ++s.acked;
    ++acked_;
    last_ack_ns_ = received_ns;
    if (s.outstanding > 0) --s.outstanding;
    TrySend(writer);
  }

  // --- sending ---

  void StartSending() {
    start_ns_ = SteadyNowNs();
    start_cpu_s_ = CpuSeconds();
    std::fprintf(stderr, "etherply_load: %zu connections synced; sending\n", peers_.size());
    if (o_.duration_s > 0) {
      deadline_.expires_after(std::chrono::seconds(o_.duration_s));
      deadline_.async_wait([this](beast::error_code ec) {
        if (ec) return;
        for (Peer* w : writer_peers_) StopSending(*w);
      });
    }
    for (Peer* w : writer_peers_) TrySend(*w);
  }

  // Sends this writer's next ops while its window, its pace and its budget
  // allow; it is called again on each acknowledgement, write and pace tick.
  void TrySend(Peer& writer) {
    Sender& s = *writer.sender;
    if (finished_ || s.done || writer.conn->writing()) return;
    uint64_t n = s.send_ns.size();
    int64_t now = SteadyNowNs();
    bool past_deadline = o_.duration_s > 0 && now - start_ns_ >= o_.duration_s * 1'000'000'000;
    if (n >= o_.ops || past_deadline) return StopSending(writer);
    if (s.outstanding >= o_.window) return;  // an acknowledgement resumes it
    if (o_.rate > 0) {
      int64_t due = start_ns_ + static_cast<int64_t>(n * 1'000'000'000 / o_.rate);
      if (now < due) return Pace(writer, due);
    }
    WorkspaceState& ws = workspaces_[writer.workspace];
    std::string key = "w" + std::to_string(s.global_index) + "-" + std::to_string(o_.first_op + n);
    s.send_ns.push_back(now);
    ++s.outstanding;
    ++ws.ops_sent;
    ++sent_;
    receptions_expected_ += ws.peers.size();
    writer.conn->Write(
        "{\"type\":\"op\",\"payload\":{\"key\":\"" + key + "\",\"value\":" + value_json_ + "}}",
        [this, &writer] { TrySend(writer); });
  }

  // Wakes the writer at `due_ns` (steady clock).
  void Pace(Peer& writer, int64_t due_ns) {
    Sender& s = *writer.sender;
    if (s.pace_armed) return;
    s.pace_armed = true;
    s.pace.expires_after(std::chrono::nanoseconds(due_ns - SteadyNowNs()));
    s.pace.async_wait([this, &writer](beast::error_code ec) {
      writer.sender->pace_armed = false;
      if (!ec) TrySend(writer);
    });
  }

  void StopSending(Peer& writer) {
    Sender& s = *writer.sender;
    if (s.done) return;
    s.done = true;
    s.pace.cancel();
    ++senders_done_;
    CheckComplete();
  }

  // --- ending ---

  void CheckComplete() {
    if (!finished_ && senders_done_ == writer_peers_.size() && receptions_ >= receptions_expected_)
      Finish("complete", kExitOk);
  }

  // Every second: gives up if nothing has arrived for --drain-timeout.
  void ArmWatchdog() {
    watchdog_.expires_after(std::chrono::seconds(1));
    watchdog_.async_wait([this](beast::error_code ec) {
      if (ec || finished_) return;
      if (SteadyNowNs() - last_progress_ns_ > o_.drain_timeout_s * 1'000'000'000) {
        std::string phase = synced_ < peers_.size() ? "while connecting" : "while ops were due";
        return Finish(
            "timeout: nothing arrived for " + std::to_string(o_.drain_timeout_s) + " s " + phase,
            kExitFailed);
      }
      ArmWatchdog();
    });
  }

  // Stops measuring, closes every connection, then stops the io_context
  // (after 3 s at most: a server that does not answer the close is not waited for).
  void Finish(std::string reason, int exit_code) {
    if (finished_) return;
    finished_ = true;
    reason_ = std::move(reason);
    exit_code_ = exit_code;
    end_ns_ = SteadyNowNs();
    end_cpu_s_ = CpuSeconds();
    watchdog_.cancel();
    deadline_.cancel();
    for (Peer* w : writer_peers_) w->sender->pace.cancel();
    closing_ = peers_.size();
    for (auto& peer : peers_)
      peer->conn->Close([this] {
        if (--closing_ == 0) io_.stop();
      });
    close_timer_.expires_after(std::chrono::seconds(3));
    close_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) io_.stop();
    });
  }

  // --- the report ---

  struct Counts {
    uint64_t lost = 0;
    uint64_t duplicates = 0;
    uint64_t order_mismatches = 0;
    uint64_t deliveries_expected = 0;
  };

  Counts Tally() const {
    Counts c;
    for (const auto& peer : peers_) {
      const WorkspaceState& ws = workspaces_[peer->workspace];
      uint64_t expected = ws.ops_sent - ws.ops_failed;
      if (peer->received < expected) c.lost += expected - peer->received;
      c.duplicates += peer->duplicates;
      c.order_mismatches += peer->diverged ? 1 : 0;
      if (!peer->sender) c.deliveries_expected += expected;
    }
    return c;
  }

  // Microseconds, rounded to whole ones.
  static json::object ToJson(const Summary& s) {
    auto us = [](double v) { return std::llround(v); };
    return {{"n", s.n}, {"p50", us(s.p50_us)}, {"p99", us(s.p99_us)}, {"max", us(s.max_us)}};
  }

  static int64_t PerSecond(uint64_t count, int64_t from_ns, int64_t to_ns) {
    return to_ns > from_ns ? std::llround(count / ((to_ns - from_ns) / 1e9)) : 0;
  }

  json::object ConfigJson() const {
    return {{"writers", o_.writers},
            {"readers", o_.readers},
            {"workspaces", o_.workspaces},
            {"ops", o_.ops},
            {"rate", o_.rate},
            {"window", o_.window},
            {"value_bytes", o_.value_bytes},
            {"duration_s", o_.duration_s},
            {"workspace_prefix", o_.workspace_prefix}};
  }

  int Report() {
    Counts c = Tally();
    bool ok = exit_code_ == kExitOk && errors_ == 0 && unexpected_ == 0 && c.lost == 0 &&
              c.duplicates == 0 && c.order_mismatches == 0 && sent_ > 0;
    int64_t wall_ns = start_ns_ > 0 ? end_ns_ - start_ns_ : 0;
    Summary bcast = broadcast_.Summarize(), deliv = delivery_.Summarize();
    Summary to_apply = send_to_apply_.Summarize(), from_apply = apply_to_broadcast_.Summarize();
    json::object out{
        {"label", o_.label},
        {"ok", ok},
        {"reason", reason_},
        {"config", ConfigJson()},
        {"connections", peers_.size()},
        {"elapsed_ms", std::llround(wall_ns / 1e6)},
        {"ops_sent", sent_},
        {"ops_acked", acked_},
        {"errors", errors_},
        {"ops_per_s", PerSecond(acked_, start_ns_, last_ack_ns_)},
        {"deliveries", deliveries_},
        {"deliveries_expected", c.deliveries_expected},
        {"deliveries_per_s", PerSecond(deliveries_, start_ns_, last_delivery_ns_)},
        {"receptions", receptions_},
        {"receptions_expected", receptions_expected_},
        {"receptions_per_s", PerSecond(receptions_, start_ns_, last_reception_ns_)},
        {"lost", c.lost},
        {"duplicates", c.duplicates},
        {"order_mismatches", c.order_mismatches},
        {"fifo_violations", fifo_violations_},
        {"unexpected", unexpected_},
        {"broadcast_us", ToJson(bcast)},
        {"delivery_us", ToJson(deliv)},
        {"send_to_apply_us", ToJson(to_apply)},
        {"apply_to_broadcast_us", ToJson(from_apply)},
        {"client_cpu_pct",
         wall_ns > 0 ? std::llround((end_cpu_s_ - start_cpu_s_) / (wall_ns / 1e9) * 100) : 0},
    };
    std::printf("%s\n", json::serialize(out).c_str());
    std::fflush(stdout);
    PrintTable(out, ok, {bcast, deliv, to_apply, from_apply});
    if (ok) return kExitOk;
    return exit_code_ == kExitConnect ? kExitConnect : kExitFailed;
  }

  void PrintTable(const json::object& out, bool ok, const std::vector<Summary>& latencies) const {
    auto num = [&](const char* key) { return json::value_to<double>(out.at(key)); };
    std::fprintf(stderr,
                 "etherply_load %s: %llu workspace(s) x (%llu writers, %llu readers), "
                 "%llu ops/writer, window %llu, rate %s, value %llu B\n",
                 o_.label.c_str(), (unsigned long long)o_.workspaces,
                 (unsigned long long)o_.writers, (unsigned long long)o_.readers,
                 (unsigned long long)o_.ops, (unsigned long long)o_.window,
                 o_.rate ? (std::to_string(o_.rate) + "/s per writer").c_str() : "unpaced",
                 (unsigned long long)o_.value_bytes);
    std::fprintf(stderr, "  result       %s (%s)\n", ok ? "OK" : "FAILED", reason_.c_str());
    std::fprintf(stderr, "  ops          %.0f sent, %.0f acknowledged, %.0f errors, %.0f ops/s\n",
                 num("ops_sent"), num("ops_acked"), num("errors"), num("ops_per_s"));
    std::fprintf(stderr, "  deliveries   %.0f of %.0f to readers, %.0f/s\n", num("deliveries"),
                 num("deliveries_expected"), num("deliveries_per_s"));
    std::fprintf(stderr,
                 "  checks       lost %.0f, duplicates %.0f, order mismatches %.0f, "
                 "fifo violations %.0f, unexpected %.0f\n",
                 num("lost"), num("duplicates"), num("order_mismatches"), num("fifo_violations"),
                 num("unexpected"));
    std::fprintf(stderr, "  latency ms          p50       p99       max         n\n");
    const char* names[] = {"send→broadcast ", "send→delivery  ", "send→apply     ",
                           "apply→broadcast"};
    for (size_t i = 0; i < latencies.size(); ++i) {
      const Summary& s = latencies[i];
      std::fprintf(stderr, "  %s %9.2f %9.2f %9.2f %9zu\n", names[i], s.p50_us / 1e3,
                   s.p99_us / 1e3, s.max_us / 1e3, s.n);
    }
    std::fprintf(stderr, "  client CPU   %.0f%% of one core over %.0f ms\n", num("client_cpu_pct"),
                 num("elapsed_ms"));
  }

  // Constant after Setup().
  const LoadOptions o_;
  net::io_context io_{1};
  tcp::resolver::results_type endpoints_;
  std::string host_header_;
  tcp::resolver::results_type reader_endpoints_;
  std::string reader_host_header_;
  std::string value_json_;      // the op value, a JSON string
  int64_t wall_offset_ns_ = 0;  // system clock minus steady clock
  std::vector<WorkspaceState> workspaces_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Peer*> writer_peers_;  // by global writer index

  // Connecting.
  size_t next_to_open_ = 0;
  size_t opening_ = 0;
  size_t synced_ = 0;

  // Sending and receiving.
  int64_t start_ns_ = 0;
  double start_cpu_s_ = 0;
  size_t senders_done_ = 0;
  uint64_t sent_ = 0, acked_ = 0, errors_ = 0, deliveries_ = 0;
  uint64_t receptions_ = 0, receptions_expected_ = 0;
  uint64_t fifo_violations_ = 0, unexpected_ = 0;
  int64_t last_ack_ns_ = 0, last_delivery_ns_ = 0, last_reception_ns_ = 0;
  int64_t last_progress_ns_ = 0;
  Samples broadcast_, delivery_, send_to_apply_, apply_to_broadcast_;
  net::steady_timer watchdog_, deadline_;

  // Ending.
  bool finished_ = false;
  std::string reason_ = "not finished";
  int exit_code_ = kExitFailed;
  int64_t end_ns_ = 0;
  double end_cpu_s_ = 0;
  size_t closing_ = 0;
  net::steady_timer close_timer_;
};

}  // namespace
}  // namespace etherply::bench

int main(int argc, char** argv) {
  using namespace etherply::bench;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
  }
  auto options = ParseLoadOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "etherply_load: %s\n\n%s", options.status().message().c_str(), kUsage);
    return kExitUsage;
  }
  return LoadRun(std::move(*options)).Run();
}
