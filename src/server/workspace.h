// A workspace: one Automerge document, the clients connected to it, and the
// path from an op to a durable change that every client sees.
//
// The order of an op (doc/design.md, "Durable before visible"):
//   1. on the workspace strand: turn the op into one change (a transaction
//      on the document) and submit its record to the group committer;
//   2. the committer writes it with others in one synced batch;
//   3. back on the strand, in submission order: broadcast to every client.
// A client that joins while ops are still in flight gets its init message
// after they are durable, so it never sees a change that could be lost.
// If a write fails, its sender and every op queued behind it get error
// 500, nothing of theirs is broadcast (what was durable ahead of it is), and
// once no write is in flight the document is reloaded from the store, so
// memory again equals disk (retried by the next request if the store still
// fails; joiners waiting are then closed). Reads and sync messages are answered from the document
// as it is when they arrive, once all it holds is durable, like a joiner's
// init: nothing leaves the server that a failed write could take back.
//
// Thread-safety: every public method may be called from any thread; the
// work runs on the workspace's strand. Clients are held weakly.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/jwt.h"
#include "automerge/document.h"
#include "replication/replicator.h"
#include "server/protocol.h"
#include "storage/committer.h"
#include "storage/store.h"
#include "webhooks/outbox.h"

namespace etherply::server {

// The workspace's view of a connected client.
class Client {
 public:
  virtual ~Client() = default;
  // Queues a message for the client. Never blocks; may close a slow client.
  virtual void Send(std::shared_ptr<const std::string> message) = 0;
  // Queues each message in order, as Send does: one call (one hand-over to
  // the client's strand) for many. The batch is shared by every client.
  using Batch = std::shared_ptr<const std::vector<std::shared_ptr<const std::string>>>;
  virtual void SendBatch(Batch messages) {
    for (const auto& m : *messages) Send(m);
  }
  // Closes the connection with a WebSocket close code.
  virtual void Close(uint16_t code, std::string_view reason) = 0;
};

class Hub;

class Workspace : public std::enable_shared_from_this<Workspace> {
 public:
  Workspace(std::string id, Hub& hub, uint64_t stream);
  ~Workspace();

  const std::string& id() const { return id_; }

  // Adds the client; it receives its init message, then every op.
  void Join(std::shared_ptr<Client> client);
  void Leave(const Client* client);
  // Closes every joined client's connection with `code` (a server going
  // away: 1001).
  void CloseClients(uint16_t code, std::string reason);
  // Applies an op from `client` with the rights of `claims`. `settled` runs
  // on the workspace's strand once the op is durable and its broadcast
  // handed to the clients, or once it is refused (the client told why).
  void SubmitOp(std::shared_ptr<Client> client, const auth::Claims& claims, OpMessage op,
                std::function<void()> settled);
  // Sends `message`, an answer to something `client` sent (an error), to
  // that client alone, after the answers to what it sent before (the
  // broadcasts of its ops in flight) and after its init, which is always a
  // client's first message (doc/protocol.md). `settled` runs on the
  // workspace's strand once it is handed over.
  void Reply(std::shared_ptr<Client> client, std::shared_ptr<const std::string> message,
             std::function<void()> settled);
  // The durable changes as one Automerge file (concatenated change chunks).
  void Export(std::function<void(Result<std::string>)> done);

  // Runs `query` on the document (loaded if needed) on the workspace's
  // strand and hands its result to `done` there. Reads only.
  using Query = std::function<Result<std::string>(const automerge::Document&)>;
  void Read(Query query, std::function<void(Result<std::string>)> done);

  // A change made by `edit` in one transaction as `claims.sub`, taking the
  // path of an op: durable, then its broadcasts (the messages `edit`
  // returns) to every client, then `done` with the new heads. `edit` that
  // records nothing makes no change (done gets the heads as they are).
  struct EditOutput {
    std::vector<std::string> broadcasts;  // op messages for every client
    // (root key, JSON value; nullopt: deleted) for each key the change
    // touches: one webhook event each.
    std::vector<std::pair<std::string, std::optional<std::string>>> keys;
    // The op's time, Unix microseconds; the change's time is it in seconds.
    int64_t timestamp = 0;
  };
  using Edit =
      std::function<Result<EditOutput>(automerge::Transaction&, const automerge::Document&)>;
  struct EditResult {
    std::optional<automerge::ChangeHash> change;
    std::vector<automerge::ChangeHash> heads;
  };
  void Mutate(const auth::Claims& claims, Edit edit, std::function<void(Result<EditResult>)> done);

