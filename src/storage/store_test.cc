#include "storage/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/testutil.h"
#include "storage/layout.h"
#include "storage/memory_store.h"

namespace etherply::storage {
namespace {

// Each test runs on both stores: the fake must scan as RocksDB does.
class StoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!GetParam()) {
      store_ = std::make_unique<MemoryStore>();
      return;
    }
    char tmpl[] = "/tmp/etherply-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenRocksDbStore(dir_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Put(std::vector<std::string> keys) {
    WriteBatch b;
    for (auto& k : keys) b.Put(k, "v" + k);
    ASSERT_TRUE(store_->Write(b).ok());
  }
  std::vector<std::string> ScanFrom(std::string_view prefix, std::string_view start) {
    std::vector<std::string> keys;
    Status s = store_->ScanFrom(prefix, start, [&](std::string_view k, std::string_view v) {
      EXPECT_EQ(v, "v" + std::string(k));
      keys.emplace_back(k);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return keys;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

using Keys = std::vector<std::string>;

TEST_P(StoreTest, ScanFromStartsAtTheFirstKeyNotBelowStartWithinThePrefix) {
  Put({"a/1", "b/1", "b/2", "b/3", "b/30", "c/1"});
  EXPECT_EQ(ScanFrom("b/", "b/2"), (Keys{"b/2", "b/3", "b/30"}));
  EXPECT_EQ(ScanFrom("b/", "b/25"), (Keys{"b/3", "b/30"}));
  EXPECT_EQ(ScanFrom("b/", "a"), (Keys{"b/1", "b/2", "b/3", "b/30"}));  // start below the prefix
  EXPECT_EQ(ScanFrom("b/", "b/4"), Keys{});                             // past every key
  EXPECT_EQ(ScanFrom("b/", "c/1"), Keys{});                             // past the prefix
  EXPECT_EQ(ScanFrom("", "b/3"), (Keys{"b/3", "b/30", "c/1"}));
}

TEST_P(StoreTest, ScanFromSkipsDeletedKeysAndStopsWhenToldTo) {
  Put({"p/1", "p/2", "p/3", "p/4"});
  WriteBatch del;
  del.Delete("p/1");
  del.Delete("p/3");
  ASSERT_TRUE(store_->WriteUnsynced(del).ok());
  EXPECT_EQ(ScanFrom("p/", "p/"), (Keys{"p/2", "p/4"}));
  int seen = 0;
  ASSERT_TRUE(
      store_->ScanFrom("p/", "p/", [&](std::string_view, std::string_view) { return ++seen < 1; })
          .ok());
  EXPECT_EQ(seen, 1);
}

TEST_P(StoreTest, ScanIsScanFromThePrefix) {
  Put({"a/1", "b/1", "b/2", "c/1"});
  Keys keys;
  ASSERT_TRUE(store_
                  ->Scan("b/",
                         [&](std::string_view k, std::string_view) {
                           keys.emplace_back(k);
                           return true;
                         })
                  .ok());
  EXPECT_EQ(keys, (Keys{"b/1", "b/2"}));
}

// The RocksDB store inserts each key next to the last of its SequencePrefix
// (a hint): keys written out of that order, interleaved across workspaces,
// and a heads key rewritten in one batch and across batches, must still read
// back in key order with the last value.
TEST_P(StoreTest, KeysWrittenOutOfSequenceReadBackInOrder) {
  constexpr uint64_t kChanges = 300;
  const std::vector<std::string> workspaces = {"a", "ab", "b", "b-2"};
  std::vector<std::pair<std::string, uint64_t>> writes;
  for (const std::string& ws : workspaces)
    for (uint64_t i = 0; i < kChanges; ++i) writes.emplace_back(ws, i * 0x2f2f);  // '/' bytes too
  std::shuffle(writes.begin(), writes.end(), std::mt19937(7));
  for (size_t start = 0; start < writes.size(); start += 50) {
    WriteBatch b;
    for (size_t j = start; j < std::min(writes.size(), start + 50); ++j) {
      const auto& [ws, index] = writes[j];
      b.Put(ChangeKey(ws, index), "v" + ChangeKey(ws, index));
      b.Put(HeadsKey(ws), std::to_string(j));
    }
    ASSERT_TRUE(store_->Write(b).ok());
  }
  for (const std::string& ws : workspaces) {
    Keys expected;
    for (uint64_t i = 0; i < kChanges; ++i) expected.push_back(ChangeKey(ws, i * 0x2f2f));
    EXPECT_EQ(ScanFrom(ChangePrefix(ws), ""), expected) << ws;
    size_t last = 0;
    for (size_t j = 0; j < writes.size(); ++j)
      if (writes[j].first == ws) last = j;
    auto heads = store_->Get(HeadsKey(ws));
    ASSERT_TRUE(heads.ok()) << heads.status().ToString();
    EXPECT_EQ(*heads, std::to_string(last)) << ws;
  }
}

// The fake's injected read failures, which the workspace simulation uses:
// n records pass, then every read fails until FailReadsAfter(-1).
TEST(MemoryStore, FailReadsAfterPassesThatManyRecordsThenFailsEveryRead) {
  MemoryStore store;
  WriteBatch b;
  for (std::string k : {"p1", "p2", "p3"}) b.Put(k, "v");
  ASSERT_TRUE(store.Write(b).ok());
  store.FailReadsAfter(3);
  ASSERT_TRUE(store.Get("p1").ok());  // one record read
  std::vector<std::string> seen;
  Status s = store.ScanFrom("p", "", [&](std::string_view k, std::string_view) {
    seen.emplace_back(k);
    return true;
  });
  EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
  EXPECT_EQ(seen, (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(store.Get("p3").status().code(), Status::Code::kIoError);
  store.FailReadsAfter(-1);
  EXPECT_TRUE(store.Get("p3").ok());
  EXPECT_TRUE(store.Write(b).ok()) << "writes are not affected";
}

using testutil::TempDir;

std::unique_ptr<Store> Open(const std::string& dir) {
  auto s = OpenRocksDbStore(dir);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(RocksDbStore, CheckpointHoldsEveryWriteBeforeItAndNoneAfter) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string backup = tmp.path() + "/backup";
  auto store = Open(tmp.path() + "/db");
  ASSERT_TRUE(store);
  WriteBatch before;
  for (int i = 0; i < 1000; ++i) before.Put("k" + std::to_string(i), std::string(100, 'a'));
  before.Delete("k7");
  ASSERT_TRUE(store->Write(before).ok());
  ASSERT_TRUE(store->Checkpoint(backup).ok());
  WriteBatch after;
  after.Put("k7", "after");
  after.Delete("k8");
  after.Put("later", "x");
  ASSERT_TRUE(store->Write(after).ok());

  auto copy = Open(backup);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->Get("k7").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(*copy->Get("k8"), std::string(100, 'a'));
  EXPECT_EQ(copy->Get("later").status().code(), Status::Code::kNotFound);
  size_t n = 0;
  ASSERT_TRUE(copy->Scan("k", [&](std::string_view, std::string_view) { return ++n; }).ok());
  EXPECT_EQ(n, 999u);
  EXPECT_EQ(*store->Get("k7"), "after") << "the store goes on as before";
  EXPECT_TRUE(copy->Write(after).ok()) << "the copy is a store of its own";
  EXPECT_EQ(store->Get("k8").status().code(), Status::Code::kNotFound);
}

TEST(RocksDbStore, CheckpointIntoADirThatExistsOrUnderOneThatDoesNotFailsAndMakesNothing) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  auto store = Open(tmp.path() + "/db");
  ASSERT_TRUE(store);
  WriteBatch b;
  b.Put("k", "v");
  ASSERT_TRUE(store->Write(b).ok());
  std::filesystem::create_directory(tmp.path() + "/taken");
  Status s = store->Checkpoint(tmp.path() + "/taken");
  EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path() + "/taken"));
  s = store->Checkpoint(tmp.path() + "/missing/backup");
  EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/missing"));
  EXPECT_TRUE(store->Write(b).ok());
}

// The store's one write-ahead log file (RocksDB keeps writes there until a
// flush; a store closed after a few small writes has not flushed).
std::filesystem::path WalOf(const std::string& dir) {
  std::vector<std::filesystem::path> logs;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".log") logs.push_back(e.path());
  EXPECT_EQ(logs.size(), 1u) << dir;
  return logs.empty() ? std::filesystem::path() : logs.back();
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// 40 synced batches of one 2,000-byte key each in a store made in dir,
// closed; then its write-ahead log's path and bytes.
std::pair<std::filesystem::path, std::string> FortyWrites(const std::string& dir) {
  {
    auto store = Open(dir);
    if (!store) return {};
    for (int i = 0; i < 40; ++i) {
      WriteBatch b;
      b.Put("k" + std::to_string(100 + i), std::string(2000, static_cast<char>('a' + i % 26)));
      EXPECT_TRUE(store->Write(b).ok());
    }
  }
  std::filesystem::path wal = WalOf(dir);
  return {wal, ReadAll(wal)};
}

size_t KeysIn(Store& store) {
  size_t n = 0;
  EXPECT_TRUE(store.Scan("k", [&](std::string_view, std::string_view) { return ++n; }).ok());
  return n;
}

// A crash can cut the last record short: it was never acknowledged, and the
// store opens without it.
TEST(RocksDbStore, ATornLastRecordIsDroppedAndTheStoreOpens) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = tmp.path() + "/db";
  auto [wal, bytes] = FortyWrites(dir);
  ASSERT_GT(bytes.size(), 80'000u);
  WriteAll(wal, bytes.substr(0, bytes.size() - 1000));
  testing::internal::CaptureStderr();
  auto store = OpenRocksDbStore(dir, WalRecovery::kPointInTime);
  std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(log.find("damaged before its end"), std::string::npos)
      << "a torn tail is no damage, in either mode: " << log;
  store->reset();
  store = OpenRocksDbStore(dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(KeysIn(**store), 39u);
  EXPECT_EQ((*store)->Get("k139").status().code(), Status::Code::kNotFound);
}

// Damage before the end of the log hides acknowledged writes: the store
// refuses to open, says what to do, and changes nothing; opened with
// kPointInTime it holds the writes before the damage.
TEST(RocksDbStore, DamageBeforeTheLogsEndRefusesToOpenUnlessPointInTimeIsChosen) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = tmp.path() + "/db";
  auto [wal, bytes] = FortyWrites(dir);
  bytes[bytes.size() / 4] ^= 0x5a;
  WriteAll(wal, bytes);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());

  auto refused = OpenRocksDbStore(dir);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kCorruption);
  EXPECT_NE(
      refused.status().message().find("write-ahead log in " + dir + " is damaged before its end"),
      std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("--wal-recovery point-in-time"), std::string::npos);
  std::vector<std::string> after;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    after.push_back(e.path().filename().string());
  std::sort(after.begin(), after.end());
  EXPECT_EQ(after, files) << "no file made or removed";
  EXPECT_EQ(ReadAll(wal), bytes) << "the log as it was";

  testing::internal::CaptureStderr();
  auto salvaged = OpenRocksDbStore(dir, WalRecovery::kPointInTime);
  std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(salvaged.ok()) << salvaged.status().ToString();
  EXPECT_NE(log.find("WARN the store's write-ahead log in " + dir +
                     " was damaged before its end: opened without every write after the "
                     "damage, for good (--wal-recovery point-in-time)"),
            std::string::npos)
      << log;
  size_t kept = KeysIn(**salvaged);
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, 40u);
  for (size_t i = 0; i < kept; ++i)
    EXPECT_TRUE((*salvaged)->Get("k" + std::to_string(100 + i)).ok()) << "a prefix, no gap";
}

