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
// Leading: at one write at a time, waking the writer thread for each write
// adds its wake-up, tens of µs on a busy or virtual machine, to every op. So
// a submitter that may block (SubmitMayLead) writes the group itself, on its
// own thread (Lead), when no write is under way, nothing else is queued and
// the last kLoneGroupsToLead groups held one batch each. Under load the
// groups grow, and the writer thread takes over. One group is written at a
// time, whoever writes it (doc/design.md, "A lone write is written by its
// submitter").
//
// Callbacks: each runs exactly once. Those of one stream run in the order of
// its Submit calls, each after the previous one has returned, rejections
// included (calls that overlap, from different threads, have no order). They
// run on the thread that writes the group (the writer thread or a leader),
// except that a batch on a failed stream submitted while nothing is pending
// (no write under way, nothing queued) is rejected at once: its callback runs
// inside Submit, on the calling thread. A callback may call Submit and
// ClearFailure; it must not block, for it delays every write behind it.
//
// Thread-safety: every method may be called from any thread, callbacks
// included.
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
  // Waits for a leader's write, writes what is queued (a batch still
  // awaiting its leader included), then stops the writer thread. Once it has
  // begun, only the callbacks it runs may call Submit; nobody may call Lead.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Writes `batch` with whatever else is queued, as one synced Store::Write,
  // then calls `done` with the outcome; on a failed stream, writes nothing
  // and calls `done` with kIoError (see above for when and where).
  void Submit(uint64_t stream, WriteBatch batch, Callback done);
  // Submit, from a thread that may block for a write. Returns true when the
  // caller is to lead (see above): the writer thread was not woken, and the
  // caller must call Lead() soon; the batch waits until then, or until a
  // later Submit or SubmitMayLead wakes the writer thread, or destruction.
  // Nothing bounds that wait but the caller: a Lead() queued behind long
  // work keeps the op waiting (the server defers it to its network threads,
  // which its broadcast waits for anyway: doc/design.md).
  [[nodiscard]] bool SubmitMayLead(uint64_t stream, WriteBatch batch, Callback done);
  // Writes what is queued, as one group, on the calling thread; nothing if
  // a write is under way or nothing is queued.
  void Lead();
  // Nothing queued, nothing being written (for tests: callbacks run before
  // their group's write counts as done).
  bool idle() const;

  // Lone groups in a row (one batch each) after which a submitter may lead.
  static constexpr int kLoneGroupsToLead = 4;

  // Lets `stream` write again after a failure: batches submitted from now on.
  void ClearFailure(uint64_t stream);

 private:
  struct Item {
    uint64_t stream;
    WriteBatch batch;
    Callback done;
    bool rejected;  // its stream failed before it could be written
  };
  // Queues the batch (or rejects it at once, see above); returns whether the
  // caller may lead instead of waking the writer thread.
  bool Queue(uint64_t stream, WriteBatch batch, Callback done, bool may_lead);
  void Run();
  // Writes the queue as one group; `lock` holds mu_ on entry and on return.
  void WriteGroup(std::unique_lock<std::mutex>& lock);

  Store& store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;               // guarded by mu_
  std::unordered_set<uint64_t> failed_;  // guarded by mu_
  bool busy_ = false;  // guarded by mu_; a group is being written or its callbacks run
  // The last groups written held one batch each, this many in a row (at most
  // kLoneGroupsToLead; so at first, with nothing written, a submitter may
  // lead). Guarded by mu_.
  int lone_groups_ = kLoneGroupsToLead;
  // The queue holds a batch whose submitter is to lead: the writer thread
  // leaves it alone until Lead, a later Submit or destruction. Guarded by mu_.
  bool awaiting_leader_ = false;
  bool stopping_ = false;  // guarded by mu_
  std::thread writer_;
};

}  // namespace etherply::storage
