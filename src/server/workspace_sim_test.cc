// A randomized simulation of one workspace under failing writes, checked
// against what its store holds at the end.
//
// Each run (one seed) drives a Hub over a MemoryStore with random steps:
// clients join and leave; writers and read-only clients send ops, one at a
// time or in bursts that commit in groups, and bad messages among them (the
// session's 400); HTTP edits (history's undo and restore) change keys, make
// no change, or fail; another node's changes arrive,
// concurrent with the local ones (redelivered until acknowledged), and that
// node runs the sync protocol with the server; reads;
// the store fails its next writes, or its reads (a reload, or a load after
// a restart, then fails: the joiners waiting are refused and closed), and
// heals; the server restarts over the
// same store; the io_context runs a few handlers or until idle, so that all
// of these interleave with writes in flight. Every op carries a value no
// other op has (local ones positive, remote ones negative), so the stored
// changes name the ops they came from. Then, with the store healed and
// nothing in flight, the promises of doc/design.md ("Durable before
// visible") must hold:
//  - every message is answered exactly once, in the order its client sent
//    them: an op by its own broadcast (acknowledged) or by an error (403 to
//    a read-only client), a bad message by a 400;
//  - an acknowledged op is on disk, once; an op answered with an error is
//    not; nothing is on disk that nobody sent;
//  - a client refused for a failed load gets errors only: its refusal, and
//    answers to the first of what it sent, in order, those ops not stored;
//  - each other client gets one init, the state after some prefix of the stored
//    changes, then exactly the stored local ops after that prefix, in order,
//    (ops and HTTP edits), none missing or repeated: all of them if it is
//    still connected, and
//    then its init and every broadcast, applied in order, make the stored
//    document's state;
//  - an HTTP edit that succeeds is stored, one that fails is not;
//  - an acknowledged remote change is stored, and once the other node and
//    the server have run the sync protocol to its end, both hold the same
//    changes;
//  - a read answers the state after some prefix of the stored changes;
//  - the workspace's export is the stored changes, and they load.
//
// ETHERPLY_SIM_SEEDS=N runs N seeds instead of kSeeds; a failure names its
// seed and prints the steps taken.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "automerge/change.h"
#include "automerge/sync.h"
#include "automerge/transaction.h"
#include "server/server_testutil.h"
#include "server/workspace.h"
#include "server/workspace_testutil.h"
#include "storage/layout.h"
#include "storage/memory_store.h"

namespace etherply::server {
namespace {

namespace net = boost::asio;
using State = std::map<std::string, int64_t>;

constexpr int kSeeds = 200;
constexpr int kSteps = 160;
constexpr char kWorkspace[] = "sim";
// The timestamp of remote changes' broadcasts; a local op's is its value.
constexpr int64_t kRemoteTimestamp = 0;
// What a client's bad message is recorded as among the values it sent.
constexpr int64_t kBadMessage = 0;

// Runs `io` until nothing is left to do: no handler ready, nothing queued or
// being written in the committer (whose callbacks post back to `io` before
// it counts as idle).
void Drain(net::io_context& io, storage::Committer& committer) {
  for (;;) {
    io.restart();
    if (io.poll() > 0) continue;
    if (!committer.idle()) {
      std::this_thread::yield();
      continue;
    }
    io.restart();
    if (io.poll() == 0) return;
  }
}

State StateOf(const boost::json::object& data) {
  State s;
  for (const auto& [key, value] : data) s[std::string(key)] = value.as_int64();
  return s;
}

struct SimClient {
  std::shared_ptr<testutil::FakeClient> client = std::make_shared<testutil::FakeClient>();
  bool writer = true;
  bool connected = true;      // until it leaves or the server restarts
  std::vector<int64_t> sent;  // op values, or kBadMessage
  std::shared_ptr<size_t> settled = std::make_shared<size_t>(0);
};

class Simulation {
 public:
  explicit Simulation(uint32_t seed) : rng_(seed) { Start(); }
  ~Simulation() { Stop(); }

