// The storage interface: an ordered key-value store with atomic, synced
// batch writes. The server sees only this interface; RocksDbStore is the
// production implementation (the only code that includes RocksDB) and
// MemoryStore a fake for tests, with fault injection.
//
// Durability contract: when Write returns OK, every record of the batch is on
// stable storage (the write was synced) and a later Open of the same store
// sees all of them; when it fails, none of them is visible.
//
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace etherply::storage {

// Puts and deletes applied together.
class WriteBatch {
 public:
  struct Record {
    std::string key;
    std::optional<std::string> value;  // nullopt: delete
  };

  void Put(std::string key, std::string value) {
    records_.push_back({std::move(key), std::move(value)});
  }
  void Delete(std::string key) { records_.push_back({std::move(key), std::nullopt}); }
  void Append(WriteBatch&& other) {
    for (Record& r : other.records_) records_.push_back(std::move(r));
  }
  bool empty() const { return records_.empty(); }
  const std::vector<Record>& records() const { return records_; }

 private:
  std::vector<Record> records_;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies the batch atomically and syncs it (see the contract above).
  virtual Status Write(const WriteBatch& batch) = 0;
  // Applies the batch atomically without waiting for stable storage: on OK
  // later reads see it, but a crash of the machine may lose it (whole) until
  // a later synced Write, which makes it durable too. Only for writes whose
  // loss is harmless, such as deleting records of work that is safe to redo.
  // The default syncs.
  virtual Status WriteUnsynced(const WriteBatch& batch) { return Write(batch); }
  // The value at key; kNotFound if there is none.
  virtual Result<std::string> Get(std::string_view key) = 0;
  // Calls f(key, value) for each key that starts with prefix and is not
  // below start, in key order, until f returns false. Starting past deleted
  // keys costs nothing for them (an LSM store would otherwise step over
  // each deletion marker).
  virtual Status ScanFrom(std::string_view prefix, std::string_view start,
                          const std::function<bool(std::string_view, std::string_view)>& f) = 0;
  // OK, or the error of the last write while writes fail (from a failed
  // write until one succeeds again). The default: OK.
  virtual Status WriteHealth() const { return Status::Ok(); }
  // Whether writes succeed now: after a failed write, tries what the next
  // write would (RocksDB: a resume, at most one every 0.5 s, blocking for
  // its flush), so that a node no one writes to learns that the disk came
  // back. The default: WriteHealth().
  virtual Status RetryWrites() { return WriteHealth(); }
  // Writes a copy of the store into `dir`, which must not exist yet: every
  // Write that returned OK before the call, as of one instant, and no
  // part of any batch. A store opened on `dir` is that copy. On the same
  // file system the copy's table files are hard links to the store's, so
  // it costs little space at first, yet no more survives a disk's loss
  // than the store does. The default: kUnsupported.
  virtual Status Checkpoint(const std::string& dir) {
    (void)dir;
    return Status::Unsupported("this store cannot write a copy of itself");
  }
  // ScanFrom the first key with prefix.
  Status Scan(std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& f) {
    return ScanFrom(prefix, prefix, f);
  }
};

// The most table files the RocksDB store keeps open at once; with its WAL,
// MANIFEST and LOCK, the file descriptors it holds stay below about this
// plus 8.
inline constexpr int kMaxOpenTables = 128;

// What opening a store does with a write-ahead log damaged before its end.
enum class WalRecovery {
  // Refuse to open (kCorruption), changing nothing: the writes after the
  // damage, acknowledged ones among them, cannot be read. A torn last record
  // (a write cut short by a crash, never acknowledged) is dropped.
  kStrict,
  // Open with every write before the damage, dropping the rest for good:
  // for an operator who chose that, as the error of kStrict says.
  kPointInTime,
};

// Opens (creating if needed) a RocksDB store in dir.
Result<std::unique_ptr<Store>> OpenRocksDbStore(const std::string& dir,
                                                WalRecovery wal = WalRecovery::kStrict);

}  // namespace etherply::storage
