#include "storage/committer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/testutil.h"
#include "storage/memory_store.h"

namespace etherply::storage {
namespace {

// A Store that logs the keys of each successful write in the order the
// writes happened, notes writes that overlap, and can hold a write until
// released and fail writes on demand.
class TestStore : public Store {
 public:
  Status Write(const WriteBatch& batch) override {
    std::unique_lock lock(mu_);
    ++entered_;
    if (++in_write_ > 1) overlapped_ = true;
    bool fail = fail_ || (fail_every_ > 0 && entered_ % fail_every_ == 0);
    if (hold_) {
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_; });
      held_ = false;
      fail = fail_held_;
    }
    lock.unlock();
    std::this_thread::yield();  // give an overlapping write a chance to show
    lock.lock();
    --in_write_;
    if (fail) return Status::IoError("injected write failure");
    for (const auto& r : batch.records()) keys_.push_back(r.key);
    return memory_.Write(batch);
  }
  Result<std::string> Get(std::string_view key) override { return memory_.Get(key); }
  Status ScanFrom(std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& f) override {
    return memory_.ScanFrom(prefix, start, f);
  }

  // Every write fails (applying nothing) while on.
  void FailWrites(bool fail) {
    std::lock_guard lock(mu_);
    fail_ = fail;
  }
  // Every nth write fails (applying nothing), counting from the first.
  void FailEveryNthWrite(int n) {
    std::lock_guard lock(mu_);
    fail_every_ = n;
  }
  // The next write waits in Write until Release, which decides its outcome.
  void HoldNextWrite() {
    std::lock_guard lock(mu_);
    hold_ = true;
  }
  void WaitUntilHeld() {
    std::unique_lock lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return held_; }));
  }
  void Release(bool fail = false) {
    std::lock_guard lock(mu_);
    hold_ = false;
    fail_held_ = fail;
    cv_.notify_all();
  }

  std::vector<std::string> keys() {
    std::lock_guard lock(mu_);
    return keys_;
  }
  int entered() {  // Write calls, failed ones included
    std::lock_guard lock(mu_);
    return entered_;
  }
  bool overlapped() {
    std::lock_guard lock(mu_);
    return overlapped_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  MemoryStore memory_;
  std::vector<std::string> keys_;
  int entered_ = 0;
  int in_write_ = 0;
  bool overlapped_ = false;
  bool fail_ = false;
  int fail_every_ = 0;
  bool hold_ = false;
  bool held_ = false;
  bool fail_held_ = false;
};

// Callback outcomes in the order the callbacks ran: "key ok" or "key fail".
class Events {
 public:
  Committer::Callback For(std::string key) {
    return [this, key](const Status& s) { Add(key + (s.ok() ? " ok" : " fail")); };
  }
  void Add(std::string event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
    cv_.notify_all();
  }
  // Waits (a minute at most: a hang fails the test) until there are n.
  std::vector<std::string> WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return events_.size() >= n; }))
        << "only " << events_.size() << " of " << n << " callbacks ran";
    return events_;
  }
  std::vector<std::string> Now() {
    std::lock_guard lock(mu_);
    return events_;
  }
  // As For, but the callback then stays (on the writer thread) until Release.
  Committer::Callback Holding(std::string key) {
    return [this, key](const Status& s) {
      Add(key + (s.ok() ? " ok" : " fail"));
      released_.Wait();
    };
  }
  void Release() { released_.Open(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
  testutil::Gate released_;
};

WriteBatch Batch(const std::string& key) {
  WriteBatch b;
  b.Put(key, "v");
  return b;
}

using Strings = std::vector<std::string>;

// The records that landed, by stream, from keys "stream/n", in write order.
std::map<uint64_t, std::vector<int>> Landed(TestStore& store) {
  std::map<uint64_t, std::vector<int>> landed;
  for (const std::string& key : store.keys()) {
    size_t slash = key.find('/');
    landed[std::stoi(key.substr(0, slash))].push_back(std::stoi(key.substr(slash + 1)));
  }
  return landed;
}

// 0, 1, ..., count - 1.
std::vector<int> InOrder(int count) {
  std::vector<int> v(count);
  for (int n = 0; n < count; ++n) v[n] = n;
  return v;
}

// What is submitted while a write is under way goes as one group, in one
// write, after it; writes never overlap.
TEST(Committer, GroupsWhatQueuesDuringAWrite) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.HoldNextWrite();
  committer.Submit(1, Batch("a"), events.For("a"));
  store.WaitUntilHeld();
  committer.Submit(1, Batch("b"), events.For("b"));
  committer.Submit(2, Batch("c"), events.For("c"));
  EXPECT_EQ(events.Now(), Strings{}) << "ran before the write under way finished";
  store.Release();
  EXPECT_EQ(events.WaitFor(3), (Strings{"a ok", "b ok", "c ok"}));
  EXPECT_EQ(store.keys(), (Strings{"a", "b", "c"}));
  EXPECT_EQ(store.entered(), 2);  // a, then b and c as one group
  EXPECT_FALSE(store.overlapped());
}

