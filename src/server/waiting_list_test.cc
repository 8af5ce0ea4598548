#include "server/waiting_list.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace etherply::server {
namespace {

TEST(WaitingListTest, ClosesTheOldestFirst) {
  WaitingList list;
  std::vector<uint64_t> closed;
  auto close = [&](uint64_t ticket) { closed.push_back(ticket); };
  uint64_t a = list.Add(close);
  uint64_t b = list.Add(close);
  list.Add(close);
  EXPECT_TRUE(list.CloseOldest());
  EXPECT_TRUE(list.CloseOldest());
  EXPECT_EQ(closed, (std::vector<uint64_t>{a, b}));
  EXPECT_EQ(list.size(), 1u);
}

TEST(WaitingListTest, RemovedConnectionsAreNotClosed) {
  WaitingList list;
  std::string closed;
  uint64_t a = list.Add([&](uint64_t) { closed += 'a'; });
  list.Add([&](uint64_t) { closed += 'b'; });
  list.Remove(a);
  EXPECT_TRUE(list.CloseOldest());
  EXPECT_EQ(closed, "b");
}

TEST(WaitingListTest, NothingToCloseWhenNoneWaits) {
  WaitingList list;
  EXPECT_FALSE(list.CloseOldest());
  uint64_t a = list.Add([](uint64_t) { FAIL() << "removed, then closed"; });
  list.Remove(a);
  EXPECT_FALSE(list.CloseOldest());
}

TEST(WaitingListTest, RemoveAfterCloseOldestIsHarmless) {
  WaitingList list;
  int closes = 0;
  uint64_t a = list.Add([&](uint64_t) { ++closes; });
  uint64_t b = list.Add([&](uint64_t) { ++closes; });
  ASSERT_TRUE(list.CloseOldest());
  EXPECT_FALSE(list.Remove(a));  // picked: the connection must close
  EXPECT_EQ(list.size(), 1u);
  EXPECT_TRUE(list.Remove(b));
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(closes, 1);
}

// `close` runs without the list's lock: it may take the list again, as a
// connection closed in place leaves it.
TEST(WaitingListTest, CloseMayUseTheList) {
  WaitingList list;
  uint64_t b = 0;
  list.Add([&](uint64_t) { list.Remove(b); });
  b = list.Add([](uint64_t) {});
  ASSERT_TRUE(list.CloseOldest());
  EXPECT_EQ(list.size(), 0u);
}

// Each connection is closed at most once, and each that never leaves the
// list by itself is closed once it is drained.
TEST(WaitingListTest, ConcurrentAddsRemovesAndCloses) {
  constexpr int kThreads = 4, kEach = 10'000;
  WaitingList list;
  std::vector<std::atomic<int>> closes(kThreads * kEach);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        uint64_t ticket = list.Add([&, n = t * kEach + i](uint64_t) { ++closes[n]; });
        if (i % 2) list.Remove(ticket);
      }
    });
  std::thread closer([&] {
    for (int i = 0; i < kEach; ++i) list.CloseOldest();
  });
  for (auto& t : threads) t.join();
  closer.join();
  while (list.CloseOldest()) {
  }
  EXPECT_EQ(list.size(), 0u);
  for (int n = 0; n < kThreads * kEach; ++n) {
    EXPECT_LE(closes[n].load(), 1) << n;
    if (n % 2 == 0) {
      EXPECT_EQ(closes[n].load(), 1) << n;
    }
  }
}

}  // namespace
}  // namespace etherply::server
