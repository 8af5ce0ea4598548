#include "server/workspace.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <optional>

#include "automerge/sync.h"
#include "automerge/transaction.h"
#include "server/server_testutil.h"
#include "server/workspace_testutil.h"
#include "storage/layout.h"
#include "storage/memory_store.h"

namespace etherply::server {
namespace {

using testutil::FakeClient;

auth::Claims Writer() { return testutil::ClaimsFor("alice", auth::Scopes{auth::Scope::kWrite}); }

OpMessage Op(std::string key, int64_t value) {
  return OpMessage{std::move(key), boost::json::value(value), 1};
}

// How many change records `workspace` has in `store`.
size_t StoredChanges(storage::Store& store, std::string_view workspace) {
  size_t n = 0;
  Status s = storage::ForEachChange(store, workspace, [&](std::string_view) {
    ++n;
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return n;
}

// Runs the io_context until the workspace has nothing left to do (the
// committer thread posts back to it, so poll until quiet).
void Settle(boost::asio::io_context& io) {
  for (int quiet = 0; quiet < 20;) {
    io.restart();
    quiet = io.poll() == 0 ? quiet + 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

struct Fixture {
  boost::asio::io_context io;
  storage::MemoryStore store;
  storage::Committer committer{store};
  Hub hub{io.get_executor(), store, committer, automerge::ActorId(16, 7), nullptr, nullptr};

  // A client joined to `ws`, its init received.
  std::shared_ptr<FakeClient> Joined(const std::shared_ptr<Workspace>& ws) {
    auto c = std::make_shared<FakeClient>();
    ws->Join(c);
    Settle(io);
    return c;
  }
};

// Stalls the disk under a write of another stream, so that the workspace's
// writes queue for the writer thread (nobody leads while a write is under
// way) until the store's writes are permitted or resumed.
void StallTheDisk(Fixture& f) {
  f.store.HoldWrites();
  f.committer.Submit(uint64_t{1} << 40, storage::WriteBatch{}, [](const Status&) {});
  ASSERT_TRUE(testutil::Eventually([&] { return f.store.writes_begun() == 1; }));
}

// Ends StallTheDisk, and runs until every write is done and answered.
void ResumeTheDisk(Fixture& f) {
  f.store.ResumeWrites();
  ASSERT_TRUE(testutil::Eventually([&] { return f.committer.idle(); }));
  Settle(f.io);
}

TEST(Workspace, OpIsStoredThenBroadcastToEveryClient) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>(), b = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->Join(b);
  ws->SubmitOp(a, Writer(), Op("k", 1), [] {});
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 2u);
  EXPECT_EQ(a->messages()[1],
            "{\"type\":\"op\",\"payload\":{\"key\":\"k\",\"value\":1,\"timestamp\":1}}");
  EXPECT_EQ(b->messages(), a->messages());
  EXPECT_EQ(f.store.writes(), 1u);
}

// The spec's op is persisted, broadcast and announced whatever the key held:
// an op that repeats a key's value is a change too, timed by the op's own
// timestamp (in seconds, rounded down).
TEST(Workspace, EveryAcceptedOpIsAChangeTimedByItsTimestamp) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = f.Joined(ws);
  ws->SubmitOp(a, Writer(), OpMessage{"k", boost::json::value(1), 1'999'999}, [] {});
  ws->SubmitOp(a, Writer(), OpMessage{"k", boost::json::value(1), 5'000'000}, [] {});
  ws->SubmitOp(a, Writer(), OpMessage{"k", boost::json::value(1.0), -1}, [] {});
  Settle(f.io);
  EXPECT_EQ(a->messages().size(), 4u);
  std::vector<int64_t> times;
  Status s = storage::ForEachChange(f.store, "w", [&](std::string_view record) -> Status {
    auto decoded = automerge::DecodeChangeChunks(AsBytes(record));
    if (!decoded.ok()) return decoded.status();
    for (const auto& c : *decoded) times.push_back(c.change.time);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(times, (std::vector<int64_t>{1, 5, -1}));
}

// Broadcasts go to clients in batches (one per client per flush); a client
// that joins between ops gets neither the ops before its init nor a batch
// that mixes them with later ones.
TEST(Workspace, ClientJoiningBetweenOpsGetsItsInitThenOnlyTheLaterOps) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>(), b = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->SubmitOp(a, Writer(), Op("k1", 1), [] {});
  ws->SubmitOp(a, Writer(), Op("k2", 2), [] {});
  ws->Join(b);
  ws->SubmitOp(a, Writer(), Op("k3", 3), [] {});
  ws->SubmitOp(a, Writer(), Op("k4", 4), [] {});
  Settle(f.io);
  auto am = a->messages(), bm = b->messages();
  ASSERT_EQ(am.size(), 5u);
  for (int i = 1; i <= 4; ++i)
    EXPECT_NE(am[i].find("\"key\":\"k" + std::to_string(i) + "\""), std::string::npos) << am[i];
  ASSERT_EQ(bm.size(), 3u);
  EXPECT_NE(bm[0].find("\"data\":{\"k1\":1,\"k2\":2}"), std::string::npos) << bm[0];
  EXPECT_EQ(bm[1], am[3]);
  EXPECT_EQ(bm[2], am[4]);
}

// Durable, then broadcast, then the submitter is told: when `done` runs,
// every client has the broadcast.
TEST(Workspace, EditIsHandedToClientsBeforeItsSubmitterIsTold) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>();
  ws->Join(a);
  std::vector<size_t> seen_at_done;
  for (int i = 0; i < 5; ++i) {
    Workspace::Edit edit = [i](automerge::Transaction& tx,
                               const automerge::Document&) -> Result<Workspace::EditOutput> {
      std::string key = "k" + std::to_string(i);
      if (Status s = tx.Put(automerge::kRoot, key, int64_t{i}); !s.ok()) return s;
      return Workspace::EditOutput{{"broadcast " + key}, {}, 0};
    };
    ws->Mutate(Writer(), edit, [&, i](Result<Workspace::EditResult> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      auto m = a->messages();
      seen_at_done.push_back(std::count(m.begin(), m.end(), "broadcast k" + std::to_string(i)));
    });
  }
  Settle(f.io);
  EXPECT_EQ(seen_at_done, std::vector<size_t>(5, 1));
  EXPECT_EQ(a->messages().size(), 6u);
}

TEST(Workspace, FailedWriteAnswers500BroadcastsNothingAndMemoryEqualsDisk) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>(), b = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->Join(b);
  ws->SubmitOp(a, Writer(), Op("kept", 1), [] {});
  Settle(f.io);
  f.store.FailWritesAfter(0);
  ws->SubmitOp(a, Writer(), Op("lost", 2), [] {});
  Settle(f.io);
  // The sender is told; nobody sees the op.
  auto am = a->messages();
  ASSERT_EQ(am.size(), 3u);
  EXPECT_NE(am[2].find("\"code\":500"), std::string::npos) << am[2];
  EXPECT_EQ(b->messages().size(), 2u);
  // The store works again: the next op is stored and broadcast, and a new
  // client's init shows exactly what is on disk (no "lost").
  f.store.FailWritesAfter(-1);
  ws->SubmitOp(a, Writer(), Op("after", 3), [] {});
  Settle(f.io);
  auto c = std::make_shared<FakeClient>();
  ws->Join(c);
  Settle(f.io);
  ASSERT_FALSE(c->messages().empty());
  EXPECT_NE(c->messages()[0].find("\"data\":{\"after\":3,\"kept\":1}"), std::string::npos)
      << c->messages()[0];
  EXPECT_EQ(b->messages().size(), 3u);
}

// An integer above int64 is stored as a uint, exactly: the broadcast shows
// every digit, as the init of a client that joins later does.
TEST(Workspace, IntegerAboveInt64IsStoredAndBroadcastExactly) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->SubmitOp(a, Writer(), OpMessage{"big", boost::json::value(UINT64_MAX), 1}, [] {});
  Settle(f.io);
  auto b = std::make_shared<FakeClient>();
  ws->Join(b);
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 2u);
  EXPECT_EQ(a->messages()[1],
            "{\"type\":\"op\",\"payload\":{\"key\":\"big\",\"value\":18446744073709551615,"
            "\"timestamp\":1}}");
  ASSERT_EQ(b->messages().size(), 1u);
  EXPECT_NE(b->messages()[0].find("\"data\":{\"big\":18446744073709551615}"), std::string::npos)
      << b->messages()[0];
}

