#include "server/server.h"

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "base/hex.h"
#include "base/log.h"
#include "base/random.h"
#include "server/context.h"
#include "server/http_session.h"
#include "storage/committer.h"
#include "storage/layout.h"
#include "storage/store.h"
#include "webhooks/http_client.h"
#include "webhooks/outbox.h"

namespace etherply::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// How long a stopping server waits for its clients to answer their close.
constexpr std::chrono::seconds kCloseGrace{2};
// How long the process may take to end after a second signal.
constexpr std::chrono::seconds kForcedExitAfter{3};

// File descriptors kept back from connections: RocksDB's files (at most
// storage::kMaxOpenTables tables and a few more), the webhook and NATS
// connections, the event loop's own, the standard streams, and the few
// connections a full server accepts while those it closed to make room
// finish closing (http_session.cc).
constexpr size_t kReservedFds = storage::kMaxOpenTables + 128;
// HTTP connections at once (health checks, history, documents, upgrades
// under way), beside max_connections WebSocket ones.
constexpr size_t kMaxHttpConnections = 1024;
// How long the acceptor rests after a failed accept (no descriptor or
// memory left): the connection waits in the listen backlog meanwhile.
constexpr std::chrono::milliseconds kAcceptRetry{100};

namespace {
// Raises the soft limit on open files to the hard one (or, with no hard
// limit, to what max_connections needs) and returns how many connections
// the server may hold at once: beyond that a new one is answered 503 as it
// is accepted, rather than an accept failing for want of a descriptor. Says
// so when the limit is what binds.
size_t MaxSockets(size_t max_connections) {
  // Saturating: --max-connections may be as large as a size_t.
  const size_t wanted = std::min(max_connections, SIZE_MAX - kMaxHttpConnections - kReservedFds) +
                        kMaxHttpConnections;
  const rlim_t needed = wanted + kReservedFds;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return wanted;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < std::max(needed, rl.rlim_max)) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? needed : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= needed) return wanted;
  size_t limit = rl.rlim_cur;
  // Whatever is left beside the reserve (a few, however short the limit).
  size_t max_sockets = limit > kReservedFds + 16 ? limit - kReservedFds : 16;
  LogWarn("open files are limited to " + std::to_string(limit) +
          " (ulimit -n; its hard limit too): this node holds at most " +
          std::to_string(max_sockets) +
          " connections at once, WebSocket and HTTP together, and answers more with 503; "
          "--max-connections " +
          std::to_string(max_connections) + " needs a limit of " + std::to_string(needed) +
          " (raise the hard limit: ulimit -Hn as root, or LimitNOFILE= under systemd)");
  return max_sockets;
}
}  // namespace

struct Server::Impl {
  explicit Impl(ServerOptions o)
      : ioc(o.threads),
        accept_strand(net::make_strand(ioc)),
        acceptor(accept_strand),
        accept_timer(accept_strand),
        stop_timer(ioc) {
    ctx = std::make_shared<ServerContext>();
    ctx->options = std::move(o);
    // SIGHUP (its terminal closed) stops the server as SIGTERM does, unless
    // it was started ignoring it (nohup): then it stays ignored.
    struct sigaction hup = {};
    if (::sigaction(SIGHUP, nullptr, &hup) == 0 && hup.sa_handler != SIG_IGN)
      signaling.signals.add(SIGHUP);
  }

  // Teardown order: stop replication (its threads call the hub); stop the
  // network; let the committer write what is queued (its callbacks post to
  // the stopped io_context, harmlessly); let go of the warm workspaces; then
  // the io_context destroys its handlers and with them the last workspaces,
  // which still need the hub; the hub and the store go last.
  ~Impl() {
    {
      std::lock_guard lock(teardown_mu);
      tearing_down = true;
    }
    if (replicator) replicator->Stop();  // its threads call the hub
    ioc.stop();
    committer.reset();
    if (hub) hub->ReleaseWarm();  // their strands need the io_context
  }

