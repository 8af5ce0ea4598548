#include "replication/outbox.h"

#include <gtest/gtest.h>

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