// Many threads, each its own stream: each stream's callbacks run in its
// submission order and its records land in that order; no two writes overlap.
// (Under this load groups are never lone, so nobody leads: see
// LeadersAndTheWriterThreadTakeTurnsInOrder.)
TEST(Committer, EachStreamKeepsItsOrderUnderConcurrency) {
  constexpr int kThreads = 8, kOps = 300;
  TestStore store;
  std::mutex mu;
  std::map<uint64_t, std::vector<int>> done;  // stream -> op numbers, in callback order
  int failures = 0;
  {
    Committer committer(store);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int n = 0; n < kOps; ++n) {
          committer.Submit(t, Batch(std::to_string(t) + "/" + std::to_string(n)),
                           [&, t, n](const Status& s) {
                             std::lock_guard lock(mu);
                             done[t].push_back(n);
                             if (!s.ok()) ++failures;
                           });
        }
      });
    }
    for (auto& t : threads) t.join();
  }  // the destructor writes what is still queued
  EXPECT_FALSE(store.overlapped());
  EXPECT_EQ(failures, 0);
  std::map<uint64_t, std::vector<int>> landed = Landed(store);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(done[t], InOrder(kOps)) << "callbacks of stream " << t;
    EXPECT_EQ(landed[t], InOrder(kOps)) << "records of stream " << t;
  }
}

TEST(Committer, FailedWriteFailsItsStreamUntilClearFailure) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.FailWrites(true);
  committer.Submit(1, Batch("a"), events.For("a"));
  events.WaitFor(1);
  store.FailWrites(false);
  committer.Submit(1, Batch("b"), events.For("b"));  // rejected: no write
  events.WaitFor(2);
  EXPECT_EQ(store.entered(), 1);
  committer.Submit(2, Batch("c"), events.For("c"));  // another stream: unaffected
  events.WaitFor(3);
  committer.ClearFailure(1);
  committer.Submit(1, Batch("d"), events.For("d"));
  EXPECT_EQ(events.WaitFor(4), (Strings{"a fail", "b fail", "c ok", "d ok"}));
  EXPECT_EQ(store.keys(), (Strings{"c", "d"}));
}

// A group that fails fails every stream in it.
TEST(Committer, FailedGroupFailsEveryStreamInIt) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.HoldNextWrite();
  committer.Submit(9, Batch("x"), events.For("x"));
  store.WaitUntilHeld();
  committer.Submit(1, Batch("a"), events.For("a"));
  committer.Submit(2, Batch("b"), events.For("b"));
  store.FailWrites(true);
  store.Release(/*fail=*/true);
  EXPECT_EQ(events.WaitFor(3), (Strings{"x fail", "a fail", "b fail"}));
  store.FailWrites(false);
  EXPECT_EQ(store.entered(), 2);  // x alone, then a and b as one group
  committer.Submit(1, Batch("c"), events.For("c"));
  committer.Submit(2, Batch("d"), events.For("d"));
  committer.Submit(3, Batch("e"), events.For("e"));
  EXPECT_EQ(events.WaitFor(6), (Strings{"x fail", "a fail", "b fail", "c fail", "d fail", "e ok"}));
  EXPECT_EQ(store.entered(), 3);  // only e was written
  EXPECT_EQ(store.keys(), Strings{"e"});
}

