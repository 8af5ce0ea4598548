// Group commit: many producers, one writer thread, one synced write per group.
//
// Submit queues a batch; the writer thread takes everything queued, writes
// it as one synced batch, and runs each submitter's callback with the
// result. Concurrent ops thus share one fsync (the leveldb DBImpl::Write
// pattern), and callbacks run in submission order.
//
// Streams: each submission names a stream (e.g. one per workspace). When a
// write fails, its streams are marked failed, and every later submission on a
// failed stream fails at once, without writing, until ClearFailure(stream):
// a stream's later records can never land on disk without the earlier ones
// they depend on.
//
// Thread-safety: Submit and ClearFailure may be called from any thread.
// Callbacks run on the writer thread and must not block.
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

  void Submit(uint64_t stream, WriteBatch batch, Callback done);
  void ClearFailure(uint64_t stream);

 private:
  struct Item {
    uint64_t stream;
    WriteBatch batch;
    Callback done;
  };
  void Run();

  Store& store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;                  // guarded by mu_
  std::unordered_set<uint64_t> failed_;     // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::thread writer_;
};

}  // namespace etherply::storage
