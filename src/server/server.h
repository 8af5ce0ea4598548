// The EtherPly server: listener, HTTP routes, WebSocket sessions, workspaces.
//
// Run() serves until Stop() is called from any thread or a signal arrives.
// Threads: `threads` run one io_context; each connection has its own strand,
// each workspace another (see workspace.h); one more thread writes to the
// store (storage/committer.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "storage/store.h"

namespace etherply::server {

struct ServerOptions {
  // Where to listen. Default: loopback only, port 8080.
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  // Where RocksDB keeps the data.
  std::string data_dir = "./data";
  // A write-ahead log damaged before its end: refuse to start (kStrict), or
  // start without every write after the damage (doc/storage.md).
  storage::WalRecovery wal_recovery = storage::WalRecovery::kStrict;
  // Where POST /v1/admin/backups writes copies of the store (doc/storage.md
  // "Backups"), made at start if missing. Empty: no backups.
  std::string backup_dir;
  // Backups kept in backup_dir: after each, the oldest beyond it are
  // removed. 0: all are kept.
  size_t backup_keep = 0;
  // The HS256 secret, at least 32 bytes.
  Bytes jwt_secret;
  // The audience a token must name in `aud`; empty: tokens naming any
  // audience are refused (auth::VerifyToken).
  std::string jwt_audience;

  // Largest WebSocket message a client may send; larger ones close the
  // connection with 1009 (message too big).
  size_t max_message_bytes = 1 << 20;
  // Bytes queued for one client before it is closed with 1008: a client that
  // does not read cannot make the server hold unbounded memory, and the
  // others are not slowed.
  size_t max_send_queue_bytes = 16 << 20;
  // Bytes of one client's messages that may wait for their answer: ops to
  // be durable, refused ones for their error to follow the answers ahead of
  // it (each counts its message and 256 bytes of bookkeeping); at the limit
  // the server stops reading the client's socket until some are answered,
  // so a client that sends faster than the disk writes is slowed by TCP,
  // not held in memory. A message alone is always read, whatever its size.
  size_t max_inflight_op_bytes = 1 << 20;
  // A connection that sends nothing for this long is closed. The server
  // pings quiet connections every ping_interval (and at least every half
  // idle_timeout), so a live client's pongs keep it open.
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds ping_interval{20};
  // Time allowed for the HTTP request and the WebSocket handshake.
  std::chrono::seconds handshake_timeout{30};
  // WebSocket connections at once; more get HTTP 503.
  size_t max_connections = 10000;
  // Threads running network and workspace work.
  int threads = 2;
  // Workspaces kept loaded after their last client leaves (the most
  // recently used): HTTP reads and changes from other nodes then find them
  // in memory. More costs memory (a document each); 0 unloads at once.
  size_t warm_workspaces = 64;

  // Webhooks (doc/webhooks.md): a doc.updated event per change, POSTed to
  // webhook_url and signed with webhook_secret ("whsec_" + base64). Empty
  // url: no webhooks.
  std::string webhook_url;
  std::string webhook_secret;
  // Attempts per event before it becomes a dead letter, the first included,
  // and the base of the exponential backoff between them (full jitter, cap
  // 1 h). The defaults retry for about a day.
  int webhook_max_attempts = 36;
  std::chrono::seconds webhook_backoff_base{2};
  // Time allowed for one delivery attempt.
  std::chrono::seconds webhook_timeout{10};

  // Replication (doc/replication.md): with a NATS url (comma-separated for
  // a cluster), the node publishes its changes to JetStream and applies the
  // other nodes'. Empty: the node runs alone.
  std::string nats_url;
  // The node's name among the others; empty: its actor ID in hex.
  std::string node_id;
  // A label shown in /v1/status.
  std::string region;
  // Replicas of the stream when this node creates it (3 on a NATS cluster).
  int nats_replicas = 1;
  // Time between anti-entropy passes (heads compared with every peer).
  std::chrono::milliseconds anti_entropy_interval{30'000};
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  // Opens the store and binds the port. Fails with a clear message (port in
  // use, data dir not writable, ...).
  Status Start();
  // The port bound (useful with port 0).
  uint16_t port() const;
  // Serves until Stop() or SIGINT, SIGTERM or SIGHUP (unless SIGHUP was
  // ignored when the server was made: nohup).
  void Run();
  void Stop();

 private:
  void WaitForSecondSignal();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace etherply::server
