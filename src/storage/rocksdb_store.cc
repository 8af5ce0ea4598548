// The RocksDB implementation of Store: the only file that includes RocksDB.
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>

#include "base/log.h"
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

// RocksDB's warnings and errors go to the server's log (base/log.h), not to
// a LOG file in the data dir: an operator sees them where ours are, and a
// full disk cannot fail the logging itself (Debian's RocksDB asserts on a
// second write to a log file whose write failed).
class ServerLogger : public rocksdb::Logger {
 public:
  explicit ServerLogger(rocksdb::InfoLogLevel level = rocksdb::InfoLogLevel::WARN_LEVEL)
      : rocksdb::Logger(level) {}
  using rocksdb::Logger::Logv;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    Log(level == rocksdb::InfoLogLevel::WARN_LEVEL ? LogLevel::kWarn : LogLevel::kError,
        std::string("rocksdb: ") + line);
  }
};

// Leaves recovery from a background error (a full disk) to the next write
// (RocksDbStore::Apply): RocksDB's own waits for free space, polling every
// 5 s, and refuses a manual resume meanwhile.
class ResumeOnNextWrite : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
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

  // rocksdb::Checkpoint: the memtable flushed, then the live table files
  // linked (or copied, across file systems) and the MANIFEST and WAL
  // copied into dir + ".tmp", synced, and renamed to dir.
  Status Checkpoint(const std::string& dir) override {
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    if (!s.ok()) return FromRocks(s, "checkpoint");
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    return FromRocks(checkpoint->CreateCheckpoint(dir), "checkpoint into " + dir);
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
    if (failed_.load())
      if (Status r = Resume(); !r.ok()) return r;
    Status s = FromRocks(db_->Write(wo, &wb), "write");
    if (!s.ok()) {
      std::lock_guard lock(resume_mu_);
      failed_ = true;
      last_error_ = s;
    }
    return s;
  }

  Status RetryWrites() override { return failed_.load() ? Resume() : Status::Ok(); }

  Status WriteHealth() const override {
    if (!failed_.load()) return Status::Ok();
    std::lock_guard lock(resume_mu_);
    return failed_.load() ? last_error_ : Status::Ok();
  }

  // After a failed write RocksDB refuses every write until resumed (its own
  // recovery is off: ResumeOnNextWrite). A write resumes it, so that writes
  // come back as soon as the cause (a full disk) is gone: one writer at a
  // time, and at most one attempt per kResumeEvery (each flushes the
  // memtables); meanwhile writes fail at once with the last attempt's error.
  Status Resume() {
    std::lock_guard lock(resume_mu_);
    if (!failed_.load()) return Status::Ok();  // another writer resumed it
    auto now = std::chrono::steady_clock::now();
    if (now < next_resume_) return last_error_;
    next_resume_ = now + kResumeEvery;
    if (rocksdb::Status r = db_->Resume(); !r.ok()) {
      last_error_ = FromRocks(r, "resuming after a failed write");
      return last_error_;
    }
    LogInfo("storage: writes resumed after a failed write");
    failed_ = false;
    last_error_ = Status::Ok();
    return Status::Ok();
  }

  static constexpr std::chrono::milliseconds kResumeEvery{500};

  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<bool> failed_{false};  // set and cleared with resume_mu_ held
  mutable std::mutex resume_mu_;
  std::chrono::steady_clock::time_point next_resume_;  // guarded by resume_mu_
  // The last failed write's error, or the last failed resume's: guarded by
  // resume_mu_.
  Status last_error_;
};

// How the store opens read-only, which writes nothing, with the log replayed
// in `mode`: kStrict's refusal is damage in the log if point-in-time opens;
// point-in-time drops writes if strict does not.
rocksdb::Status OpenReadOnly(rocksdb::Options options, const std::string& dir,
                             rocksdb::WALRecoveryMode mode) {
  options.wal_recovery_mode = mode;
  // Its "dropping N bytes" would read as if something were dropped: a
  // read-only open changes nothing.
  options.info_log = std::make_shared<ServerLogger>(rocksdb::InfoLogLevel::FATAL_LEVEL);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, dir, &raw);
  delete raw;
  return s;
}

