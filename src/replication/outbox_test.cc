#include "replication/outbox.h"

#include <gtest/gtest.h>

#include <functional>
#include <utility>

#include "automerge/document.h"
#include "automerge/transaction.h"
#include "storage/memory_store.h"

namespace etherply::replication {
namespace {

using namespace std::chrono_literals;

std::vector<automerge::StoredChange> Changes(int n) {
  automerge::Document doc;
  for (int i = 0; i < n; ++i) {
    automerge::Transaction tx(doc, automerge::ActorId(16, 3));
    EXPECT_TRUE(
        tx.Put(automerge::kRoot, "k" + std::to_string(i), automerge::ScalarValue(int64_t{i})).ok());
    EXPECT_TRUE(tx.Commit({}).ok());
  }
  return {doc.changes().begin(), doc.changes().end()};
}

// Stages each change in its own batch, writes it, and reports the outcome.
void StageAll(Outbox& o, storage::Store& store, const std::vector<automerge::StoredChange>& cs,
              int64_t first_ts = 100) {
  int64_t ts = first_ts;
  for (const auto& c : cs) {
    storage::WriteBatch batch;
    uint64_t t = o.Stage("ws", c, ts++, batch);
    o.Committed(t, store.Write(batch));
  }
}

TEST(Outbox, RecordsComeBackInOrderWithEverything) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(3);
  StageAll(**o, store, cs);
  auto items = (*o)->Next(10, 0ms);
  ASSERT_EQ(items.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(items[i].workspace, "ws");
    EXPECT_EQ(items[i].timestamp, 100 + int64_t(i));
    EXPECT_EQ(items[i].hash, cs[i].hash);
    EXPECT_EQ(items[i].chunk, std::string(AsChars(cs[i].bytes)));
  }
  EXPECT_EQ((*o)->backlog(), 3u);
  // Each record is handed out once, but stays until removed.
  EXPECT_TRUE((*o)->Next(10, 0ms).empty());
  ASSERT_TRUE((*o)->Remove({items[0], items[1]}).ok());
  EXPECT_EQ((*o)->backlog(), 1u);
  (*o)->Rewind();
  auto rest = (*o)->Next(10, 0ms);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].hash, cs[2].hash);
}

// The publisher keeps publishing while earlier records wait for their
// acknowledgments, removes the acknowledged ones, and after a failure
// starts again from the oldest record left.
TEST(Outbox, NextHandsOutNewRecordsWhileEarlierOnesAreInFlight) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(5);
  StageAll(**o, store, {cs[0], cs[1]});
  auto first = (*o)->Next(10, 0ms);
  ASSERT_EQ(first.size(), 2u);
  StageAll(**o, store, {cs[2], cs[3], cs[4]});
  auto second = (*o)->Next(2, 0ms);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].hash, cs[2].hash);
  EXPECT_EQ(second[1].hash, cs[3].hash);
  ASSERT_TRUE((*o)->Remove({first[0]}).ok());
  auto third = (*o)->Next(10, 0ms);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].hash, cs[4].hash);
  // A publish failed: everything not removed comes again, oldest first.
  (*o)->Rewind();
  auto again = (*o)->Next(10, 0ms);
  ASSERT_EQ(again.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(again[i].hash, cs[i + 1].hash) << i;
  EXPECT_EQ((*o)->backlog(), 4u);
}

TEST(Outbox, AFailedBatchLeavesNoRecord) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(2);
  store.FailWritesAfter(0);
  StageAll(**o, store, {cs[0]});
  store.FailWritesAfter(-1);
  StageAll(**o, store, {cs[1]});
  auto items = (*o)->Next(10, 0ms);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].hash, cs[1].hash);
  EXPECT_EQ((*o)->backlog(), 1u);
}

TEST(Outbox, UnpublishedRecordsSurviveARestartAndNewOnesFollowThem) {
  storage::MemoryStore store;
  auto cs = Changes(4);
  {
    auto o = Outbox::Open(store);
    ASSERT_TRUE(o.ok());
    StageAll(**o, store, {cs[0], cs[1]});
    auto items = (*o)->Next(1, 0ms);
    ASSERT_TRUE((*o)->Remove(items).ok());  // cs[0] published
  }
  auto o = Outbox::Open(store);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ((*o)->backlog(), 1u);
  StageAll(**o, store, {cs[2], cs[3]});
  auto items = (*o)->Next(10, 0ms);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].hash, cs[1].hash);
  EXPECT_EQ(items[1].hash, cs[2].hash);
  EXPECT_EQ(items[2].hash, cs[3].hash);
  EXPECT_LT(items[0].seq, items[1].seq);  // sequence numbers continue after the old ones
}