  void Run(int steps) {
    for (int i = 0; i < steps; ++i) Step();
    Note("heal, drain");
    store_.FailWritesAfter(-1);
    store_.FailReadsAfter(-1);
    Drain(io_, *committer_);
  }

  // The checks of the file's comment; failures name the step log.
  void Check() {
    // The stored changes, in order, each of one op: a local op's value is
    // positive, a remote change's negative. prefix[j]: the document's state
    // after the first j.
    std::vector<int64_t> stored;
    std::set<automerge::ChangeHash> stored_hashes;
    std::vector<State> prefix(1);
    automerge::Document doc;
    Status s = storage::ForEachChange(store_, kWorkspace, [&](std::string_view record) {
      auto changes = automerge::DecodeChangeChunks(AsBytes(record));
      if (!changes.ok()) return changes.status();
      if (changes->size() != 1 || changes->front().change.ops.size() != 1)
        return Status::Corruption("not a change of one op");
      stored.push_back(std::get<int64_t>(changes->front().change.ops.front().value));
      stored_hashes.insert(changes->front().hash);
      if (Status a = doc.ApplyChanges(std::move(*changes)); !a.ok()) return a;
      prefix.push_back(StateOf(boost::json::parse(doc.ToJson()).as_object()));
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s.ToString() << log_;
    std::map<int64_t, size_t> position;
    for (int64_t value : stored)
      EXPECT_TRUE(position.emplace(value, position.size()).second)
          << "value " << value << " stored twice" << log_;
    auto prefix_of = [&](const State& state) -> std::optional<size_t> {
      for (size_t j = 0; j < prefix.size(); ++j)
        if (prefix[j] == state) return j;
      return std::nullopt;
    };
    for (size_t i = 0; i < remote_acknowledged_; ++i)
      EXPECT_TRUE(stored_hashes.count(remote_.changes().hash(i)))
          << "remote change " << i << " acknowledged, not stored" << log_;

    std::set<int64_t> sent_by_writers;
    for (size_t c = 0; c < clients_.size(); ++c) {
      const SimClient& sc = clients_[c];
      SCOPED_TRACE("client " + std::to_string(c));
      EXPECT_EQ(*sc.settled, sc.sent.size()) << "every op is settled once" << log_;
      auto messages = sc.client->messages();
      for (int64_t v : sc.sent)
        if (sc.writer) sent_by_writers.insert(v);
      if (sc.client->close_code() != 0) {
        // Refused: errors only. Those before its refusal answer the first
        // of what it sent, in order (held for the init it waited for);
        // what it sent after them is unknown to it, as when a connection
        // drops, and may be stored or not.
        EXPECT_EQ(sc.client->close_code(), 1011) << log_;
        EXPECT_LE(messages.size(), sc.sent.size() + 1) << log_;
        size_t refusals = 0;
        for (size_t m = 0; m < messages.size(); ++m) {
          auto msg = boost::json::parse(messages[m]).as_object();
          ASSERT_EQ(msg.at("type"), "error") << messages[m] << log_;
          if (msg.at("message") == "the workspace cannot be loaded") ++refusals;
          if (refusals > 0) continue;
          int64_t v = sc.sent.at(m);
          EXPECT_EQ(msg.at("code") == 400, v == kBadMessage) << "answers out of order" << log_;
          EXPECT_FALSE(position.count(v)) << "a refused op " << v << " stored" << log_;
        }
        EXPECT_EQ(refusals, 1u) << log_;
        continue;
      }
      ASSERT_FALSE(messages.empty()) << "no init" << log_;
      auto init = boost::json::parse(messages[0]).as_object();
      ASSERT_EQ(init.at("type"), "init") << messages[0] << log_;
      std::optional<size_t> j = prefix_of(StateOf(init.at("data").as_object()));
      ASSERT_TRUE(j) << "init is no stored prefix: " << messages[0] << log_;
      std::set<int64_t> sent(sc.sent.begin(), sc.sent.end());
      State state = StateOf(init.at("data").as_object());
      std::vector<int64_t> seen;  // the local ops broadcast to it
      // The answers to what it sent, as they came: its own op's value when
      // the op came back (acknowledged), else the error's code.
      struct Answer {
        std::optional<int64_t> value;
        int64_t code = 0;
      };
      std::vector<Answer> answers;
      for (size_t m = 1; m < messages.size(); ++m) {
        auto msg = boost::json::parse(messages[m]).as_object();
        if (msg.at("type") == "op") {
          const auto& payload = msg.at("payload").as_object();
          int64_t value = payload.at("value").as_int64();
          state[std::string(payload.at("key").as_string())] = value;
          if (payload.at("timestamp").as_int64() == kRemoteTimestamp) continue;
          EXPECT_EQ(payload.at("timestamp").as_int64(), value) << messages[m] << log_;
          seen.push_back(value);
          if (sent.count(value)) answers.push_back({value});
        } else {
          ASSERT_EQ(msg.at("type"), "error") << messages[m] << log_;
          int64_t code = msg.at("code").as_int64();
          EXPECT_TRUE(code == 400 || code == (sc.writer ? 500 : 403)) << messages[m] << log_;
          answers.push_back({std::nullopt, code});
        }
      }
      // Exactly the stored local ops after its init's prefix, in order.
      std::vector<int64_t> expected;
      for (size_t i = *j; i < stored.size() && expected.size() < seen.size(); ++i)
        if (stored[i] > 0) expected.push_back(stored[i]);
      EXPECT_EQ(seen, expected) << "broadcasts after init at " << *j << log_;
      // (A client that left may miss its ops' broadcasts.)
      if (!sc.connected) continue;
      size_t local_after =
          std::count_if(stored.begin() + *j, stored.end(), [](int64_t v) { return v > 0; });
      EXPECT_EQ(seen.size(), local_after) << "a connected client missed ops" << log_;
      EXPECT_EQ(state, prefix.back()) << "a connected client's view of the document" << log_;
      // Each op answered once, in the order sent: acknowledged, or refused
      // and not stored.
      ASSERT_EQ(answers.size(), sc.sent.size()) << log_;
      for (size_t i = 0; i < answers.size(); ++i) {
        if (answers[i].value) {
          EXPECT_EQ(*answers[i].value, sc.sent[i]) << "answers out of order" << log_;
        } else if (sc.sent[i] == kBadMessage) {
          EXPECT_EQ(answers[i].code, 400) << "answer " << i << " out of order" << log_;
        } else {
          EXPECT_NE(answers[i].code, 400) << "answer " << i << " out of order" << log_;
          EXPECT_FALSE(position.count(sc.sent[i]))
              << "op " << sc.sent[i] << " refused yet stored" << log_;
        }
      }
    }
    for (const EditCall& e : edits_) {
      SCOPED_TRACE("edit " + std::to_string(e.value));
      ASSERT_TRUE(e.outcome) << "an edit not answered" << log_;
      if (!e.outcome->ok()) {
        EXPECT_FALSE(position.count(e.value)) << "an edit failed, yet stored" << log_;
        continue;
      }
      EXPECT_FALSE(e.fail) << "a failing edit succeeded" << log_;
      const Workspace::EditResult& r = **e.outcome;
      for (const auto& h : r.heads)
        EXPECT_TRUE(stored_hashes.count(h)) << "an edit's heads not stored" << log_;
      if (e.value == kBadMessage) {
        EXPECT_FALSE(r.change) << "an edit that records nothing made a change" << log_;
        continue;
      }
      ASSERT_TRUE(r.change) << log_;
      EXPECT_TRUE(stored_hashes.count(*r.change)) << "an edit done, not stored" << log_;
      EXPECT_TRUE(position.count(e.value)) << log_;
      sent_by_writers.insert(e.value);
    }
    for (int64_t value : stored)
      EXPECT_TRUE(value < 0 || sent_by_writers.count(value))
          << "stored " << value << ", sent by no writer" << log_;
    for (const std::string& r : reads_)
      EXPECT_TRUE(prefix_of(StateOf(boost::json::parse(r).as_object())))
          << "read is no stored prefix: " << r << log_;

    // The export is the stored changes; a client joining now sees them all.
    std::optional<Result<std::string>> exported;
    ws_->Export([&](Result<std::string> r) { exported = std::move(r); });
    auto last = Join(true);
    Drain(io_, *committer_);
    ASSERT_TRUE(exported && exported->ok()) << log_;
    automerge::Document loaded;
    ASSERT_TRUE(loaded.LoadIncremental(AsBytes(**exported)).ok()) << log_;
    EXPECT_EQ(loaded.changes().size(), stored.size()) << log_;
    auto init = boost::json::parse(clients_[last].client->messages().at(0)).as_object();
    EXPECT_EQ(StateOf(init.at("data").as_object()), prefix.back()) << log_;
    EXPECT_EQ(StateOf(boost::json::parse(loaded.ToJson()).as_object()), prefix.back()) << log_;

    // Synced to the end, the other node and the store hold the same changes.
    ASSERT_NO_FATAL_FAILURE(SyncToEnd());
    std::set<automerge::ChangeHash> now;
    s = storage::ForEachChange(store_, kWorkspace, [&](std::string_view record) {
      auto changes = automerge::DecodeChangeChunks(AsBytes(record));
      if (!changes.ok()) return changes.status();
      for (const auto& c : *changes) now.insert(c.hash);
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s.ToString() << log_;
    std::set<automerge::ChangeHash> theirs;
    for (size_t i = 0; i < remote_.changes().size(); ++i) theirs.insert(remote_.changes().hash(i));
    size_t missing = 0;
    for (const auto& h : theirs) missing += !now.count(h);
    EXPECT_EQ(missing, 0u) << "changes of the other node not stored after a sync" << log_;
    EXPECT_EQ(now.size(), theirs.size()) << "stored changes the other node lacks" << log_;
  }

 private:
  void Start() {
    committer_ = std::make_unique<storage::Committer>(store_);
    hub_ = std::make_unique<Hub>(io_.get_executor(), store_, *committer_, automerge::ActorId(16, 7),
                                 nullptr, nullptr);
    ws_ = hub_->Get(kWorkspace);
    ResetSync();  // a new session with the restarted server
  }
  void ResetSync() {
    peer_sync_ = automerge::SyncState();
    server_sync_ = std::make_shared<automerge::SyncState>();
  }
  void Stop() {
    Drain(io_, *committer_);
    ws_.reset();
    hub_.reset();
    committer_.reset();
    for (SimClient& c : clients_) c.connected = false;
  }

  size_t Join(bool writer) {
    SimClient c;
    c.writer = writer;
    ws_->Join(c.client);
    clients_.push_back(std::move(c));
    return clients_.size() - 1;
  }

  void SendOp(size_t c) {
    SimClient& sc = clients_[c];
    int64_t value = next_value_++;
    std::string key = "k" + std::to_string(rng_() % 4);
    sc.sent.push_back(value);
    auto claims =
        testutil::ClaimsFor("u" + std::to_string(c % 3),
                            auth::Scopes{sc.writer ? auth::Scope::kWrite : auth::Scope::kRead});
    ws_->SubmitOp(sc.client, claims, OpMessage{key, boost::json::value(value), value},
                  [settled = sc.settled] { ++*settled; });
    Note("op " + std::to_string(value) + " " + key + " from " + std::to_string(c));
  }

  // A message the session refuses (not JSON, say): it answers with a 400
  // through the workspace, in turn.
  void SendBad(size_t c) {
    SimClient& sc = clients_[c];
    sc.sent.push_back(kBadMessage);
    ws_->Reply(sc.client, ErrorMessage(400, "bad message"), [settled = sc.settled] { ++*settled; });
    Note("bad message from " + std::to_string(c));
  }

  // An edit over HTTP (as history's undo and restore make): sets a key, or
  // records nothing (its value is then kBadMessage), or fails after a put.
  void SendEdit() {
    unsigned kind = rng_() % 4;
    int64_t value = kind == 0 ? kBadMessage : next_value_++;
    bool fail = kind == 1;
    std::string key = "k" + std::to_string(rng_() % 4);
    Workspace::Edit edit = [=](automerge::Transaction& tx,
                               const automerge::Document&) -> Result<Workspace::EditOutput> {
      if (value == kBadMessage) return Workspace::EditOutput{};
      if (Status s = tx.Put(automerge::kRoot, key, automerge::ScalarValue{value}); !s.ok())
        return s;
      if (fail) return Status::InvalidArgument("the edit fails after its put");
      return Workspace::EditOutput{
          {OpBroadcast(OpMessage{key, boost::json::value(value), value}, value)}, {}, value};
    };
    size_t i = edits_.size();
    edits_.push_back({value, fail, std::nullopt});
    ws_->Mutate(testutil::ClaimsFor("admin", auth::Scopes{auth::Scope::kWrite}), edit,
                [this, i](Result<Workspace::EditResult> r) { edits_[i].outcome = std::move(r); });
    Note("edit " + std::to_string(value) + " " + key + (fail ? " (fails)" : ""));
  }

  // Another node changes a key, then sends every change of its own not yet
  // acknowledged, as its stream redelivers what was not.
  void SendRemote() {
    int64_t value = next_remote_value_--;
    std::string key = "k" + std::to_string(rng_() % 4);
    automerge::Transaction tx(remote_, automerge::ActorId(16, 9));
    ASSERT_TRUE(tx.Put(automerge::kRoot, key, automerge::ScalarValue{value}).ok());
    ASSERT_TRUE(tx.Commit({.time = 0}).ok());
    std::vector<automerge::StoredChange> changes;
    replication::Timestamps timestamps;
    size_t end = remote_.changes().size();
    for (size_t i = remote_acknowledged_; i < end; ++i) {
      changes.push_back(remote_.changes()[i]);
      timestamps[remote_.changes().hash(i)] = kRemoteTimestamp;
    }
    ws_->ApplyRemote(std::move(changes), std::move(timestamps), [this, end](Result<bool> r) {
      if (r.ok() && !*r) remote_acknowledged_ = std::max(remote_acknowledged_, end);
    });
    Note("remote " + std::to_string(value) + " " + key);
  }

  // One step of the sync protocol between the other node and the server,
  // one at a time; a refused one (the server reloading) begins a new session.
  void SyncStep() {
    if (sync_in_flight_) return;
    sync_in_flight_ = true;
    auto message = automerge::GenerateSyncMessage(remote_, peer_sync_);
    ws_->Sync(server_sync_, std::move(message),
              [this, session = server_sync_](Result<std::optional<Bytes>> r) {
                sync_in_flight_ = false;
                if (session != server_sync_) return;  // from before a restart
                if (!r.ok()) return ResetSync();
                if (*r) {
                  Status s = automerge::ReceiveSyncMessage(remote_, peer_sync_, **r);
                  EXPECT_TRUE(s.ok()) << s.ToString() << log_;
                }
              });
    Note("sync");
  }

  // Sync steps, each waited for, until neither side has anything to send.
  void SyncToEnd() {
    ResetSync();
    for (int round = 0; round < 64; ++round) {
      auto message = automerge::GenerateSyncMessage(remote_, peer_sync_);
      std::optional<Result<std::optional<Bytes>>> reply;
      ws_->Sync(server_sync_, message,
                [&](Result<std::optional<Bytes>> r) { reply = std::move(r); });
      Drain(io_, *committer_);
      ASSERT_TRUE(reply && reply->ok()) << log_;
      if (**reply) {
        ASSERT_TRUE(automerge::ReceiveSyncMessage(remote_, peer_sync_, ***reply).ok());
      }
      if (!message && !**reply) return;
    }
    FAIL() << "the sync did not end" << log_;
  }

  std::optional<size_t> AnyConnected() {
    std::vector<size_t> connected;
    for (size_t c = 0; c < clients_.size(); ++c) {
      // A joiner refused (its load failed) is closed: it sends nothing more.
      if (clients_[c].client->close_code() != 0) clients_[c].connected = false;
      if (clients_[c].connected) connected.push_back(c);
    }
    if (connected.empty()) return std::nullopt;
    return connected[rng_() % connected.size()];
  }

  void Step() {
    unsigned roll = rng_() % 100;
    if (roll < 25) {
      if (auto c = AnyConnected()) SendOp(*c);
    } else if (roll < 35) {
      // A burst commits in groups: a bad message among its ops is answered
      // between their broadcasts.
      for (unsigned n = 2 + rng_() % 7; n > 0; --n)
        if (auto c = AnyConnected()) rng_() % 6 == 0 ? SendBad(*c) : SendOp(*c);
    } else if (roll < 45) {
      size_t c = Join(rng_() % 5 != 0);
      Note("join " + std::to_string(c) + (clients_[c].writer ? " (writer)" : " (reader)"));
    } else if (roll < 49) {
      if (auto c = AnyConnected()) {
        ws_->Leave(clients_[*c].client.get());
        clients_[*c].connected = false;
        Note("leave " + std::to_string(*c));
      }
    } else if (roll < 57) {
      int n = static_cast<int>(rng_() % 3);
      store_.FailWritesAfter(n);
      Note("fail writes after " + std::to_string(n));
    } else if (roll < 60) {
      int n = static_cast<int>(rng_() % 8);
      store_.FailReadsAfter(n);
      Note("fail reads after " + std::to_string(n));
    } else if (roll < 66) {
      store_.FailWritesAfter(-1);
      store_.FailReadsAfter(-1);
      Note("heal");
    } else if (roll < 70) {
      ws_->Read([](const automerge::Document& d) -> Result<std::string> { return d.ToJson(); },
                [this](Result<std::string> r) {
                  if (r.ok()) reads_.push_back(std::move(*r));
                });
      Note("read");
    } else if (roll < 73) {
      Note("restart");
      Stop();
      Start();
    } else if (roll < 78) {
      SendRemote();
    } else if (roll < 81) {
      SyncStep();
    } else if (roll < 84) {
      if (auto c = AnyConnected()) SendBad(*c);
    } else if (roll < 87) {
      SendEdit();
    } else if (roll < 95) {
      unsigned n = 1 + rng_() % 5;
      io_.restart();
      for (unsigned i = 0; i < n; ++i) io_.poll_one();
      Note("run " + std::to_string(n));
    } else {
      Drain(io_, *committer_);
      Note("drain");
    }
  }

  void Note(const std::string& step) { log_ += "\n  " + step; }

  std::mt19937 rng_;
  net::io_context io_;
  storage::MemoryStore store_;  // outlives restarts
  std::unique_ptr<storage::Committer> committer_;
  std::unique_ptr<Hub> hub_;
  std::shared_ptr<Workspace> ws_;
  std::vector<SimClient> clients_;
  std::vector<std::string> reads_;
  struct EditCall {
    int64_t value;  // kBadMessage: the edit records nothing
    bool fail;      // the edit fails
    std::optional<Result<Workspace::EditResult>> outcome;
  };
  std::vector<EditCall> edits_;
  int64_t next_value_ = 1;
  automerge::Document remote_;      // the other node's document
  size_t remote_acknowledged_ = 0;  // its first changes, stored here
  automerge::SyncState peer_sync_;  // its side of the sync session
  std::shared_ptr<automerge::SyncState> server_sync_;
  bool sync_in_flight_ = false;
  int64_t next_remote_value_ = -1;
  std::string log_ = "\nsteps:";
};

TEST(WorkspaceSimulation, AcknowledgedMeansStoredAndEveryClientSeesTheStoreInOrder) {
  int seeds = kSeeds;
  if (const char* env = std::getenv("ETHERPLY_SIM_SEEDS")) seeds = std::atoi(env);
  for (int seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation sim(static_cast<uint32_t>(seed));
    sim.Run(kSteps);
    sim.Check();
    if (HasFailure()) break;  // one seed's report is enough to read
  }
}

}  // namespace
}  // namespace etherply::server