// Queued behind a write of its stream that then fails: never lands, fails
// after that write's callback; other streams of the same group still land.
TEST(Committer, BatchQueuedBehindAFailedWriteOfItsStreamNeverLands) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.HoldNextWrite();
  committer.Submit(1, Batch("a"), events.For("a"));
  store.WaitUntilHeld();
  committer.Submit(1, Batch("b"), events.For("b"));
  committer.Submit(2, Batch("c"), events.For("c"));
  store.Release(/*fail=*/true);
  EXPECT_EQ(events.WaitFor(3), (Strings{"a fail", "b fail", "c ok"}));
  EXPECT_EQ(store.keys(), Strings{"c"});
}

// ClearFailure lets only later submissions write: one made while the stream
// was failed stays rejected, even if it is still queued when the failure is
// cleared.
TEST(Committer, ClearFailureDoesNotReleaseEarlierSubmissions) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.FailWrites(true);
  committer.Submit(1, Batch("a"), events.Holding("a"));
  events.WaitFor(1);  // a's callback is running; stream 1 is failed
  store.FailWrites(false);
  committer.Submit(1, Batch("b"), events.For("b"));
  committer.ClearFailure(1);
  committer.Submit(1, Batch("c"), events.For("c"));
  events.Release();
  EXPECT_EQ(events.WaitFor(3), (Strings{"a fail", "b fail", "c ok"}));
  EXPECT_EQ(store.keys(), Strings{"c"});
}

// A callback may submit (and must not deadlock doing so): its batch is
// written after it returns, in order.
TEST(Committer, CallbackMaySubmitAgain) {
  TestStore store;
  Committer committer(store);
  Events events;
  std::function<void(int)> submit = [&](int n) {
    std::string key = "k" + std::to_string(n);
    committer.Submit(1, Batch(key), [&, key, n](const Status& s) {
      if (n < 4) submit(n + 1);  // before this callback returns
      events.Add(key + (s.ok() ? " ok" : " fail"));
    });
  };
  submit(0);
  EXPECT_EQ(events.WaitFor(5), (Strings{"k0 ok", "k1 ok", "k2 ok", "k3 ok", "k4 ok"}));
  EXPECT_EQ(store.keys(), (Strings{"k0", "k1", "k2", "k3", "k4"}));
  EXPECT_FALSE(store.overlapped());
}

// A callback may clear its stream's failure and submit again.
TEST(Committer, CallbackMayClearFailureAndRetry) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.FailWrites(true);
  committer.Submit(1, Batch("a"), [&](const Status& s) {
    events.Add(s.ok() ? "a ok" : "a fail");
    store.FailWrites(false);
    committer.ClearFailure(1);
    committer.Submit(1, Batch("b"), events.For("b"));
  });
  EXPECT_EQ(events.WaitFor(2), (Strings{"a fail", "b ok"}));
  EXPECT_EQ(store.keys(), Strings{"b"});
}