TEST(Workspace, ReadOnlyClientGets403AndNothingIsStored) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>();
  ws->Join(a);
  auth::Claims reader = Writer();
  reader.scopes = auth::Scopes{auth::Scope::kRead};
  int settled = 0;
  ws->SubmitOp(a, reader, Op("k", 1), [&] { ++settled; });
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 2u);
  EXPECT_NE(a->messages()[1].find("\"code\":403"), std::string::npos);
  EXPECT_EQ(f.store.writes(), 0u);
  EXPECT_EQ(settled, 1);
}

// Op A is written in one group, op B in the next, and B's write fails; both
// outcomes reach the workspace before it hands anything over. A is durable:
// it is broadcast and its sender is not told otherwise; B is refused. A read
// asked for after A answers once A is durable, with A; one asked for after B
// gets an error (it would show B, which is gone). Then memory equals disk.
TEST(Workspace, OpDurableAheadOfAFailedWriteIsBroadcastAndReadsWaitForTheDisk) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>(), b = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->Join(b);
  Settle(f.io);
  auto keys = [](const automerge::Document& doc) -> Result<std::string> {
    std::string out;
    for (const auto& k : doc.RootKeys()) out += k + ";";
    return out;
  };
  ASSERT_NO_FATAL_FAILURE(StallTheDisk(f));
  int settled = 0;
  ws->SubmitOp(a, Writer(), Op("A", 1), [&] { ++settled; });
  std::optional<Result<std::string>> read_a, read_b;
  ws->Read(keys, [&](Result<std::string> r) { read_a = std::move(r); });
  Settle(f.io);
  EXPECT_FALSE(read_a) << "answered before A is durable";
  f.store.PermitWrites(1);  // the other stream's write; A's group begins and waits
  ASSERT_TRUE(testutil::Eventually([&] { return f.store.writes_begun() == 2; }));
  ws->SubmitOp(a, Writer(), Op("B", 2), [&] { ++settled; });
  ws->Read(keys, [&](Result<std::string> r) { read_b = std::move(r); });
  Settle(f.io);
  EXPECT_FALSE(read_a);
  f.store.FailWritesAfter(1);  // A's group is written, B's fails
  f.store.ResumeWrites();
  ASSERT_TRUE(
      testutil::Eventually([&] { return f.store.writes_begun() == 3 && f.committer.idle(); }));
  Settle(f.io);

  const std::string echo_a =
      "{\"type\":\"op\",\"payload\":{\"key\":\"A\",\"value\":1,\"timestamp\":1}}";
  auto am = a->messages(), bm = b->messages();
  ASSERT_EQ(am.size(), 3u);
  EXPECT_EQ(am[1], echo_a);
  EXPECT_NE(am[2].find("\"code\":500"), std::string::npos) << am[2];
  ASSERT_EQ(bm.size(), 2u);
  EXPECT_EQ(bm[1], echo_a);
  ASSERT_TRUE(read_a);
  ASSERT_TRUE(read_a->ok()) << read_a->status().ToString();
  EXPECT_EQ(**read_a, "A;");
  ASSERT_TRUE(read_b);
  EXPECT_FALSE(read_b->ok());
  EXPECT_EQ(settled, 2);

  auto c = std::make_shared<FakeClient>();
  ws->Join(c);
  Settle(f.io);
  ASSERT_FALSE(c->messages().empty());
  EXPECT_NE(c->messages()[0].find("\"data\":{\"A\":1}"), std::string::npos) << c->messages()[0];
}