  void Accept() {
    acceptor.async_accept(
        net::make_strand(ioc), [this](boost::system::error_code ec, tcp::socket socket) {
          if (ec == net::error::operation_aborted || ctx->stopping) return;
          if (ec) {
            // No descriptor or memory left (EMFILE, ENFILE, ENOBUFS, ENOMEM):
            // accepting again at once would spin, failing the same way.
            accept_failed.Warn("accepting a connection failed: " + ec.message() +
                               "; retrying every " + std::to_string(kAcceptRetry.count()) + " ms");
            accept_timer.expires_after(kAcceptRetry);
            accept_timer.async_wait([this](boost::system::error_code ec) {
              if (!ec && !ctx->stopping) Accept();
            });
            return;
          }
          // Real-time messages go out at once: without this, Nagle holds a
          // broadcast until the client's delayed ACK, up to 40 ms.
          boost::system::error_code ignored;
          socket.set_option(tcp::no_delay(true), ignored);
          StartHttpSession(std::move(socket), ctx);
          Accept();
        });
  }

  // Set as the teardown begins (under its mutex): from then on a signal
  // leaves the io_context, which is stopped and about to go, alone.
  std::mutex teardown_mu;
  bool tearing_down = false;
  // Signals are taken on a thread of their own, so that a second one stops
  // the server even while every network thread is busy (a disk that does
  // not answer a sync, a long request). Destroyed last but for the above: a
  // signal during the teardown is still taken.
  struct Signaling {
    net::io_context ioc{1};
    net::signal_set signals{ioc, SIGINT, SIGTERM};
    std::thread thread;
    ~Signaling() {
      ioc.stop();
      if (thread.joinable()) thread.join();
    }
  } signaling;

  // Declared in reverse order of destruction (see ~Impl).
  std::unique_ptr<storage::Store> store;
  webhooks::RealClock clock;
  std::unique_ptr<webhooks::BeastPoster> webhook_poster;
  std::unique_ptr<webhooks::Webhooks> webhooks;  // outlives the committer, which calls it
  std::unique_ptr<replication::Replicator> replicator;  // likewise
  std::unique_ptr<Hub> hub;
  net::io_context ioc;
  // The acceptor, its retry timer and their handlers (StartHttpSession's
  // cap check among them) run here, one at a time; Stop closes them here.
  net::strand<net::io_context::executor_type> accept_strand;
  tcp::acceptor acceptor;
  net::steady_timer accept_timer;
  ThrottledWarning accept_failed{std::chrono::seconds(10)};
  std::shared_ptr<ServerContext> ctx;
  std::unique_ptr<storage::Committer> committer;
  // Destroyed before the io_context and the store: its destructor waits for
  // a backup being written, which reads the store and posts its answer.
  std::unique_ptr<Backups> backups;