// The destructor waits for the write under way, then writes what was queued
// behind it and what their callbacks submit, before it returns.
// Destroys `committer` on another thread while the store holds a write, then
// releases the write, and adds "destroyed" once the destructor returned: if
// it did not wait for the write, "destroyed" comes before the write's
// callbacks. (Had the destructor not started within 20 ms, a test passes.)
void DestroyDuringHeldWrite(std::unique_ptr<Committer>& committer, TestStore& store,
                            Events& events) {
  std::thread destroy([&] {
    committer.reset();
    events.Add("destroyed");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  store.Release();
  destroy.join();
}

TEST(Committer, DestructionWritesWhatIsQueued) {
  constexpr int kQueued = 50;
  TestStore store;
  auto committer = std::make_unique<Committer>(store);
  Committer* c = committer.get();  // committer.reset() nulls the pointer before deleting
  Events events;
  store.HoldNextWrite();
  c->Submit(1, Batch("first"), events.For("first"));
  store.WaitUntilHeld();
  for (int i = 0; i < kQueued; ++i) {
    std::string key = "q" + std::to_string(i);
    c->Submit(i % 5, Batch(key), [&, key](const Status& s) {
      events.Add(key + (s.ok() ? " ok" : " fail"));
      // Submitted while the destructor is draining the queue.
      c->Submit(100, Batch(key + "+"), events.For(key + "+"));
    });
  }
  DestroyDuringHeldWrite(committer, store, events);
  auto all = events.Now();
  ASSERT_EQ(all.size(), 1 + 2 * kQueued + 1u);
  EXPECT_EQ(all.front(), "first ok");
  EXPECT_EQ(all.back(), "destroyed");
  for (const std::string& e : all) {
    if (e == "destroyed") continue;
    EXPECT_EQ(e.substr(e.size() - 3), " ok") << e;
  }
  EXPECT_EQ(store.keys().size(), 1 + 2 * kQueued + 0u);
  EXPECT_FALSE(store.overlapped());
}

// Callbacks run before their group counts as written: a test that needs the
// committer idle waits for it (a minute at most).
void WaitUntilIdle(const Committer& committer) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!committer.idle() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_TRUE(committer.idle());
}

// Leading (committer.h): at one write at a time, the submitter writes its
// batch itself, on its own thread, and the writer thread is not woken.
TEST(Committer, LoneBatchIsWrittenByItsSubmitter) {
  TestStore store;
  Committer committer(store);
  Events events;
  std::thread::id ran_on;
  ASSERT_TRUE(committer.SubmitMayLead(1, Batch("a"), [&](const Status& s) {
    ran_on = std::this_thread::get_id();
    events.Add(s.ok() ? "a ok" : "a fail");
  }));
  // Not woken: the writer thread leaves the batch to its leader.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(store.entered(), 0) << "the writer thread wrote a batch left to its leader";
  committer.Lead();
  EXPECT_EQ(events.Now(), Strings{"a ok"}) << "Lead returned before the write and its callback";
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(store.keys(), Strings{"a"});
}

// Once a group held more than one batch, the writer thread writes until
// kLoneGroupsToLead lone groups in a row show the load is one write at a time.
TEST(Committer, LeadsOnlyAfterLoneGroupsInARow) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.HoldNextWrite();
  committer.Submit(1, Batch("a"), events.For("a"));
  store.WaitUntilHeld();
  EXPECT_FALSE(committer.SubmitMayLead(1, Batch("b"), events.For("b"))) << "led during a write";
  committer.Submit(2, Batch("c"), events.For("c"));
  store.Release();
  events.WaitFor(3);  // b and c: one group of two
  WaitUntilIdle(committer);
  for (int i = 0; i < Committer::kLoneGroupsToLead; ++i) {
    std::string key = "lone" + std::to_string(i);
    EXPECT_FALSE(committer.SubmitMayLead(1, Batch(key), events.For(key))) << "after " << i;
    events.WaitFor(4 + i);
    WaitUntilIdle(committer);
  }
  EXPECT_TRUE(committer.SubmitMayLead(1, Batch("led"), events.For("led")));
  committer.Lead();
  EXPECT_EQ(events.Now().back(), "led ok");
  EXPECT_EQ(store.entered(), 2 + Committer::kLoneGroupsToLead + 1);
}

// A batch left to a leader is taken by the writer thread with the next
// submission (which may not lead: something is queued), and Lead then finds
// nothing to do.
TEST(Committer, SubmitAfterALeadersBatchWakesTheWriterForBoth) {
  for (bool second_may_lead : {false, true}) {
    SCOPED_TRACE(second_may_lead ? "SubmitMayLead" : "Submit");
    TestStore store;
    Committer committer(store);
    Events events;
    ASSERT_TRUE(committer.SubmitMayLead(1, Batch("a"), events.For("a")));
    if (second_may_lead) {
      EXPECT_FALSE(committer.SubmitMayLead(2, Batch("b"), events.For("b")));
    } else {
      committer.Submit(2, Batch("b"), events.For("b"));
    }
    EXPECT_EQ(events.WaitFor(2), (Strings{"a ok", "b ok"}));
    EXPECT_EQ(store.entered(), 1);
    committer.Lead();
    EXPECT_EQ(store.entered(), 1);
  }
}

