#include "server/workspace.h"

#include <malloc.h>

#include <boost/asio/defer.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <map>

#include "automerge/change.h"
#include "automerge/sync.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/workspace_id.h"
#include "server/history.h"
#include "storage/layout.h"

namespace etherply::server {

namespace net = boost::asio;

namespace {
int64_t NowMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

// A write of the workspace failed: what was in flight behind it is refused
// with NotApplied, what arrives before the reload with Reloading.
Status NotApplied() {
  return Status::IoError("storage failed; nothing in flight was applied, retry");
}
Status Reloading() {
  return Status::IoError("storage failed; the workspace is being reloaded, retry");
}

std::string HeadsRecord(const automerge::Document& doc) {
  std::string out;
  for (const auto& h : doc.heads()) out += AsChars(h);
  return out;
}
}  // namespace

Workspace::Workspace(std::string id, Hub& hub, uint64_t stream)
    : id_(std::move(id)), hub_(hub), stream_(stream), strand_(net::make_strand(hub.executor_)) {}

Workspace::~Workspace() { hub_.Forget(id_); }

Status Workspace::Load() {
  // Applied in batches as the records are read (in the order they were
  // applied): a large workspace is never held whole as records and as decoded
  // changes beside its document (a cold load of 1M changes peaked at twice
  // the document's memory).
  constexpr size_t kBatch = 4096;
  auto doc = std::make_unique<automerge::Document>();
  std::vector<automerge::StoredChange> batch;
  auto apply = [&]() -> Status {
    Status s = doc->ApplyChanges(std::move(batch));
    batch.clear();
    return s.ok() ? s : s.WithContext("stored changes of " + id_);
  };
  Status read = storage::ForEachChange(hub_.store_, id_, [&](std::string_view record) -> Status {
    auto decoded = automerge::DecodeChangeChunks(AsBytes(record));
    if (!decoded.ok()) return decoded.status().WithContext("stored change of " + id_);
    for (auto& c : *decoded) batch.push_back(std::move(c));
    return batch.size() >= kBatch ? apply() : Status::Ok();
  });
  if (read.ok() && !batch.empty()) read = apply();
  if (!read.ok()) return read;
  if (doc->queued() > 0) return Status::Corruption("stored changes of " + id_ + " miss deps");
  // The heads record lists the workspace for replication; a workspace
  // stored before it existed gets it now.
  if (!doc->changes().empty()) {
    std::string heads = HeadsRecord(*doc);
    auto stored = hub_.store_.Get(storage::HeadsKey(id_));
    if (!stored.ok() || *stored != heads) {
      storage::WriteBatch batch;
      batch.Put(storage::HeadsKey(id_), std::move(heads));
      if (Status s = hub_.store_.Write(batch); !s.ok()) return s.WithContext("heads of " + id_);
    }
  }
  durable_changes_ = doc->changes().size();
  // Another node's change that waited for its deps and then proved bad.
  doc->OnDropped([this](const Status& why) {
    LogError("workspace " + id_ + ": " + why.ToString());
    ++hub_.dropped_;
  });
  doc_ = std::move(doc);
  return Status::Ok();
}

Status Workspace::EnsureLoaded() {
  if (broken()) {
    RecoverIfIdle();
    if (!doc_) return Reloading();
  }
  if (doc_) return Status::Ok();
  Status s = Load();
  if (!s.ok()) LogError("workspace " + id_ + ": load failed: " + s.ToString());
  return s;
}

void Workspace::Reply(std::shared_ptr<Client> client, std::shared_ptr<const std::string> message,
                      std::function<void()> settled) {
  net::post(strand_, [self = shared_from_this(), client = std::move(client),
                      message = std::move(message), settled = std::move(settled)]() mutable {
    self->SendReply(client, std::move(message), std::move(settled));
  });
}

void Workspace::SendReply(const std::shared_ptr<Client>& client,
                          std::shared_ptr<const std::string> message,
                          std::function<void()> settled) {
  auto send = [self = shared_from_this(), client, message = std::move(message),
               settled = std::move(settled)](const Status&) {
    self->SendOrHold(client, message);
    if (settled) settled();
  };
  // Behind what is queued, so that a client's ops are answered (their
  // broadcast, or an error) in the order it sent them, and after its init.
  InTurn(std::move(send));
}

void Workspace::SendOrHold(const std::shared_ptr<Client>& client,
                           std::shared_ptr<const std::string> message) {
  // A joiner whose init waits for the reload after a failed write (Flush)
  // gets the answers to what it sent after that init.
  if (!clients_.count(client.get()))
    for (Pending& p : pending_)
      if (p.joiner == client && !p.done) return p.replies.push_back(std::move(message));
  client->Send(std::move(message));
}

void Workspace::RefuseJoin(const std::shared_ptr<Client>& client) {
  client->Send(ErrorMessage(500, "the workspace cannot be loaded"));
  client->Close(1011, "workspace cannot be loaded");
}

void Workspace::Join(std::shared_ptr<Client> client) {
  net::post(strand_, [self = shared_from_this(), client = std::move(client)] {
    if (Status s = self->EnsureLoaded(); !s.ok()) {
      return self->RefuseJoin(client);
    }
    // The init reflects every change applied so far; it is sent once those
    // are durable (Flush), and the client receives ops from then on.
    Pending join;
    join.broadcasts.push_back(std::make_shared<const std::string>(InitMessage(*self->doc_)));
    join.joiner = client;
    join.done = true;
    self->pending_.push_back(std::move(join));
    self->Flush();
  });
}

void Workspace::Leave(const Client* client) {
  net::post(strand_, [self = shared_from_this(), client] { self->clients_.erase(client); });
}

void Workspace::CloseClients(uint16_t code, std::string reason) {
  net::post(strand_, [self = shared_from_this(), code, reason = std::move(reason)] {
    for (const auto& [raw, weak] : self->clients_)
      if (auto client = weak.lock()) client->Close(code, reason);
  });
}

void Workspace::SubmitOp(std::shared_ptr<Client> client, const auth::Claims& claims, OpMessage op,
                         std::function<void()> settled) {
  net::post(strand_, [self = shared_from_this(), client = std::move(client), claims,
                      op = std::move(op), settled = std::move(settled)]() mutable {
    if (!claims.scopes.Has(auth::Scope::kWrite)) {
      return self->SendReply(client, ErrorMessage(403, "this token may read but not write"),
                             std::move(settled));
    }
    int64_t timestamp = op.timestamp ? *op.timestamp : NowMicros();
    Edit edit = [&](automerge::Transaction& tx, const automerge::Document&) -> Result<EditOutput> {
      // Recorded even if the key shows this value already: every op the
      // server accepts is a change, with its event and its history entry.
      if (Status s = PutJson(tx, automerge::kRoot, op.key, op.value, automerge::PutMode::kAlways);
          !s.ok())
        return s;
      std::string value;
      AppendJson(value, op.value);
      return EditOutput{{OpBroadcast(op, timestamp)}, {{op.key, std::move(value)}}, timestamp};
    };
    // DoMutate answers in turn: the error goes out at once.
    std::weak_ptr<Client> sender = client;
    self->DoMutate(claims, edit,
                   [self, sender, settled = std::move(settled)](Result<EditResult> r) {
                     if (auto c = sender.lock(); c && !r.ok()) {
                       int code = r.status().code() == Status::Code::kInvalidArgument ? 400 : 500;
                       self->SendOrHold(c, ErrorMessage(code, r.status().message()));
                     }
                     settled();
                   });
  });
}

void Workspace::Mutate(const auth::Claims& claims, Edit edit,
                       std::function<void(Result<EditResult>)> done) {
  net::post(strand_, [self = shared_from_this(), claims, edit = std::move(edit),
                      done = std::move(done)]() mutable {
    if (Status s = self->EnsureLoaded(); !s.ok()) return done(s);
    self->DoMutate(claims, edit, std::move(done));
  });
}

void Workspace::Read(Query query, std::function<void(Result<std::string>)> done) {
  net::post(strand_, [self = shared_from_this(), query = std::move(query), done = std::move(done)] {
    if (Status s = self->EnsureLoaded(); !s.ok()) return done(s);
    auto result = std::make_shared<Result<std::string>>(query(*self->doc_));
    self->AfterDurable([result, done = std::move(done)](const Status& s) {
      done(s.ok() ? std::move(*result) : Result<std::string>(s));
    });
  });
}

void Workspace::DoMutate(const auth::Claims& claims, const Edit& edit,
                         std::function<void(Result<EditResult>)> done) {
  // Refused: told in turn, after what is ahead of it.
  auto refuse = [&](Status why) {
    InTurn([why = std::move(why), done = std::move(done)](const Status&) { done(why); });
  };
  if (broken()) RecoverIfIdle();
  if (broken() || !doc_) return refuse(Reloading());
  automerge::Transaction tx(*doc_, hub_.ActorFor(claims.sub));
  auto output = edit(tx, *doc_);
  if (!output.ok()) {
    tx.Rollback();
    return refuse(output.status());
  }
  automerge::CommitOptions opts;
  // The edit's time (an op's timestamp) in whole seconds, rounded down.
  opts.time = output->timestamp / 1'000'000 - (output->timestamp % 1'000'000 < 0 ? 1 : 0);
  opts.author = Bytes(claims.sub.begin(), claims.sub.end());
  auto hash = tx.Commit(opts);
  if (!hash.ok()) return refuse(hash.status());

  Pending p;
  std::optional<automerge::ChangeHash> change = *hash;
  // The heads right after this change: when it is durable, so is all they name.
  p.on_done = [change, heads = doc_->heads(), done = std::move(done)](const Status& s) {
    if (!s.ok()) return done(s);
    done(EditResult{change, heads});
  };
  if (!change) {  // nothing to store (an undo or restore with nothing to undo), nor to tell
    p.done = true;
    pending_.push_back(std::move(p));
    return Flush();
  }
  for (std::string& b : output->broadcasts)
    p.broadcasts.push_back(std::make_shared<const std::string>(std::move(b)));
  size_t index = doc_->changes().size() - 1;
  const automerge::StoredChange& stored = doc_->changes().back();
  storage::WriteBatch batch;
  // The webhook events and the replication outbox record go into the same
  // write as the change (doc/webhooks.md, doc/replication.md).
  std::vector<uint64_t> events;
  if (hub_.webhooks_) {
    webhooks::Event e;
    e.workspace_id = id_;
    e.change = automerge::HashToHex(stored.hash);
    for (const auto& h : doc_->heads()) e.heads.push_back(automerge::HashToHex(h));
    e.author = claims.sub;
    e.op_timestamp = output->timestamp;
    for (auto& [key, value] : output->keys) {
      e.key = key;
      e.value_json = value.value_or("null");
      e.deleted = !value;
      events.push_back(hub_.webhooks_->Stage(e, batch));
      ++e.part;
    }
  }
  std::optional<uint64_t> ticket;
  if (hub_.replicator_) ticket = hub_.replicator_->Stage(id_, stored, output->timestamp, batch);
  Write(index, std::move(batch), std::move(p), [hub = &hub_, events, ticket](const Status& s) {
    for (uint64_t e : events) hub->webhooks_->Committed(e, s);
    if (ticket) hub->replicator_->Committed(*ticket, s);
  });
}

void Workspace::Write(size_t from, storage::WriteBatch batch, Pending p,
                      std::function<void(const Status&)> committed) {
  const auto& changes = doc_->changes();
  for (size_t i = from; i < changes.size(); ++i)
    batch.Put(storage::ChangeKey(id_, i), std::string(AsChars(changes.bytes(i))));
  batch.Put(storage::HeadsKey(id_), HeadsRecord(*doc_));
  p.changes = changes.size() - from;
  // A lone op (none of this workspace's in flight) may be written by this
  // network thread itself (storage/committer.h, "Leading"), once it has left
  // the strand; ops in flight behind one another go to the writer thread,
  // which leaves the network threads to their broadcasts.
  bool may_lead = pending_.empty();
  uint64_t seqno = pending_base_ + pending_.size();
  pending_.push_back(std::move(p));
  auto written = [self = shared_from_this(), seqno,
                  committed = std::move(committed)](const Status& s) {
    if (committed) committed(s);
    net::post(self->strand_, [self, seqno, s] { self->OnWritten(seqno, s); });
  };
  if (!may_lead) return hub_.committer_.Submit(stream_, std::move(batch), std::move(written));
  if (hub_.committer_.SubmitMayLead(stream_, std::move(batch), std::move(written)))
    net::defer(hub_.executor_, [committer = &hub_.committer_] { committer->Lead(); });
}

void Workspace::ApplyRemote(std::vector<automerge::StoredChange> changes,
                            replication::Timestamps timestamps,
                            std::function<void(Result<bool>)> done) {
  net::post(strand_, [self = shared_from_this(), changes = std::move(changes),
                      timestamps = std::move(timestamps), done = std::move(done)]() mutable {
    if (Status s = self->EnsureLoaded(); !s.ok()) return done(s);
    if (self->broken()) return done(Reloading());
    size_t from = self->doc_->changes().size();
    if (Status s = self->doc_->ApplyChanges(std::move(changes)); !s.ok()) return done(s);
    self->AdmitRemote(from, timestamps, [self, done = std::move(done)](const Status& s) {
      if (!s.ok()) return done(s);
      done(self->doc_ && self->doc_->queued() > 0);
    });
  });
}

void Workspace::Sync(std::shared_ptr<automerge::SyncState> state, std::optional<Bytes> message,
                     std::function<void(Result<std::optional<Bytes>>)> done) {
  net::post(strand_, [self = shared_from_this(), state = std::move(state),
                      message = std::move(message), done = std::move(done)]() mutable {
    if (Status s = self->EnsureLoaded(); !s.ok()) return done(s);
    if (self->broken()) return done(Reloading());
    if (!message) return self->ReplySync(*state, std::move(done));
    size_t from = self->doc_->changes().size();
    if (Status s = automerge::ReceiveSyncMessage(*self->doc_, *state, *message); !s.ok())
      return done(s);
    // The answer follows once what was received is durable here.
    self->AdmitRemote(from, {}, [self, state, done = std::move(done)](const Status& s) mutable {
      if (!s.ok()) return done(s);
      self->ReplySync(*state, std::move(done));
    });
  });
}

void Workspace::AdmitRemote(size_t from, const replication::Timestamps& timestamps,
                            std::function<void(const Status&)> done) {
  const auto& changes = doc_->changes();
  if (changes.size() == from) return AfterDurable(std::move(done));  // known, or waiting for deps
  // Each root key the new changes touched is sent once, with its value now
  // (which merges every concurrent write), in the order of the change that
  // touched it last: the order the changes were made in, where they have one.
  // (Finding those keys decodes each change again: not done for nobody, as
  // when a node catches up on workspaces whose clients are elsewhere.)
  std::map<std::string, size_t> last_touch;
  if (Watched())
    for (size_t i = from; i < changes.size(); ++i)
      for (const std::string& key : RootKeysTouched(*doc_, changes[i])) last_touch[key] = i;
  std::vector<std::pair<size_t, std::string>> keys;
  for (auto& [key, i] : last_touch) keys.emplace_back(i, key);
  std::sort(keys.begin(), keys.end());
  Pending p;
  for (const auto& [i, key] : keys) {
    auto t = timestamps.find(changes.hash(i));
    // A change's time is any int64 (a client's op chose it): saturate.
    int64_t timestamp = 0;
    if (t != timestamps.end()) {
      timestamp = t->second;
    } else if (__builtin_mul_overflow(changes.time(i), int64_t{1'000'000}, &timestamp)) {
      timestamp = changes.time(i) < 0 ? INT64_MIN : INT64_MAX;
    }
    p.broadcasts.push_back(
        std::make_shared<const std::string>(KeyMessage(key, doc_->RootValueJson(key), timestamp)));
  }
  p.on_done = std::move(done);
  Write(from, {}, std::move(p), nullptr);
}

bool Workspace::Watched() const {
  return !clients_.empty() || std::any_of(pending_.begin(), pending_.end(),
                                          [](const Pending& p) { return p.joiner != nullptr; });
}

void Workspace::OnWritten(uint64_t seqno, Status status) {
  Pending& p = pending_[seqno - pending_base_];
  p.done = true;
  p.status = status;
  if (!status.ok()) {
    if (!broken()) LogError("workspace " + id_ + ": write failed: " + status.ToString());
    failed_from_ = std::min(failed_from_, seqno);
  }
  // The writes of one group commit each post an OnWritten; one Flush after
  // those queued by now gives each client their broadcasts as one batch.
  PostFlush();
}

void Workspace::PostFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  net::post(strand_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->Flush();
  });
}

