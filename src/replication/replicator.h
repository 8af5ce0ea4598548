// Replication of workspaces between EtherPly nodes over NATS JetStream.
//
// Every node publishes the changes made on it and applies the changes made
// on the others (doc/replication.md has the design, guarantees and limits):
//
//   1. On the op path, Stage adds the change to a durable outbox record in
//      the op's own write batch (r/o/<seq>): no I/O, no waiting. The batch
//      is written; Committed reports the outcome.
//   2. The publisher thread publishes durable outbox records to JetStream,
//      subject etherply.changes.<node>, each workspace's packed into
//      messages whose IDs name their changes (message.h; JetStream drops
//      duplicates), and deletes records once JetStream acknowledged the
//      messages holding them. While NATS is away the records wait on disk.
//   3. The consumer thread pulls the other nodes' changes through this
//      node's durable consumer and hands them to the Sink, which applies
//      them idempotently, stores them durably and broadcasts them; a message
//      is acknowledged only after that.
//   4. Anti-entropy: every interval the node announces itself, compares the
//      heads of all its workspaces with each peer's (one request per peer
//      and batch of workspaces), and runs the Automerge sync protocol with
//      the peer for each workspace whose heads differ, over NATS
//      request/reply. This repairs whatever the stream lost.
//
// Thread-safety: every method may be called from any thread. Stage and
// Committed never block on I/O or the network.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "automerge/change.h"
#include "base/status.h"
#include "storage/store.h"

namespace etherply::automerge {
struct SyncState;
}  // namespace etherply::automerge

namespace etherply::replication {

// Op times of changes, by hash.
using Timestamps = std::unordered_map<automerge::ChangeHash, int64_t, automerge::ChangeHashHash>;

// What replication asks of the server (implemented by server::Hub). Both
// methods may be called from any thread; `done` runs on a server thread.
class Sink {
 public:
  virtual ~Sink() = default;
  // Applies changes made on another node to `workspace` (created if new):
  // known changes are ignored, a change whose deps are missing waits for
  // them; new ones are stored durably, then broadcast to the workspace's
  // clients. `done` runs once they are durable, or with the error; its
  // value tells whether changes of the workspace still wait for deps (the
  // replicator then fetches them from its peers at once).
  // `timestamps` gives, by change hash, the op's time (Unix microseconds)
  // for the broadcasts; a change without one shows its commit time.
  virtual void ApplyRemote(const std::string& workspace,
                           std::vector<automerge::StoredChange> changes, Timestamps timestamps,
                           std::function<void(Result<bool>)> done) = 0;
  // One step of the Automerge sync protocol on `workspace` with a peer
  // whose state is `state`: receives `message` if set (its changes taken
  // like ApplyRemote's, durable before `done`), then generates the next
  // message for the peer (nullopt: nothing to say).
  virtual void Sync(const std::string& workspace, std::shared_ptr<automerge::SyncState> state,
                    std::optional<Bytes> message,
                    std::function<void(Result<std::optional<Bytes>>)> done) = 0;
  // How many changes, taken by ApplyRemote or Sync and queued for their
  // deps, were dropped once those arrived because they could not apply
  // (malformed). Thread-safe.
  virtual uint64_t dropped() const = 0;
};

struct Options {
  // This node's name in subjects and consumer names: [A-Za-z0-9_-]{1,64}.
  std::string node_id;
  // A label for status output.
  std::string region;
  // NATS servers, comma-separated (nats://host:port,...). The node keeps
  // trying to connect while none answers.
  std::string nats_url;
  // Replicas of the JetStream stream (1 for a single NATS server, 3 for a
  // cluster). Used when the node creates the stream.
  int replicas = 1;
  // Time between anti-entropy passes (and node announcements). Shorter
  // repairs lost messages sooner at the cost of a heads comparison per
  // peer per pass.
  std::chrono::milliseconds anti_entropy_interval{30'000};
  // Time allowed for a JetStream publish acknowledgment or a request to a
  // peer.
  std::chrono::milliseconds request_timeout{5'000};
};

class Replicator {
 public:
  virtual ~Replicator() = default;

  // Starts the threads; the Sink must outlive Stop().
  virtual void Start(Sink& sink) = 0;
  // Stops the threads; outbox records not yet published stay on disk and
  // are published after the next start.
  virtual void Stop() = 0;

  // On the op path: adds `change` (of `workspace`, made at `timestamp`)
  // to the outbox in `batch`, returning a ticket for Committed.
  virtual uint64_t Stage(std::string_view workspace, const automerge::StoredChange& change,
                         int64_t timestamp, storage::WriteBatch& batch) = 0;
  // The outcome of the batch that held the ticket's record.
  virtual void Committed(uint64_t ticket, const Status& status) = 0;

  // The replication state, read at one instant.
  struct Report {
    // Whether the node is connected to NATS with its stream consumer set
    // up, so that its changes reach the other nodes and theirs reach it,
    // and no other node announces its node ID (the two would share the
    // consumer).
    bool replicating = false;
    // The state as a JSON object (doc/replication.md): connection, publish
    // backlog, consumer lag, peers, anti-entropy.
    std::string json;
  };
  virtual Report State() const = 0;
};

// The options that need no store, checked before the server makes
// anything: each NATS URL in the comma-separated list is
// [nats://|tls://][user[:password]@]host[:port] with a port from 1 to 65535
// (none empty); replicas 1 to 5 (JetStream's range); a positive interval;
// the node id, unless empty (the caller then uses the node's actor ID).
Status CheckOptions(const Options& options);

// A comma-separated NATS URL list as the log shows it: each
// user:password@ written ***@.
std::string RedactedUrls(std::string_view urls);

// Checks the options and reads the outbox back from the store; does not
// connect yet (Start does, and keeps retrying).
Result<std::unique_ptr<Replicator>> OpenNatsReplicator(Options options, storage::Store& store);

// Whether `id` can name a node ([A-Za-z0-9_-]{1,64}).
bool IsValidNodeId(std::string_view id);

}  // namespace etherply::replication
