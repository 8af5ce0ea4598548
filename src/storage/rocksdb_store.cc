// The RocksDB implementation of Store: the only file that includes RocksDB.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "storage/layout.h"
#include "storage/store.h"

namespace etherply::storage {

namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  return Status::IoError(msg);
}

// The memtable's insert hint: RocksDB remembers where the last key of each
// prefix went in the memtable's skip list and starts the next insert of that
// prefix there, instead of searching down from the top. Our prefixes are
// layout.h's SequencePrefix: a workspace's changes and its heads.
class SequencePrefixExtractor : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "etherply.SequencePrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    std::string_view prefix = SequencePrefix(key.ToStringView());
    return rocksdb::Slice(prefix.data(), prefix.size());
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !SequencePrefix(key.ToStringView()).empty();
  }
};

class RocksDbStore : public Store {
 public:
  explicit RocksDbStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

  Status Write(const WriteBatch& batch) override {
    return Apply(batch,
                 /*sync=*/true);  // durable before visible: the caller acknowledges after this
  }

  Status WriteUnsynced(const WriteBatch& batch) override { return Apply(batch, /*sync=*/false); }

  Result<std::string> Get(std::string_view key) override {
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
    if (!s.ok()) return FromRocks(s, "get");
    return value;
  }

  Status ScanFrom(std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& f) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::string_view from = std::max(prefix, start);
    for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid(); it->Next()) {
      std::string_view k(it->key().data(), it->key().size());
      if (k.substr(0, prefix.size()) != prefix) break;
      if (!f(k, std::string_view(it->value().data(), it->value().size()))) break;
    }
    return FromRocks(it->status(), "scan");
  }

 private:
  // One write-ahead log: an unsynced batch reaches the disk with the next
  // synced one at the latest.
  Status Apply(const WriteBatch& batch, bool sync) {
    rocksdb::WriteBatch wb;
    for (const auto& r : batch.records()) {
      if (r.value) {
        wb.Put(r.key, *r.value);
      } else {
        wb.Delete(r.key);
      }
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return FromRocks(db_->Write(wo, &wb), "write");
  }

  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenRocksDbStore(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  // Measured: 64 writers in workspaces of their own +5–10% (doc/storage.md).
  // RocksDB ignores the hint for concurrent memtable writes. Ops reach the
  // store one group at a time (storage/committer.h); the few other writers
  // (outboxes, heads on load) RocksDB groups, and the group's leader inserts.
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<SequencePrefixExtractor>();
  options.allow_concurrent_memtable_write = false;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return FromRocks(s, "opening the store in " + dir);
  return std::unique_ptr<Store>(new RocksDbStore(std::unique_ptr<rocksdb::DB>(raw)));
}

}  // namespace etherply::storage