// A client's first message is its init (doc/protocol.md), even when what it
// sent is answered before that init can go: here its init waits for a write
// in flight, which fails, and then for the reload.
TEST(Workspace, AnswersToAClientComeAfterItsInit) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>(), b = std::make_shared<FakeClient>();
  ws->Join(a);
  Settle(f.io);
  ASSERT_NO_FATAL_FAILURE(StallTheDisk(f));
  int settled = 0;
  auto count = [&] { ++settled; };
  ws->SubmitOp(a, Writer(), Op("lost", 1), count);
  ws->Join(b);  // its init waits for "lost"
  ws->SubmitOp(b, testutil::ClaimsFor("bob", auth::Scopes{auth::Scope::kRead}), Op("r", 2), count);
  ws->Reply(b, std::make_shared<const std::string>("reply"), count);
  ws->SubmitOp(b, Writer(), Op("w", 3), count);
  Settle(f.io);
  EXPECT_TRUE(b->messages().empty());
  EXPECT_EQ(settled, 0);       // answered, and so settled, in their turn
  f.store.FailWritesAfter(1);  // the other stream's write; the ops' group fails
  ASSERT_NO_FATAL_FAILURE(ResumeTheDisk(f));

  auto bm = b->messages();
  ASSERT_EQ(bm.size(), 4u);
  EXPECT_NE(bm[0].find("\"type\":\"init\",\"data\":{}"), std::string::npos) << bm[0];
  EXPECT_NE(bm[1].find("\"code\":403"), std::string::npos) << bm[1];
  EXPECT_EQ(bm[2], "reply");
  EXPECT_NE(bm[3].find("\"code\":500"), std::string::npos) << bm[3];
  EXPECT_EQ(settled, 4);
  EXPECT_EQ(StoredChanges(f.store, "w"), 0u);
}