// What is submitted while a leader writes waits for it, then goes to the
// writer thread; the two writes never overlap.
TEST(Committer, WhatQueuesDuringALeadersWriteGoesToTheWriterThread) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.HoldNextWrite();
  ASSERT_TRUE(committer.SubmitMayLead(1, Batch("a"), events.For("a")));
  std::thread leader([&] { committer.Lead(); });
  store.WaitUntilHeld();
  std::thread::id b_ran_on;
  EXPECT_FALSE(committer.SubmitMayLead(1, Batch("b"), [&](const Status& s) {
    b_ran_on = std::this_thread::get_id();
    events.Add(s.ok() ? "b ok" : "b fail");
  }));
  committer.Lead();  // a write is under way: nothing to do here
  EXPECT_EQ(events.Now(), Strings{});
  store.Release();
  EXPECT_EQ(events.WaitFor(2), (Strings{"a ok", "b ok"}));
  std::thread::id leader_id = leader.get_id();
  leader.join();
  EXPECT_NE(b_ran_on, leader_id);
  EXPECT_NE(b_ran_on, std::this_thread::get_id());
  EXPECT_FALSE(store.overlapped());
  EXPECT_EQ(store.keys(), (Strings{"a", "b"}));
}

// One stream writes one op at a time and leads when it may; another
// submits bursts now and then, which the writer thread takes, during a
// leader's write or between. Both streams keep their order; writes never
// overlap; both the leader and the writer thread wrote.
TEST(Committer, LeadersAndTheWriterThreadTakeTurnsInOrder) {
  constexpr int kBursts = 30, kBurst = 5, kMinLeads = 20, kMaxLoneOps = 100'000;
  TestStore store;
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, std::vector<int>> done;
  int failures = 0;
  std::atomic<bool> bursts_over{false};
  int leads = 0, lone_ops = 0;
  {
    Committer committer(store);
    std::thread lone([&] {
      for (int n = 0; n < kMaxLoneOps && (!bursts_over || leads < kMinLeads); ++n, ++lone_ops) {
        auto callback = [&, n](const Status& s) {
          std::lock_guard lock(mu);
          done[1].push_back(n);
          if (!s.ok()) ++failures;
          cv.notify_all();
        };
        if (committer.SubmitMayLead(1, Batch("1/" + std::to_string(n)), callback)) {
          ++leads;
          committer.Lead();
        }
        std::unique_lock lock(mu);  // one op at a time
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60),
                                [&] { return done[1].size() > size_t(n); }));
      }
    });
    std::thread bursts([&] {
      for (int b = 0; b < kBursts; ++b) {
        for (int i = 0; i < kBurst; ++i) {
          int n = b * kBurst + i;
          committer.Submit(2, Batch("2/" + std::to_string(n)), [&, n](const Status& s) {
            std::lock_guard lock(mu);
            done[2].push_back(n);
            if (!s.ok()) ++failures;
          });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      bursts_over = true;
    });
    bursts.join();
    lone.join();
  }
  EXPECT_GE(leads, kMinLeads) << "the lone stream never led";
  EXPECT_FALSE(store.overlapped());
  EXPECT_EQ(failures, 0);
  std::map<uint64_t, std::vector<int>> landed = Landed(store);
  for (auto [stream, count] : {std::pair<uint64_t, int>{1, lone_ops}, {2, kBursts * kBurst}}) {
    EXPECT_EQ(done[stream], InOrder(count)) << "callbacks of stream " << stream;
    EXPECT_EQ(landed[stream], InOrder(count)) << "records of stream " << stream;
  }
}

// A leader's failed write fails its stream as the writer thread's would.
TEST(Committer, LeadersFailedWriteFailsItsStream) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.FailWrites(true);
  ASSERT_TRUE(committer.SubmitMayLead(1, Batch("a"), events.For("a")));
  committer.Lead();
  store.FailWrites(false);
  EXPECT_FALSE(committer.SubmitMayLead(1, Batch("b"), events.For("b")));  // rejected at once
  EXPECT_EQ(events.Now(), (Strings{"a fail", "b fail"}));
  EXPECT_EQ(store.entered(), 1);
  EXPECT_EQ(store.keys(), Strings{});
}