void Workspace::Flush() {
  // The broadcasts of consecutive edits, and their submitters to tell once
  // the broadcasts are handed over.
  std::vector<std::shared_ptr<const std::string>> batch;
  std::vector<std::function<void(const Status&)>> acknowledged;
  auto broadcast = [&] {
    if (!batch.empty()) {
      auto shared =
          std::make_shared<const std::vector<std::shared_ptr<const std::string>>>(std::move(batch));
      batch.clear();
      for (auto it = clients_.begin(); it != clients_.end();) {
        if (auto c = it->second.lock()) {
          c->SendBatch(shared);
          ++it;
        } else {
          it = clients_.erase(it);
        }
      }
    }
    for (auto& done : acknowledged) done(Status::Ok());
    acknowledged.clear();
  };
  while (!pending_.empty() && pending_.front().done) {
    // Entries ahead of the first failed write are durable (a stream's writes
    // fail from the first failure on: storage/committer.h).
    bool failed = pending_base_ >= failed_from_;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    ++pending_base_;
    if (p.joiner) {
      broadcast();  // what was durable before it joined is in its init
      if (failed) {
        // Its init may hold changes that failed: send a fresh one after the reload.
        p.done = false;
        pending_.push_back(std::move(p));
        continue;
      }
      clients_[p.joiner.get()] = p.joiner;
      p.joiner->Send(p.broadcasts.front());
      continue;
    }
    if (failed || p.in_turn) {
      broadcast();
      p.on_done(failed ? NotApplied() : Status::Ok());
      continue;
    }
    durable_changes_ += p.changes;
    batch.insert(batch.end(), p.broadcasts.begin(), p.broadcasts.end());
    acknowledged.push_back(std::move(p.on_done));
  }
  broadcast();
  RecoverIfIdle();
}