// An answer to what a client sent (as a 400 of its session) comes between
// the answers to what it sent before and after: the broadcasts of its ops,
// even when both are written in one group.
TEST(Workspace, AnswersComeInTheOrderOfWhatTheyAnswer) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = f.Joined(ws);
  ASSERT_NO_FATAL_FAILURE(StallTheDisk(f));
  bool settled = false;
  ws->SubmitOp(a, Writer(), Op("k", 1), [] {});
  ws->Reply(a, std::make_shared<const std::string>("reply"), [&] { settled = true; });
  ws->SubmitOp(a, Writer(), Op("k2", 2), [] {});  // written in one group with "k"
  Settle(f.io);
  EXPECT_EQ(a->messages().size(), 1u);
  EXPECT_FALSE(settled);
  ASSERT_NO_FATAL_FAILURE(ResumeTheDisk(f));
  auto am = a->messages();
  ASSERT_EQ(am.size(), 4u);
  EXPECT_NE(am[1].find("\"key\":\"k\""), std::string::npos) << am[1];
  EXPECT_EQ(am[2], "reply");
  EXPECT_NE(am[3].find("\"key\":\"k2\""), std::string::npos) << am[3];
  EXPECT_TRUE(settled);
}

// The 500 of an op whose write fails answers it in its turn: ahead of the
// answer to a message the client sent after it.
TEST(Workspace, AFailedWritesErrorComesBeforeTheAnswersBehindIt) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = f.Joined(ws);
  ASSERT_NO_FATAL_FAILURE(StallTheDisk(f));
  f.store.FailWritesAfter(1);  // the stall's write passes; the op's fails
  ws->SubmitOp(a, Writer(), Op("k", 1), [] {});
  ws->Reply(a, std::make_shared<const std::string>("reply"), [] {});
  Settle(f.io);
  ASSERT_NO_FATAL_FAILURE(ResumeTheDisk(f));
  auto am = a->messages();
  ASSERT_EQ(am.size(), 3u);
  EXPECT_NE(am[1].find("\"code\":500"), std::string::npos) << am[1];
  EXPECT_EQ(am[2], "reply");
}

// Changes made by another node's actor on a document of its own.
std::vector<automerge::StoredChange> RemoteChanges(int n, std::string_view key_prefix = "r") {
  automerge::Document doc;
  for (int i = 0; i < n; ++i) {
    automerge::Transaction tx(doc, automerge::ActorId(16, 9));
    EXPECT_TRUE(tx.Put(automerge::kRoot, std::string(key_prefix) + std::to_string(i),
                       automerge::ScalarValue(int64_t{i}))
                    .ok());
    EXPECT_TRUE(tx.Commit({.time = 0}).ok());  // the same changes on every call
  }
  return {doc.changes().begin(), doc.changes().end()};
}