TEST(Outbox, BeyondTheMemoryBoundRecordsWaitOnDiskAndComeBackInOrder) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store, /*max_in_memory=*/2);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(5);
  StageAll(**o, store, cs);
  EXPECT_EQ((*o)->backlog(), 5u);
  std::vector<automerge::ChangeHash> seen;
  for (int round = 0; round < 5 && seen.size() < 5; ++round) {
    auto items = (*o)->Next(10, 0ms);
    ASSERT_FALSE(items.empty());
    EXPECT_LE(items.size(), 2u);
    for (const auto& i : items) seen.push_back(i.hash);
    ASSERT_TRUE((*o)->Remove(items).ok());
  }
  ASSERT_EQ(seen.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(seen[i], cs[i].hash) << i;
  EXPECT_EQ((*o)->backlog(), 0u);
  EXPECT_TRUE((*o)->Next(10, 0ms).empty());
}

// A MemoryStore that counts the records its scans hand out, and can run
// something in the middle of the next scan (after it has read its records).
class CountingStore : public storage::MemoryStore {
 public:
  Status ScanFrom(std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& f) override {
    return MemoryStore::ScanFrom(prefix, start, [&](std::string_view k, std::string_view v) {
      ++visited;
      if (auto hook = std::exchange(during_next_scan, nullptr)) hook();
      return f(k, v);
    });
  }
  int visited = 0;
  std::function<void()> during_next_scan;
};

// Drains the outbox; returns the hashes in the order handed out.
std::vector<automerge::ChangeHash> Drain(Outbox& o) {
  std::vector<automerge::ChangeHash> seen;
  for (int round = 0; round < 100; ++round) {
    auto items = o.Next(100, 0ms);
    if (items.empty()) break;
    for (const auto& i : items) seen.push_back(i.hash);
    EXPECT_TRUE(o.Remove(items).ok());
  }
  return seen;
}

std::vector<automerge::ChangeHash> Hashes(const std::vector<automerge::StoredChange>& cs) {
  std::vector<automerge::ChangeHash> out;
  for (const auto& c : cs) out.push_back(c.hash);
  return out;
}

TEST(Outbox, ARecordCommittedWhileTheStoreIsReadComesLater) {
  CountingStore store;
  auto o = Outbox::Open(store, 2);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(4);
  StageAll(**o, store, {cs[0], cs[1], cs[2]});  // cs[2] on disk only
  auto first = (*o)->Next(10, 0ms);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_TRUE((*o)->Remove(first).ok());  // memory is empty: the next Next loads
  // cs[3] is written and reported while the load reads the store (after
  // the store's snapshot: the load does not see it).
  store.during_next_scan = [&] { StageAll(**o, store, {cs[3]}); };
  auto seen = Drain(**o);
  EXPECT_EQ(seen, Hashes({cs[2], cs[3]}));
  EXPECT_EQ((*o)->backlog(), 0u);
}

TEST(Outbox, ARecordWrittenButNotYetReportedIsHandedOutOnce) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store, 3);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(5);
  StageAll(**o, store, {cs[0], cs[1], cs[2], cs[3]});  // cs[3] on disk only
  auto first = (*o)->Next(10, 0ms);
  ASSERT_EQ(first.size(), 3u);
  // cs[4]'s group is written; its Committed call is still to come (the
  // committer reports a group after writing all of it).
  storage::WriteBatch batch;
  uint64_t ticket = (*o)->Stage("ws", cs[4], 0, batch);
  ASSERT_TRUE(store.Write(batch).ok());
  ASSERT_TRUE((*o)->Remove(first).ok());
  auto loaded = (*o)->Next(10, 0ms);  // loads from the store: cs[3], and cs[4]?
  (*o)->Committed(ticket, Status::Ok());
  std::vector<automerge::ChangeHash> seen;
  for (const auto& i : loaded) seen.push_back(i.hash);
  ASSERT_TRUE((*o)->Remove(loaded).ok());
  for (const auto& h : Drain(**o)) seen.push_back(h);
  EXPECT_EQ(seen, Hashes({cs[3], cs[4]}));
  EXPECT_EQ((*o)->backlog(), 0u);
}

TEST(Outbox, DrainingABacklogReadsEachRecordFromTheStoreOnce) {
  CountingStore store;
  constexpr int kMax = 5;
  auto o = Outbox::Open(store, kMax);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(100);
  StageAll(**o, store, cs);  // 5 in memory, 95 on disk only
  store.visited = 0;
  EXPECT_EQ(Drain(**o), Hashes(cs));
  // Each load reads its records and looks at the next one; none reads the
  // removed records or the whole rest again.
  EXPECT_LE(store.visited, 95 + 95 / kMax);
}