  // Changes made on another node (replication::Sink::ApplyRemote): applied,
  // durable, then broadcast as op messages with the new value of each root
  // key they touched. No webhook events: those fire on the node where a
  // change was made.
  void ApplyRemote(std::vector<automerge::StoredChange> changes, replication::Timestamps timestamps,
                   std::function<void(Result<bool>)> done);
  // One step of the sync protocol with a peer (replication::Sink::Sync).
  void Sync(std::shared_ptr<automerge::SyncState> state, std::optional<Bytes> message,
            std::function<void(Result<std::optional<Bytes>>)> done);

 private:
  // An edit waiting to be durable, or a client waiting for its init.
  struct Pending {
    std::vector<std::shared_ptr<const std::string>> broadcasts;
    std::function<void(const Status&)> on_done;  // edits: told the outcome
    std::shared_ptr<Client> joiner;              // joins: gets broadcasts[0] (its init)
    // Joins waiting for a reload (not done): answers to what the joiner
    // sent, to follow its init.
    std::vector<std::shared_ptr<const std::string>> replies;
    size_t changes = 0;  // changes it writes
    // Only waits its turn (InTurn): on_done runs after the broadcasts
    // ahead of it and before those behind it.
    bool in_turn = false;
    bool done = false;
    Status status;
  };

  Status EnsureLoaded();
  Status Load();
  bool broken() const { return failed_from_ != kNoFailure; }
  // After a failed write, once what was durable ahead of it is handed over
  // and no write is in flight: reloads the document; on success serves the
  // joiners waiting from it (closes them if it fails) and fails the answers
  // computed before.
  void RecoverIfIdle();
  // Empties pending_ (none of it may await a write) and returns what it held.
  std::deque<Pending> TakePending();
  // Runs `then` once every entry now in pending_ is handed over, before
  // anything queued behind it: with Ok, or with an error if a write among
  // them failed.
  void InTurn(std::function<void(const Status&)> then);
  // InTurn for an answer taken from the document: if a write has failed,
  // at once with the error (the document may hold what failed until the
  // reload).
  void AfterDurable(std::function<void(const Status&)> then);
  // The sync message for `state` from the document now, to `done` once
  // durable (AfterDurable).
  void ReplySync(automerge::SyncState& state,
                 std::function<void(Result<std::optional<Bytes>>)> done);
  // Mutate on the strand, the document loaded. `done` runs in the edit's
  // turn: once durable and broadcast, or refused after what is ahead of it.
  void DoMutate(const auth::Claims& claims, const Edit& edit,
                std::function<void(Result<EditResult>)> done);
  // Writes the document's changes from index `from` on, with the heads
  // record and what `batch` holds already, as `p`; `committed` runs on the
  // thread that writes the group (the committer's writer thread, or this
  // network thread when it leads) with the outcome.
  void Write(size_t from, storage::WriteBatch batch, Pending p,
             std::function<void(const Status&)> committed);
  // Stores and broadcasts the changes that the document applied from index
  // `from` on, which came from another node; `done` runs once durable.
  void AdmitRemote(size_t from, const replication::Timestamps& timestamps,
                   std::function<void(const Status&)> done);
  void OnWritten(uint64_t seqno, Status status);
  // Queues one Flush on strand_ behind what is queued there now, unless one
  // is queued already.
  void PostFlush();
  // Hands what is durable, in order, to the clients: joiners their init,
  // every client the broadcasts of consecutive edits as one batch; then
  // tells those edits' submitters.
  void Flush();
  // Whether broadcasts queued now would reach anyone: a client is connected,
  // or one is joining ahead of them.
  bool Watched() const;
  // Reply, on strand_: queued behind pending_, then SendOrHold.
  void SendReply(const std::shared_ptr<Client>& client, std::shared_ptr<const std::string> message,
                 std::function<void()> settled);
  // Sends now, or holds the message for after the client's init if that
  // waits for a reload.
  void SendOrHold(const std::shared_ptr<Client>& client,
                  std::shared_ptr<const std::string> message);
  // Tells a joiner the document cannot be loaded, and closes it (1011).
  void RefuseJoin(const std::shared_ptr<Client>& client);