Status ApplyRemote(Fixture& f, const std::string& ws, std::vector<automerge::StoredChange> c,
                   bool* waiting_for_deps = nullptr) {
  bool waiting = false;
  std::optional<Status> result;
  replication::Timestamps times;
  for (const auto& change : c) times[change.hash] = 5;
  f.hub.ApplyRemote(ws, std::move(c), std::move(times), [&](Result<bool> r) {
    result = r.ok() ? Status::Ok() : r.status();
    if (r.ok()) waiting = *r;
  });
  Settle(f.io);
  EXPECT_TRUE(result.has_value());
  if (waiting_for_deps) *waiting_for_deps = waiting;
  return result.value_or(Status::IoError("no answer"));
}

// Without a timestamp from the stream, a remote change is broadcast with its
// time in microseconds; a time a client chose (any int64, through its op's
// timestamp) saturates rather than overflows.
TEST(Workspace, RemoteChangeWithoutTimestampIsBroadcastAtItsTimeSaturated) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = f.Joined(ws);
  automerge::Document doc;
  for (int64_t time : {int64_t{7}, INT64_MIN, INT64_MAX}) {
    automerge::Transaction tx(doc, automerge::ActorId(16, 9));
    ASSERT_TRUE(tx.Put(automerge::kRoot, "t" + std::to_string(time), int64_t{1}).ok());
    ASSERT_TRUE(tx.Commit({.time = time}).ok());
  }
  std::optional<Result<bool>> result;
  f.hub.ApplyRemote("w", {doc.changes().begin(), doc.changes().end()}, {},
                    [&](Result<bool> r) { result = std::move(r); });
  Settle(f.io);
  ASSERT_TRUE(result && result->ok());
  auto m = a->messages();
  ASSERT_EQ(m.size(), 4u);
  EXPECT_NE(m[1].find("\"timestamp\":7000000}"), std::string::npos) << m[1];
  EXPECT_NE(m[2].find("\"timestamp\":-9223372036854775808}"), std::string::npos) << m[2];
  EXPECT_NE(m[3].find("\"timestamp\":9223372036854775807}"), std::string::npos) << m[3];
}

TEST(Workspace, RemoteChangesAreStoredThenBroadcastWithTheirKeysValues) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = f.Joined(ws);
  ASSERT_TRUE(ApplyRemote(f, "w", RemoteChanges(2)).ok());
  auto m = a->messages();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1], "{\"type\":\"op\",\"payload\":{\"key\":\"r0\",\"value\":0,\"timestamp\":5}}");
  EXPECT_EQ(m[2], "{\"type\":\"op\",\"payload\":{\"key\":\"r1\",\"value\":1,\"timestamp\":5}}");
  // Both changes and the heads record went into one synced write.
  EXPECT_EQ(f.store.writes(), 1u);
  EXPECT_TRUE(f.store.Get(storage::HeadsKey("w")).ok());
  // The same changes again: known, so nothing is written or sent.
  ASSERT_TRUE(ApplyRemote(f, "w", RemoteChanges(2)).ok());
  EXPECT_EQ(f.store.writes(), 1u);
  EXPECT_EQ(a->messages().size(), 3u);
}

// With no client the broadcasts are not built; a client joining while such
// changes are being written gets them in its init, and the changes after
// its join as broadcasts.
TEST(Workspace, RemoteChangesReachAClientThatJoinsWhileTheyAreWritten) {
  Fixture f;
  auto ws = f.hub.Get("w");
  Settle(f.io);
  auto cs = RemoteChanges(4);
  int answered = 0;
  auto count = [&](Result<bool> r) { answered += r.ok(); };
  auto b = std::make_shared<FakeClient>();
  // In this order on the workspace: two changes with nobody watching, the
  // join (behind their write), two more changes (behind the join).
  f.hub.ApplyRemote("w", {cs[0], cs[1]}, {}, count);
  ws->Join(b);
  f.hub.ApplyRemote("w", {cs[2], cs[3]}, {}, count);
  Settle(f.io);
  EXPECT_EQ(answered, 2);
  auto m = b->messages();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_NE(m[0].find("\"data\":{\"r0\":0,\"r1\":1}"), std::string::npos) << m[0];
  EXPECT_NE(m[1].find("\"key\":\"r2\""), std::string::npos) << m[1];
  EXPECT_NE(m[2].find("\"key\":\"r3\""), std::string::npos) << m[2];
}