void Workspace::RecoverIfIdle() {
  // Idle: what was durable ahead of the failure is handed over, and no write
  // is in flight (what is left waits behind the failure: joiners, and reads
  // and sync replies taken from the document before the reload).
  if (!broken() || pending_base_ < failed_from_) return;
  if (!std::all_of(pending_.begin(), pending_.end(),
                   [](const Pending& p) { return p.joiner != nullptr || p.done; }))
    return;
  doc_.reset();
  Status s = Load();
  hub_.committer_.ClearFailure(stream_);
  if (s.ok()) {
    failed_from_ = kNoFailure;
    LogInfo("workspace " + id_ + ": reloaded from the store after a failed write");
  } else {
    LogError("workspace " + id_ + ": reload failed (retried on the next request): " + s.ToString());
  }
  // Answers computed before the reload may show what failed: they get the
  // error. Joiners get the document as reloaded (nothing is in flight: it is
  // all durable), then what they were answered meanwhile; or, if it could
  // not be reloaded, are closed rather than left waiting for a retry that
  // may never come. Joiners first, so that the errors follow their init.
  // (No write is in flight: nothing refers to the old sequence numbers.)
  std::vector<std::function<void(const Status&)>> answers;
  for (Pending& p : TakePending()) {
    if (!p.joiner) {
      answers.push_back(std::move(p.on_done));
      continue;
    }
    if (s.ok()) {
      clients_[p.joiner.get()] = p.joiner;
      p.joiner->Send(std::make_shared<const std::string>(InitMessage(*doc_)));
    }
    for (auto& r : p.replies) p.joiner->Send(std::move(r));
    if (!s.ok()) RefuseJoin(p.joiner);
  }
  for (auto& answer : answers) answer(NotApplied());
}

