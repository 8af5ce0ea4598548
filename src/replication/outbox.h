// The replication outbox: local changes that JetStream has not acknowledged
// yet, kept in the store so that none is lost while NATS is away or the node
// restarts (doc/replication.md).
//
// Record (key r/o/<8-byte big-endian seq>, so key order is staging order):
//   record := uleb(len) workspace  sleb(timestamp)  hash(32)  change-chunk
//
// The life of a record: Stage adds it to the op's own write batch under a
// fresh sequence number; Committed reports that batch's outcome (a failed
// batch leaves no record, so the item is dropped); Next hands durable records
// to the publisher, oldest first; Remove deletes published ones. At most
// `max_in_memory` records are held in memory; beyond that they wait on disk
// and are read back once memory drains.
//
// Thread-safety: every method may be called from any thread. Stage and
// Committed never do I/O; Next and Remove read and write the store.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/change.h"
#include "base/status.h"
#include "storage/store.h"

namespace etherply::replication {

class Outbox {
 public:
  struct Item {
    uint64_t seq = 0;
    std::string workspace;
    int64_t timestamp = 0;  // the op's time, Unix microseconds
    automerge::ChangeHash hash{};
    std::string chunk;  // the change chunk's bytes
  };

  // Reads back the records an earlier run left. Fails with kCorruption on a
  // malformed record (the store then needs attention; nothing is dropped).
  static Result<std::unique_ptr<Outbox>> Open(storage::Store& store,
                                              size_t max_in_memory = 100'000);

  // Adds `change`'s record to `batch`; returns the ticket for Committed.
  uint64_t Stage(std::string_view workspace, const automerge::StoredChange& change,
                 int64_t timestamp, storage::WriteBatch& batch);
  // The outcome of the batch that held the ticket's record.
  void Committed(uint64_t ticket, const Status& status);

  // Up to `n` durable records that Next has not handed out yet, oldest
  // first, waiting up to `wait` for one. They stay in the outbox until
  // removed. Empty on timeout or Close.
  std::vector<Item> Next(size_t n, std::chrono::milliseconds wait);
  // Deletes `items` (the oldest records Next handed out, in its order) from
  // the store and from memory, in one unsynced write (Store::WriteUnsynced:
  // a removal lost in a crash only means those records are published again).
  // On failure the records stay, handed out: Rewind to offer them again.
  Status Remove(const std::vector<Item>& items);
  // Makes Next hand out every record not removed again, oldest first.
  void Rewind();
  // Wakes every Next and makes them return at once from now on.
  void Close();

  // Durable records not yet removed.
  size_t backlog() const;

 private:
  Outbox(storage::Store& store, size_t max_in_memory) : store_(store), max_(max_in_memory) {}
  // Reads up to max_ records from the store into ready_, from scan_from_ on
  // (the records before it are removed or in memory); sets reload_ if some
  // were left on disk. Called with mu_ not held.
  Status Load();

  // Constant after construction.
  storage::Store& store_;
  const size_t max_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_seq_ = 1;            // guarded by mu_
  std::map<uint64_t, Item> staged_;  // guarded by mu_: written, outcome unknown
  std::deque<Item> ready_;           // guarded by mu_: durable, in memory
  size_t handed_ = 0;                // guarded by mu_: ready_'s first ones, handed out
  bool reload_ = false;              // guarded by mu_: more wait on disk only
  bool loading_ = false;             // guarded by mu_: Next is reading the store
  // Guarded by mu_: the lowest sequence number of the records on disk only
  // (UINT64_MAX: none; 0 before the first Load). Load starts there, so that
  // it never steps over removed records again.
  uint64_t scan_from_ = 0;
  // Guarded by mu_: the lowest sequence number that went to disk only while
  // Load was reading (it may have passed it); UINT64_MAX if none.
  uint64_t missed_from_ = UINT64_MAX;
  size_t backlog_ = 0;   // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

}  // namespace etherply::replication