// A child process that tries to take the lock RocksDB takes (a POSIX record
// lock on `lock_path`) and holds what it took until the parent lets go.
class LockingChild {
 public:
  explicit LockingChild(const std::string& lock_path) {
    if (pipe(locked_) != 0 || pipe(release_) != 0) return;
    const char* path = lock_path.c_str();  // no allocation after fork
    pid_ = fork();
    if (pid_ == 0) {
      close(locked_[0]);
      close(release_[1]);
      int fd = ::open(path, O_RDWR);
      struct flock lock = {};
      lock.l_type = F_WRLCK;
      lock.l_whence = SEEK_SET;
      char ok = fd >= 0 && ::fcntl(fd, F_SETLK, &lock) == 0 ? 'y' : 'n';
      if (::write(locked_[1], &ok, 1) != 1) _exit(1);
      char c;
      while (::read(release_[0], &c, 1) > 0) {
      }
      _exit(0);
    }
    close(locked_[1]);
    close(release_[0]);
    char ok = 0;
    took_ = pid_ > 0 && ::read(locked_[0], &ok, 1) == 1 && ok == 'y';
  }
  ~LockingChild() {
    close(release_[1]);
    close(locked_[0]);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  bool took() const { return took_; }

 private:
  int locked_[2] = {-1, -1}, release_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool took_ = false;
};

// A new store in dir holding k = v; null (and the test fails) if it cannot.
std::unique_ptr<Store> OpenWithOneKey(const std::string& dir) {
  auto store = Open(dir);
  WriteBatch b;
  b.Put("k", "v");
  if (store && !store->Write(b).ok()) {
    ADD_FAILURE() << "cannot write to the store in " << dir;
    return nullptr;
  }
  return store;
}

// A data dir another process holds is refused with that process's ID; one
// this process holds, as such, and it still holds it after; the store in it
// is untouched either way.
TEST(RocksDbStore, ADataDirInUseIsRefusedNamingItsHolder) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = tmp.path() + "/db";
  {
    auto store = OpenWithOneKey(dir);
    ASSERT_TRUE(store);
    auto again = OpenRocksDbStore(dir);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), Status::Code::kIoError);
    EXPECT_NE(again.status().message().find("the data dir " + dir + " is in use by this process"),
              std::string::npos)
        << again.status().ToString();
    EXPECT_EQ(*store->Get("k"), "v");
    LockingChild other(dir + "/LOCK");
    ASSERT_GT(other.pid(), 0);
    EXPECT_FALSE(other.took()) << "the refused open left this process's lock in place";
  }
  LockingChild other(dir + "/LOCK");
  ASSERT_GT(other.pid(), 0);
  ASSERT_TRUE(other.took());
  auto refused = OpenRocksDbStore(dir);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kIoError);
  EXPECT_NE(refused.status().message().find("the data dir " + dir + " is in use by process " +
                                            std::to_string(other.pid()) + " (another etherply?)"),
            std::string::npos)
      << refused.status().ToString();
}

// Once the other process is gone, the store opens as it was.
TEST(RocksDbStore, ADataDirOpensOnceItsHolderIsGone) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = tmp.path() + "/db";
  {
    auto store = OpenWithOneKey(dir);
    ASSERT_TRUE(store);
  }
  {
    LockingChild other(dir + "/LOCK");
    ASSERT_TRUE(other.took());
    ASSERT_FALSE(OpenRocksDbStore(dir).ok());
  }
  auto store = Open(dir);
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->Get("k"), "v");
}

TEST(MemoryStore, CheckpointIsUnsupported) {
  MemoryStore store;
  EXPECT_EQ(store.Checkpoint("/tmp/nowhere").code(), Status::Code::kUnsupported);
}

INSTANTIATE_TEST_SUITE_P(MemoryAndRocksDb, StoreTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "RocksDb" : "Memory"; });

}  // namespace
}  // namespace etherply::storage