std::deque<Workspace::Pending> Workspace::TakePending() {
  std::deque<Pending> taken;
  taken.swap(pending_);
  pending_base_ += taken.size();
  return taken;
}

void Workspace::AfterDurable(std::function<void(const Status&)> then) {
  // Broken: the document may hold what failed (until the reload).
  if (broken()) return then(NotApplied());
  InTurn(std::move(then));
}

void Workspace::InTurn(std::function<void(const Status&)> then) {
  if (pending_.empty()) return then(Status::Ok());
  Pending p;
  p.on_done = std::move(then);
  p.in_turn = true;
  p.done = true;
  pending_.push_back(std::move(p));
  // Its turn comes in a Flush; the one that let it in may be running now.
  PostFlush();
}

void Workspace::ReplySync(automerge::SyncState& state,
                          std::function<void(Result<std::optional<Bytes>>)> done) {
  auto reply =
      std::make_shared<Result<std::optional<Bytes>>>(automerge::GenerateSyncMessage(*doc_, state));
  AfterDurable([reply, done = std::move(done)](const Status& s) {
    done(s.ok() ? std::move(*reply) : Result<std::optional<Bytes>>(s));
  });
}

void Workspace::Export(std::function<void(Result<std::string>)> done) {
  net::post(strand_, [self = shared_from_this(), done = std::move(done)] {
    if (Status s = self->EnsureLoaded(); !s.ok()) return done(s);
    std::string out;
    const auto& changes = self->doc_->changes();
    for (size_t i = 0; i < self->durable_changes_; ++i) out += AsChars(changes.bytes(i));
    done(std::move(out));
  });
}