TEST(Workspace, RemoteChangeWithMissingDepsWaitsAndIsNotStored) {
  Fixture f;
  auto changes = RemoteChanges(2);
  bool waiting = false;
  ASSERT_TRUE(ApplyRemote(f, "w", {changes[1]}, &waiting).ok());
  EXPECT_TRUE(waiting);  // the replicator asks its peers for the dep at once
  EXPECT_EQ(f.store.writes(), 0u);
  ASSERT_TRUE(ApplyRemote(f, "w", {changes[0]}, &waiting).ok());  // the dep: both apply
  EXPECT_FALSE(waiting);
  EXPECT_EQ(StoredChanges(f.store, "w"), 2u);
}

TEST(Workspace, FailedRemoteWriteIsReportedAndLeavesNothingBehind) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = f.Joined(ws);
  f.store.FailWritesAfter(0);
  Status s = ApplyRemote(f, "w", RemoteChanges(1));
  EXPECT_EQ(s.code(), Status::Code::kIoError);  // not acknowledged: NATS delivers it again
  EXPECT_EQ(a->messages().size(), 1u);
  f.store.FailWritesAfter(-1);
  // Redelivered: now it lands, as if the first attempt never happened.
  ASSERT_TRUE(ApplyRemote(f, "w", RemoteChanges(1)).ok());
  EXPECT_EQ(a->messages().size(), 2u);
}

TEST(Workspace, CorruptRemoteChangeIsRefusedWithoutChangingAnything) {
  Fixture f;
  auto changes = RemoteChanges(1);
  // An op on an object that does not exist here.
  automerge::Change c = changes[0].change;
  auto decoded = automerge::ReadChange(changes[0]);
  ASSERT_TRUE(decoded.ok());
  c = *decoded;
  c.ops[0].obj = automerge::OpId{77, 0};
  c.ops[0].key = automerge::Key::Map("x");
  auto bad = automerge::EncodeChange(std::move(c));
  Status s = ApplyRemote(f, "w", {bad});
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_EQ(f.store.writes(), 0u);
  EXPECT_EQ(ApplyRemote(f, "bad/id", RemoteChanges(1)).code(), Status::Code::kCorruption);
}

// Stores changes as a workspace's records, as if written before a restart.
void StoreRecords(storage::Store& store, const std::string& ws,
                  const std::vector<std::string>& records) {
  storage::WriteBatch batch;
  for (size_t i = 0; i < records.size(); ++i) batch.Put(storage::ChangeKey(ws, i), records[i]);
  ASSERT_TRUE(store.Write(batch).ok());
}

// A workspace loads its records in batches of a few thousand changes: more
// than one batch loads whole, in order.
TEST(Workspace, ManyStoredChangesLoadWholeAfterARestart) {
  Fixture f;
  std::vector<std::string> records;
  for (const auto& c : RemoteChanges(5000)) records.emplace_back(AsChars(c.bytes));
  StoreRecords(f.store, "w", records);
  auto a = std::make_shared<FakeClient>();
  f.hub.Get("w")->Join(a);
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 1u);
  EXPECT_NE(a->messages()[0].find("\"type\":\"init\""), std::string::npos);
  EXPECT_NE(a->messages()[0].find("\"r0\":0"), std::string::npos);
  EXPECT_NE(a->messages()[0].find("\"r4999\":4999"), std::string::npos);
}

// A record that is not a change chunk fails the load: the client is told
// (500) and nothing is half-loaded or written.
TEST(Workspace, CorruptStoredChangeFailsTheLoadWith500) {
  Fixture f;
  std::vector<std::string> records;
  for (const auto& c : RemoteChanges(3)) records.emplace_back(AsChars(c.bytes));
  records.insert(records.begin() + 1, "not a change");
  StoreRecords(f.store, "w", records);
  size_t writes = f.store.writes();
  auto a = std::make_shared<FakeClient>();
  f.hub.Get("w")->Join(a);
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 1u);
  EXPECT_NE(a->messages()[0].find("\"code\":500"), std::string::npos) << a->messages()[0];
  EXPECT_EQ(f.store.writes(), writes);
}