TEST(Outbox, ARecordCommittedOutOfOrderBeyondTheBoundIsNotSkipped) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store, /*max_in_memory=*/1);
  ASSERT_TRUE(o.ok());
  auto cs = Changes(4);
  StageAll(**o, store, {cs[0], cs[1]});  // cs[1] on disk only
  auto first = (*o)->Next(10, 0ms);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE((*o)->Remove(first).ok());
  auto second = (*o)->Next(10, 0ms);  // loaded from disk
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].hash, cs[1].hash);
  // Two more staged, committed in the opposite order, both to disk only
  // (memory holds `second`).
  storage::WriteBatch b2, b3;
  uint64_t t2 = (*o)->Stage("ws", cs[2], 0, b2);
  uint64_t t3 = (*o)->Stage("ws", cs[3], 0, b3);
  (*o)->Committed(t3, store.Write(b3));
  (*o)->Committed(t2, store.Write(b2));
  ASSERT_TRUE((*o)->Remove(second).ok());
  EXPECT_EQ(Drain(**o), Hashes({cs[2], cs[3]}));  // staging order
}

TEST(Outbox, ABacklogBeyondTheBoundSurvivesARestart) {
  storage::MemoryStore store;
  auto cs = Changes(7);
  {
    auto o = Outbox::Open(store, 2);
    ASSERT_TRUE(o.ok());
    StageAll(**o, store, {cs[0], cs[1], cs[2], cs[3], cs[4]});
    ASSERT_TRUE((*o)->Remove((*o)->Next(1, 0ms)).ok());  // cs[0] published
  }
  auto o = Outbox::Open(store, 2);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ((*o)->backlog(), 4u);
  StageAll(**o, store, {cs[5], cs[6]});
  EXPECT_EQ((*o)->backlog(), 6u);
  std::vector<automerge::ChangeHash> seen;
  uint64_t last_seq = 0;
  for (int round = 0; round < 10 && seen.size() < 6; ++round) {
    auto items = (*o)->Next(10, 0ms);
    for (const auto& i : items) {
      EXPECT_GT(i.seq, last_seq);  // new sequence numbers follow the old ones
      last_seq = i.seq;
      seen.push_back(i.hash);
    }
    ASSERT_TRUE((*o)->Remove(items).ok());
  }
  ASSERT_EQ(seen.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(seen[i], cs[i + 1].hash) << i;
  EXPECT_EQ((*o)->backlog(), 0u);
}

TEST(Outbox, AFailedRemoveKeepsTheRecords) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store);
  ASSERT_TRUE(o.ok());
  StageAll(**o, store, Changes(1));
  auto items = (*o)->Next(10, 0ms);
  store.FailWritesAfter(0);
  EXPECT_FALSE((*o)->Remove(items).ok());
  store.FailWritesAfter(-1);
  (*o)->Rewind();
  EXPECT_EQ((*o)->Next(10, 0ms).size(), 1u);
  EXPECT_EQ((*o)->backlog(), 1u);
}

TEST(Outbox, AMalformedRecordFailsOpenAndDropsNothing) {
  storage::MemoryStore store;
  storage::WriteBatch batch;
  batch.Put(std::string("r/o/") + std::string(7, '\0') + '\1', "\x05short");
  ASSERT_TRUE(store.Write(batch).ok());
  auto o = Outbox::Open(store);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), Status::Code::kCorruption);
  int records = 0;
  ASSERT_TRUE(store
                  .Scan("r/o/",
                        [&](std::string_view, std::string_view) {
                          ++records;
                          return true;
                        })
                  .ok());
  EXPECT_EQ(records, 1);
}

// Stages `good` records, adds one more record (key, value) to the store
// behind the outbox's back, and opens the outbox again.
Status ReopenWithAnAddedRecord(size_t max_in_memory, int good, const std::string& key,
                               const std::string& value) {
  storage::MemoryStore store;
  {
    auto o = Outbox::Open(store, max_in_memory);
    EXPECT_TRUE(o.ok());
    if (o.ok()) StageAll(**o, store, Changes(good));
  }
  storage::WriteBatch batch;
  batch.Put(key, value);
  EXPECT_TRUE(store.Write(batch).ok());
  auto o = Outbox::Open(store, max_in_memory);
  return o.ok() ? Status::Ok() : o.status();
}

TEST(Outbox, AMalformedRecordBeyondTheBoundFailsOpen) {
  // After the three good ones, with two in memory.
  Status s = ReopenWithAnAddedRecord(2, 3, std::string("r/o/") + std::string(7, '\xff') + '\1',
                                     "\x05short");
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
}

TEST(Outbox, AMalformedKeyBelowTheFirstRecordFailsOpen) {
  Status s = ReopenWithAnAddedRecord(100, 1, std::string("r/o/") + std::string(3, '\0'), "x");
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
}

TEST(Outbox, CloseWakesAWaitingNext) {
  storage::MemoryStore store;
  auto o = Outbox::Open(store);
  ASSERT_TRUE(o.ok());
  std::thread t([&] { (*o)->Close(); });
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE((*o)->Next(10, 10s).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  t.join();
}

}  // namespace
}  // namespace etherply::replication