// --- Hub -----------------------------------------------------------------------

namespace {
constexpr size_t kUnloadsPerTrim = 256;
}  // namespace

Hub::Hub(net::any_io_executor executor, storage::Store& store, storage::Committer& committer,
         automerge::ActorId run_actor, webhooks::Webhooks* webhooks,
         replication::Replicator* replicator, size_t warm)
    : executor_(std::move(executor)),
      store_(store),
      committer_(committer),
      run_actor_(std::move(run_actor)),
      webhooks_(webhooks),
      replicator_(replicator),
      warm_(warm) {}

std::shared_ptr<Workspace> Hub::Get(const std::string& id) {
  std::shared_ptr<Workspace> evicted;  // released after the lock: its destructor calls Forget
  std::lock_guard lock(mu_);
  Entry& e = workspaces_[id];
  std::shared_ptr<Workspace> w = e.workspace.lock();
  if (!w) {
    w = std::make_shared<Workspace>(id, *this, next_stream_++);
    e.workspace = w;
  }
  if (warm_ == 0) return w;
  if (e.recent) {
    recent_.splice(recent_.begin(), recent_, *e.recent);
  } else {
    recent_.push_front(w);
    e.recent = recent_.begin();
    if (recent_.size() > warm_) {
      evicted = std::move(recent_.back());
      recent_.pop_back();
      workspaces_[evicted->id()].recent.reset();
    }
  }
  return w;
}