  // Stopping (Server::Stop, on the io_context): stops the network once no
  // connection is left or the deadline passes.
  void StopWhenClosed();
  net::steady_timer stop_timer;
  std::chrono::steady_clock::time_point deadline;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() = default;

namespace {
// Where to listen: `host` an IP address, or a name, resolved: its first
// IPv4 address if it has one ("localhost" is 127.0.0.1 even where ::1 comes
// first), else its first.
Result<tcp::endpoint> ListenEndpoint(net::io_context& ioc, const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(address, port);
  tcp::resolver resolver(ioc);
  auto found = resolver.resolve(host, std::to_string(port), ec);
  if (ec || found.empty())
    return Status::InvalidArgument(
        "cannot listen on " + host + ": not an IP address, and " +
        (ec ? "resolving it failed: " + ec.message() : std::string("it resolves to no address")));
  for (const auto& entry : found)
    if (entry.endpoint().address().is_v4()) return entry.endpoint();
  return found.begin()->endpoint();
}

// This node's stored name: made once, then kept in the store. Its hex is
// the node ID when --node-id is not given. Never an actor that writes:
// a copy of the store, or the store set back to a backup, would make
// changes whose (actor, seq) the node already made with other content.
Result<automerge::ActorId> StoredNodeName(storage::Store& store) {
  auto stored = store.Get(storage::kActorKey);
  if (stored.ok()) return automerge::ActorId(stored->begin(), stored->end());
  if (stored.status().code() != Status::Code::kNotFound) return stored.status();
  automerge::ActorId name = RandomBytes(16);
  storage::WriteBatch batch;
  batch.Put(std::string(storage::kActorKey), std::string(AsChars(name)));
  if (Status s = store.Write(batch); !s.ok()) return s;
  return name;
}
}  // namespace

Status Server::Start() {
  Impl& m = *impl_;
  const ServerOptions& o = m.ctx->options;
  // The listener first: a bad address or a port in use changes nothing
  // (no data dir, store or NATS consumer made for a server that cannot run).
  auto endpoint = ListenEndpoint(m.ioc, o.host, o.port);
  if (!endpoint.ok()) return endpoint.status();
  boost::system::error_code ec;
  m.acceptor.open(endpoint->protocol(), ec);
  if (!ec) m.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(*endpoint, ec);
  if (!ec) m.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::IoError("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " +
                           ec.message());
  replication::Options ro;
  if (!o.nats_url.empty()) {
    ro.node_id = o.node_id;  // empty: the node's stored name
    ro.region = o.region;
    ro.nats_url = o.nats_url;
    ro.replicas = o.nats_replicas;
    ro.anti_entropy_interval = o.anti_entropy_interval;
    if (Status s = replication::CheckOptions(ro); !s.ok()) return s.WithContext("replication");
  }

  // The backup dir before the data dir: one that cannot be made leaves none.
  if (!o.backup_dir.empty()) {
    auto backups = Backups::Open(o.backup_dir, o.backup_keep);
    if (!backups.ok()) return backups.status();
    m.backups = std::move(*backups);
    m.ctx->backups = m.backups.get();
  }
  std::error_code fs_ec;
  std::filesystem::create_directories(o.data_dir, fs_ec);
  if (fs_ec) return Status::IoError("cannot create data dir " + o.data_dir + ": " + fs_ec.message());
  auto store = storage::OpenRocksDbStore(o.data_dir, o.wal_recovery);
  if (!store.ok()) return store.status();
  m.store = std::move(*store);
  auto name = StoredNodeName(*m.store);
  if (!name.ok()) return name.status().WithContext("node name");
  if (!o.webhook_url.empty()) {
    auto poster = webhooks::BeastPoster::Create();
    if (!poster.ok()) return poster.status().WithContext("webhooks");
    m.webhook_poster = std::move(*poster);
    webhooks::Options wo;
    wo.url = o.webhook_url;
    wo.secret = o.webhook_secret;
    wo.max_attempts = o.webhook_max_attempts;
    wo.backoff_base = o.webhook_backoff_base;
    wo.attempt_timeout = o.webhook_timeout;
    auto hooks = webhooks::Webhooks::Open(std::move(wo), *m.store, *m.webhook_poster, m.clock);
    if (!hooks.ok()) return hooks.status().WithContext("webhooks");
    m.webhooks = std::move(*hooks);
    m.webhooks->Start();
    m.ctx->webhooks = m.webhooks.get();
  } else if (auto left = webhooks::FindLeftovers(*m.store); !left.ok()) {
    LogWarn("webhooks: cannot tell whether the store holds undelivered events: " +
            left.status().ToString());
  } else if (left->pending || left->dead) {
    LogWarn(std::string("webhooks: the store holds ") +
            (left->pending ? "events not yet delivered" : "") +
            (left->pending && left->dead ? " and " : "") + (left->dead ? "dead letters" : "") +
            " from a run with --webhook-url; without it they wait, unsent, until a start with it");
  }
  if (!o.nats_url.empty()) {
    if (ro.node_id.empty()) ro.node_id = ToHex(*name);
    auto r = replication::OpenNatsReplicator(std::move(ro), *m.store);
    if (!r.ok()) return r.status().WithContext("replication");
    m.replicator = std::move(*r);
    m.ctx->replicator = m.replicator.get();
  }
  m.committer = std::make_unique<storage::Committer>(*m.store);
  const automerge::ActorId run_actor = RandomBytes(16);
  m.hub = std::make_unique<Hub>(m.ioc.get_executor(), *m.store, *m.committer, run_actor,
                                m.webhooks.get(), m.replicator.get(), o.warm_workspaces);
  m.ctx->hub = m.hub.get();
  m.ctx->store = m.store.get();
  if (m.replicator) m.replicator->Start(*m.hub);

  m.ctx->max_sockets = MaxSockets(o.max_connections);
  m.ctx->max_http_connections = std::min(kMaxHttpConnections, m.ctx->max_sockets);
  // An IPv6 address in brackets, as URLs write it.
  std::string where = endpoint->address().is_v6() ? "[" + endpoint->address().to_string() + "]"
                                                  : endpoint->address().to_string();
  where += ":" + std::to_string(port());
  LogInfo(
      "etherply listening on http://" + where + " (WebSocket: ws://" + where +
      "/v1/sync/{workspace}); data in " + std::filesystem::absolute(o.data_dir).string() +
      "; run actor " + ToHex(run_actor) + (o.webhook_url.empty() ? "" : "; webhooks on") +
      (o.nats_url.empty() ? "" : "; replicating over " + replication::RedactedUrls(o.nats_url)));
  return Status::Ok();
}

uint16_t Server::port() const {
  boost::system::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void Server::WaitForSecondSignal() {
  impl_->signaling.signals.async_wait([this, &m = *impl_](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) return WaitForSecondSignal();
    LogInfo("signal " + std::to_string(sig) + " again: stopping now");
    {
      std::lock_guard lock(m.teardown_mu);
      if (!m.tearing_down) m.ioc.stop();
    }
    // The network threads return once their handlers do, and the teardown
    // writes what is queued: should either hang, the process ends anyway.
    // Acknowledged ops are on disk; what was not acknowledged is lost, as
    // a client of a server that went away expects.
    std::thread([] {
      std::this_thread::sleep_for(kForcedExitAfter);
      LogError("still stopping " + std::to_string(kForcedExitAfter.count()) +
               " s after the second signal (a network thread or the disk is busy): exiting "
               "now; acknowledged ops are on disk");
      std::_Exit(1);
    }).detach();
  });
}

void Server::Run() {
  Impl& m = *impl_;
  m.signaling.signals.async_wait([this, &m](boost::system::error_code ec, int sig) {
    if (ec) return;
    LogInfo("signal " + std::to_string(sig) + ": stopping");
    {
      std::lock_guard lock(m.teardown_mu);
      if (!m.tearing_down) Stop();  // else stopped already
    }
    // A second signal stops at once, without waiting for the clients; not
    // a second SIGHUP, which a closing terminal may send twice (to the
    // shell's jobs, and to the foreground group).
    WaitForSecondSignal();
  });
  m.signaling.thread = std::thread([&m] { m.signaling.ioc.run(); });
  m.Accept();
  std::vector<std::thread> threads;
  try {
    for (int i = 1; i < m.ctx->options.threads; ++i) threads.emplace_back([&m] { m.ioc.run(); });
  } catch (const std::system_error& e) {  // the system's thread limit
    LogError("could start only " + std::to_string(threads.size() + 1) + " of " +
             std::to_string(m.ctx->options.threads) + " network threads (" + e.what() +
             "); serving with those");
  }
  m.ioc.run();
  for (auto& t : threads) t.join();
}

void Server::Stop() {
  net::post(impl_->ioc, [this] {
    Impl& m = *impl_;
    if (m.ctx->stopping.exchange(true)) return;  // a signal and a call, say
    net::post(m.accept_strand, [&m] {
      boost::system::error_code ec;
      m.acceptor.close(ec);
      m.accept_timer.cancel();
    });
    // Clients are told the server is going away (1001), so that they
    // reconnect at once, and given kCloseGrace to answer before the
    // network stops.
    if (m.hub) m.hub->CloseClients(1001, "the server is shutting down");
    m.deadline = std::chrono::steady_clock::now() + kCloseGrace;
    m.StopWhenClosed();
  });
}

void Server::Impl::StopWhenClosed() {
  if (ctx->connections.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
    ioc.stop();
    return;
  }
  stop_timer.expires_after(std::chrono::milliseconds(10));
  stop_timer.async_wait([this](boost::system::error_code) { StopWhenClosed(); });
}

}  // namespace etherply::server