  // Constant after construction.
  const std::string id_;
  Hub& hub_;
  const uint64_t stream_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;

  // Used only on strand_.
  std::unique_ptr<automerge::Document> doc_;
  size_t durable_changes_ = 0;
  std::unordered_map<const Client*, std::weak_ptr<Client>> clients_;
  std::deque<Pending> pending_;
  uint64_t pending_base_ = 0;  // sequence number of pending_.front()
  // The sequence number of the first failed write: it and every entry after
  // it fail. kNoFailure until a write fails; again after the reload.
  static constexpr uint64_t kNoFailure = UINT64_MAX;
  uint64_t failed_from_ = kNoFailure;
  bool flush_posted_ = false;  // a Flush is queued on strand_ behind OnWritten calls
};

// All workspaces in memory, by ID. A workspace is loaded on first use and
// released when its last client and its last in-flight op are gone and it
// is not among the `warm` most recently used ones: HTTP reads and changes
// from other nodes then find it loaded (and a change from another node that
// waits for its deps keeps waiting in memory).
class Hub final : public replication::Sink {
 public:
  // run_actor: this run's own random actor, from which every token
  // subject's actor is made (ActorFor). webhooks, replicator: null when not
  // configured.
  Hub(boost::asio::any_io_executor executor, storage::Store& store, storage::Committer& committer,
      automerge::ActorId run_actor, webhooks::Webhooks* webhooks,
      replication::Replicator* replicator, size_t warm = 64);

  std::shared_ptr<Workspace> Get(const std::string& id);

  // Lets go of the warm workspaces (before the io_context goes).
  void ReleaseWarm();
  // Workspace::CloseClients on every workspace in memory.
  void CloseClients(uint16_t code, const std::string& reason);
  // How many workspaces are in memory.
  size_t loaded() const;

  // replication::Sink: the workspace's ApplyRemote and Sync.
  void ApplyRemote(const std::string& workspace, std::vector<automerge::StoredChange> changes,
                   replication::Timestamps timestamps,
                   std::function<void(Result<bool>)> done) override;
  void Sync(const std::string& workspace, std::shared_ptr<automerge::SyncState> state,
            std::optional<Bytes> message,
            std::function<void(Result<std::optional<Bytes>>)> done) override;
  uint64_t dropped() const override { return dropped_; }

  // The Automerge actor that writes a token subject's ops in this run of
  // this node: the first 16 bytes of SHA-256(run actor ‖ sub). One actor per
  // (run, sub) keeps each actor's author fixed, as Automerge requires, and
  // makes the history say who did what. A new one each run: no store, be it
  // a copy or an old backup, can hold the actor, so no two changes share
  // (actor, seq) (doc/design.md "Actors and authors").
  automerge::ActorId ActorFor(std::string_view sub) const;

 private:
  friend class Workspace;
  void Forget(const std::string& id);

  // Constant after construction.
  boost::asio::any_io_executor executor_;
  storage::Store& store_;
  storage::Committer& committer_;
  const automerge::ActorId run_actor_;
  webhooks::Webhooks* const webhooks_;
  replication::Replicator* const replicator_;
  std::atomic<uint64_t> dropped_{0};  // dropped(): counted by the workspaces

  mutable std::mutex mu_;
  const size_t warm_;

  using Recent = std::list<std::shared_ptr<Workspace>>;  // most recent first
  struct Entry {
    std::weak_ptr<Workspace> workspace;
    std::optional<Recent::iterator> recent;  // its place in recent_, if warm
  };
  std::unordered_map<std::string, Entry> workspaces_;  // guarded by mu_
  uint64_t next_stream_ = 1;                           // guarded by mu_
  size_t unloaded_since_trim_ = 0;                     // guarded by mu_
  // Guarded by mu_. Last: the workspaces it holds call Forget as it goes.
  Recent recent_;
};

}  // namespace etherply::server