void Hub::ReleaseWarm() {
  Recent released;
  std::lock_guard lock(mu_);
  released.swap(recent_);
  for (auto& [id, e] : workspaces_) e.recent.reset();
}

void Hub::CloseClients(uint16_t code, const std::string& reason) {
  std::vector<std::shared_ptr<Workspace>> loaded;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, e] : workspaces_)
      if (auto ws = e.workspace.lock()) loaded.push_back(std::move(ws));
  }
  for (const auto& ws : loaded) ws->CloseClients(code, reason);
}

size_t Hub::loaded() const {
  std::lock_guard lock(mu_);
  return workspaces_.size();
}

void Hub::Forget(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = workspaces_.find(id);
  if (it != workspaces_.end() && it->second.workspace.expired()) workspaces_.erase(it);
  // Give the memory of unloaded workspaces back to the system now and then:
  // glibc keeps freed pages in its arenas, so after a burst of clients the
  // process would otherwise stay at its peak (bench/run_scale.sh showed it).
  if (++unloaded_since_trim_ >= kUnloadsPerTrim) {
    unloaded_since_trim_ = 0;
    net::post(executor_, [] { malloc_trim(0); });
  }
}

void Hub::ApplyRemote(const std::string& workspace, std::vector<automerge::StoredChange> changes,
                      replication::Timestamps timestamps, std::function<void(Result<bool>)> done) {
  if (!IsValidWorkspaceId(workspace))
    return done(Status::Corruption("not a workspace ID: " + workspace));
  Get(workspace)->ApplyRemote(std::move(changes), std::move(timestamps), std::move(done));
}

void Hub::Sync(const std::string& workspace, std::shared_ptr<automerge::SyncState> state,
               std::optional<Bytes> message,
               std::function<void(Result<std::optional<Bytes>>)> done) {
  if (!IsValidWorkspaceId(workspace))
    return done(Status::InvalidArgument("not a workspace ID: " + workspace));
  Get(workspace)->Sync(std::move(state), std::move(message), std::move(done));
}

automerge::ActorId Hub::ActorFor(std::string_view sub) const {
  Sha256 h;
  h.Update(run_actor_);
  h.Update(AsBytes(sub));
  Sha256Digest d = h.Finish();
  return automerge::ActorId(d.begin(), d.begin() + 16);
}

}  // namespace etherply::server