// A write fails and the reload after it fails too (a stored change is
// unreadable): a client joining then is told and closed with 1011, not left
// waiting. Once the store is readable again, the next op reloads the
// workspace and is stored and broadcast.
TEST(Workspace, FailedReloadClosesJoinersAndTheNextOpRetriesIt) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->SubmitOp(a, Writer(), Op("kept", 1), [] {});
  Settle(f.io);
  auto record = f.store.Get(storage::ChangeKey("w", 0));
  ASSERT_TRUE(record.ok());
  auto put = [&](std::string value) {
    storage::WriteBatch b;
    b.Put(storage::ChangeKey("w", 0), std::move(value));
    ASSERT_TRUE(f.store.Write(b).ok());
  };
  put("not a change");
  f.store.FailWritesAfter(0);
  auto c = std::make_shared<FakeClient>();
  ws->SubmitOp(a, Writer(), Op("lost", 2), [] {});
  ws->Join(c);
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 3u);
  EXPECT_NE(a->messages()[2].find("\"code\":500"), std::string::npos) << a->messages()[2];
  ASSERT_EQ(c->messages().size(), 1u);
  EXPECT_NE(c->messages()[0].find("\"code\":500"), std::string::npos) << c->messages()[0];
  EXPECT_EQ(c->close_code(), 1011);

  f.store.FailWritesAfter(-1);
  put(*record);
  ws->SubmitOp(a, Writer(), Op("after", 3), [] {});
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 4u);
  EXPECT_NE(a->messages()[3].find("\"key\":\"after\""), std::string::npos) << a->messages()[3];
  auto d = std::make_shared<FakeClient>();
  ws->Join(d);
  Settle(f.io);
  ASSERT_EQ(d->messages().size(), 1u);
  EXPECT_NE(d->messages()[0].find("\"data\":{\"after\":3,\"kept\":1}"), std::string::npos)
      << d->messages()[0];
}

TEST(Workspace, HubKeepsTheMostRecentlyUsedWorkspacesLoaded) {
  boost::asio::io_context io;
  storage::MemoryStore store;
  storage::Committer committer{store};
  Hub hub{io.get_executor(), store, committer, automerge::ActorId(16, 7), nullptr, nullptr, 2};
  std::weak_ptr<Workspace> a = hub.Get("a");
  std::weak_ptr<Workspace> b = hub.Get("b");
  EXPECT_FALSE(a.expired());  // warm, though nobody holds them
  EXPECT_EQ(hub.loaded(), 2u);
  hub.Get("a");  // a is now the most recent: c evicts b
  hub.Get("c");
  EXPECT_FALSE(a.expired());
  EXPECT_TRUE(b.expired());
  EXPECT_EQ(hub.loaded(), 2u);             // a and c: b was unloaded
  EXPECT_NE(hub.Get("b").get(), nullptr);  // loaded again on demand
  hub.ReleaseWarm();
  EXPECT_TRUE(a.expired());
  EXPECT_EQ(hub.loaded(), 0u);
}

TEST(Workspace, SyncStepsBetweenTwoHubsConverge) {
  Fixture x, y;
  ASSERT_TRUE(ApplyRemote(x, "w", RemoteChanges(3, "x")).ok());
  auto sx = std::make_shared<automerge::SyncState>();
  auto sy = std::make_shared<automerge::SyncState>();
  std::optional<Bytes> to_y;
  auto step = [](Fixture& f, std::shared_ptr<automerge::SyncState> st, std::optional<Bytes> in) {
    std::optional<Result<std::optional<Bytes>>> out;
    f.hub.Sync("w", st, std::move(in), [&](Result<std::optional<Bytes>> r) { out = std::move(r); });
    Settle(f.io);
    EXPECT_TRUE(out.has_value() && out->ok());
    return out && out->ok() ? **out : std::nullopt;
  };
  auto msg = step(x, sx, std::nullopt);
  for (int round = 0; msg && round < 10; ++round) {
    auto reply = step(y, sy, msg);
    if (!reply) break;
    msg = step(x, sx, reply);
  }
  EXPECT_EQ(StoredChanges(y.store, "w"), 3u);
  // A malformed sync message is refused and stores nothing.
  std::optional<Result<std::optional<Bytes>>> out;
  y.hub.Sync("w", sy, Bytes{0x42, 0x05},
             [&](Result<std::optional<Bytes>> r) { out = std::move(r); });
  Settle(y.io);
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(out->ok());
}

}  // namespace
}  // namespace etherply::server
