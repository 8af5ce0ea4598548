// Group commit: many producers, one writer thread, one synced write per group.
//
// Submit queues a batch; the writer thread takes everything queued, writes
// it as one synced batch, and runs each submitter's callback with the
// result. Concurrent ops thus share one fsync (the leveldb DBImpl::Write
// pattern).
//
// Streams: each submission names a stream (e.g. one per workspace). When a
// write fails, its streams are marked failed until ClearFailure(stream). A
// batch submitted on a failed stream, or queued behind the failed write of
// its stream, is never written: its callback gets kIoError. A stream's later
// records can thus never land on disk without the earlier ones they depend
// on; ClearFailure lets only batches submitted after it write again.
//
// Callbacks: each runs exactly once. Those of one stream run in the order of
// its Submit calls, each after the previous one has returned, rejections
// included (calls that overlap, from different threads, have no order). They
// run on the writer thread, except that a batch on a failed stream submitted
// while nothing is pending (no write under way, nothing queued) is rejected at
// once: its callback runs inside Submit, on the calling thread. A callback may
// call Submit and ClearFailure; it must not block, for it delays every write
// behind it.
//
// Thread-safety: Submit and ClearFailure may be called from any thread,
// callbacks included.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "storage/store.h"

namespace etherply::storage {

class Committer {
 public:
  using Callback = std::function<void(const Status&)>;

  explicit Committer(Store& store);
  // Writes what is queued, then stops the writer thread.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Writes `batch` with whatever else is queued, as one synced Store::Write,
  // then calls `done` with the outcome; on a failed stream, writes nothing
  // and calls `done` with kIoError (see above for when and where).
  void Submit(uint64_t stream, WriteBatch batch, Callback done);
  // Lets `stream` write again after a failure: batches submitted from now on.
  void ClearFailure(uint64_t stream);

 private:
  struct Item {
    uint64_t stream;
    WriteBatch batch;
    Callback done;
    bool rejected;  // its stream failed before it could be written
  };
  void Run();

  Store& store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;                  // guarded by mu_
  std::unordered_set<uint64_t> failed_;     // guarded by mu_
  bool busy_ = false;  // guarded by mu_; the writer has items whose callbacks are to run
  bool stopping_ = false;                   // guarded by mu_
  std::thread writer_;
};

}  // namespace etherply::storage