// Whether another process holds RocksDB's lock on dir/LOCK (a POSIX record
// lock, which F_GETLK names with its owner): nullopt if none does; else its
// process ID, 0 if it runs in a PID namespace this one cannot see. Closing
// any descriptor of LOCK drops this process's own record locks on it: never
// to be called while this process holds it.
std::optional<pid_t> LockHolder(const std::string& dir) {
  int fd = ::open((dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock probe = {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  std::optional<pid_t> holder;
  if (::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK) holder = probe.l_pid;
  ::close(fd);
  return holder;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenRocksDbStore(const std::string& dir, WalRecovery wal) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  // Every acknowledged write was synced, so a crash leaves at most a torn
  // last record, which kTolerateCorruptedTailRecords drops. RocksDB's
  // default, kPointInTimeRecovery, also stops at damage in the middle of the
  // log and silently drops every write after it, acknowledged or not.
  options.wal_recovery_mode = wal == WalRecovery::kStrict
                                  ? rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords
                                  : rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Measured: 64 writers in workspaces of their own +5–10% (doc/storage.md).
  // RocksDB ignores the hint for concurrent memtable writes. Ops reach the
  // store one group at a time (storage/committer.h); the few other writers
  // (outboxes, heads on load) RocksDB groups, and the group's leader inserts.
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<SequencePrefixExtractor>();
  options.allow_concurrent_memtable_write = false;
  // Within the descriptors the server keeps for itself beside its
  // connections (server.cc, kReservedFds): RocksDB would otherwise keep
  // every table file open, and a large store near the connection cap would
  // fail its flushes with EMFILE. Tables beyond it are reopened as read.
  options.max_open_files = kMaxOpenTables;
  options.info_log = std::make_shared<ServerLogger>();
  // No recovery of RocksDB's own in the background: the next write resumes
  // (RocksDbStore::Apply) as soon as it can.
  options.max_bgerror_resume_count = 0;
  options.listeners.push_back(std::make_shared<ResumeOnNextWrite>());
  // A new store is said as such: a --data-dir typo shows at once.
  std::error_code ec;
  bool existed = std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec);
  // Point-in-time recovery drops writes, for good, where strict recovery
  // refuses and point-in-time, read-only, opens: said once the open is done.
  bool drops = wal == WalRecovery::kPointInTime && existed &&
               OpenReadOnly(options, dir, rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords)
                   .IsCorruption() &&
               OpenReadOnly(options, dir, rocksdb::WALRecoveryMode::kPointInTimeRecovery).ok();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  // RocksDB's own table of locks in this process (asked first: the probe
  // would drop the lock), or another process's lock on LOCK, asked of the
  // kernel; other LOCK errors (permissions) are said as they are.
  if (s.IsIOError()) {
    if (s.ToString().find("lock hold by current process") != std::string::npos)
      return Status::IoError("the data dir " + dir + " is in use by this process: " + s.ToString());
    if (std::optional<pid_t> holder = LockHolder(dir))
      return Status::IoError("the data dir " + dir + " is in use by " +
                             (*holder ? "process " + std::to_string(*holder) : "another process") +
                             " (another etherply?): " + s.ToString());
  }
  if (s.IsCorruption() && wal == WalRecovery::kStrict &&
      OpenReadOnly(options, dir, rocksdb::WALRecoveryMode::kPointInTimeRecovery).ok())
    return Status::Corruption(
        "the store's write-ahead log in " + dir +
        " is damaged before its end, so the writes after the damage, acknowledged ones among "
        "them, cannot be read; nothing was changed, nor dropped, whatever RocksDB's lines above "
        "say (" +
        s.ToString() +
        "). Restore the node from a backup, or from its peers on an empty data dir; to start "
        "on this one anyway, dropping every write after the damage for good, run once with "
        "--wal-recovery point-in-time");
  if (!s.ok()) return FromRocks(s, "opening the store in " + dir);
  if (drops)
    LogWarn("the store's write-ahead log in " + dir +
            " was damaged before its end: opened without every write after the damage, for "
            "good (--wal-recovery point-in-time)");
  LogInfo(std::string(existed ? "opened the store in " : "created a new store in ") + dir);
  return std::unique_ptr<Store>(new RocksDbStore(std::unique_ptr<rocksdb::DB>(raw)));
}

}  // namespace etherply::storage