// A batch whose leader never calls Lead is written by the destructor; and
// the destructor waits for a leader's write under way.
TEST(Committer, DestructionWritesALeadersBatchAndWaitsForItsWrite) {
  TestStore store;
  Events events;
  {
    Committer committer(store);
    ASSERT_TRUE(committer.SubmitMayLead(1, Batch("never led"), events.For("never led")));
  }
  EXPECT_EQ(events.Now(), Strings{"never led ok"});

  auto committer = std::make_unique<Committer>(store);
  Committer* c = committer.get();
  store.HoldNextWrite();
  ASSERT_TRUE(c->SubmitMayLead(1, Batch("led"), events.For("led")));
  std::thread leader([c] { c->Lead(); });
  store.WaitUntilHeld();
  DestroyDuringHeldWrite(committer, store, events);  // else the leader would use a freed committer
  leader.join();
  EXPECT_EQ(events.Now(), (Strings{"never led ok", "led ok", "destroyed"}));
}

// A failed stream's submission is rejected only after the callbacks of its
// earlier submissions have run, never ahead of them.
TEST(Committer, RejectionWaitsForEarlierCallbacksOfItsStream) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.FailWrites(true);
  committer.Submit(1, Batch("a"), events.Holding("a"));
  events.WaitFor(1);  // a's callback is running; stream 1 is failed
  committer.Submit(1, Batch("b"), events.For("b"));
  EXPECT_EQ(events.Now(), Strings{"a fail"}) << "b was rejected ahead of a's callback";
  events.Release();
  EXPECT_EQ(events.WaitFor(2), (Strings{"a fail", "b fail"}));
  EXPECT_EQ(store.entered(), 1);
}

// A callback that submits on its own, failed, stream: the rejection runs
// after that callback has returned, not inside it.
TEST(Committer, SubmitOnAFailedStreamFromItsCallbackIsRejectedAfterIt) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.FailWrites(true);
  committer.Submit(1, Batch("a"), [&](const Status& s) {
    committer.Submit(1, Batch("b"), events.For("b"));
    events.Add(s.ok() ? "a ok" : "a fail");
  });
  EXPECT_EQ(events.WaitFor(2), (Strings{"a fail", "b fail"}));
  EXPECT_EQ(store.entered(), 1);
}

// Clearing the failure in the failed write's own callback does not let a
// batch queued behind that write land: it was built on the lost records.
TEST(Committer, ClearFailureInTheFailedCallbackKeepsWhatQueuedBehindIt) {
  TestStore store;
  Committer committer(store);
  Events events;
  store.HoldNextWrite();
  committer.Submit(1, Batch("a"), [&](const Status& s) {
    events.Add(s.ok() ? "a ok" : "a fail");
    committer.ClearFailure(1);
    committer.Submit(1, Batch("c"), events.For("c"));  // after the clear: writes
  });
  store.WaitUntilHeld();
  committer.Submit(1, Batch("b"), events.For("b"));
  store.Release(/*fail=*/true);
  EXPECT_EQ(events.WaitFor(3), (Strings{"a fail", "b fail", "c ok"}));
  EXPECT_EQ(store.keys(), Strings{"c"});
}

// Many threads, each its own stream, with writes failing now and then: each
// stream's callbacks, rejections included, run in its submission order, and
// once one of its writes has failed none of its later batches lands.
TEST(Committer, EachStreamKeepsItsOrderWhenWritesFail) {
  constexpr int kThreads = 8, kOps = 300;
  TestStore store;
  store.FailEveryNthWrite(7);
  std::mutex mu;
  std::map<uint64_t, std::vector<std::pair<int, bool>>> done;  // stream -> (op, ok)
  {
    Committer committer(store);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int n = 0; n < kOps; ++n) {
          committer.Submit(t, Batch(std::to_string(t) + "/" + std::to_string(n)),
                           [&, t, n](const Status& s) {
                             std::lock_guard lock(mu);
                             done[t].emplace_back(n, s.ok());
                           });
          std::this_thread::yield();  // let writes fail while this stream submits
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  std::map<uint64_t, std::vector<int>> landed = Landed(store);
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE("stream " + std::to_string(t));
    ASSERT_EQ(done[t].size(), size_t{kOps});
    std::vector<int> ok;  // what succeeded: a prefix of the submissions
    for (int n = 0; n < kOps; ++n) {
      ASSERT_EQ(done[t][n].first, n) << "callbacks out of submission order";
      if (done[t][n].second) {
        ASSERT_EQ(ok.size(), size_t(n)) << "op " << n << " succeeded after a failure";
        ok.push_back(n);
      }
    }
    EXPECT_EQ(landed[t], ok);
  }
}

}  // namespace
}  // namespace etherply::storage
