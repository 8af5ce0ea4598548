#include "server/backups.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "base/testutil.h"
#include "base/utc.h"
#include "storage/memory_store.h"

namespace etherply::server {
namespace {

using testutil::TempDir;

// A store whose Checkpoint waits until released, then makes `dir`; as
// RocksDB's, it fails on a dir that exists.
class SlowStore : public storage::MemoryStore {
 public:
  Status Checkpoint(const std::string& dir) override {
    released_.Wait();
    if (!std::filesystem::create_directory(dir)) return Status::IoError(dir + " exists");
    return Status::Ok();
  }
  void Release() { released_.Open(); }

 private:
  testutil::Gate released_;
};

// The result a Write hands to done, waited for.
class Outcome {
 public:
  std::function<void(Result<std::string>)> Callback() {
    return [this](Result<std::string> r) {
      std::lock_guard lock(mu_);
      result_ = std::move(r);
      cv_.notify_all();
    };
  }
  Result<std::string> Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return result_.has_value(); });
    return *result_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<std::string>> result_;
};

TEST(Backups, OpenMakesTheDirAndWriteNamesEachBackupUnderIt) {
  TempDir tmp;
  SlowStore store;
  store.Release();
  auto backups = Backups::Open(tmp.path() + "/a/b/../backups");
  ASSERT_TRUE(backups.ok()) << backups.status().ToString();
  EXPECT_TRUE(std::filesystem::is_directory(tmp.path() + "/a/backups"));
  Outcome first;
  ASSERT_TRUE((*backups)->Write(store, first.Callback()));
  Result<std::string> path = first.Wait();
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(std::filesystem::path(*path).parent_path(), tmp.path() + "/a/backups");
  EXPECT_EQ(std::filesystem::path(*path).filename().string().rfind("etherply-", 0), 0u) << *path;
  EXPECT_EQ(BackupName(1764905400123), "etherply-20251205T033000.123Z");
  EXPECT_TRUE(std::filesystem::is_directory(*path));
  Outcome second;
  ASSERT_TRUE((*backups)->Write(store, second.Callback())) << "one at a time, not one in all";
  ASSERT_TRUE(second.Wait().ok());
}

// The clock set back, or two backups in one millisecond: the name is taken.
TEST(Backups, ANameTakenGetsASuffix) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  SlowStore store;
  store.Release();
  auto backups = Backups::Open(tmp.path());
  ASSERT_TRUE(backups.ok());
  // Every name of the next 3 seconds, taken.
  int64_t now = NowUnixMillis();
  for (int64_t ms = 0; ms < 3000; ++ms)
    std::filesystem::create_directory(tmp.path() + "/" + BackupName(now + ms));
  Outcome outcome;
  ASSERT_TRUE((*backups)->Write(store, outcome.Callback()));
  Result<std::string> path = outcome.Wait();
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(path->substr(path->size() - 2), "-2") << *path;
}

TEST(Backups, OpenFailsWhereTheDirCannotBeMade) {
  TempDir tmp;
  std::FILE* f = std::fopen((tmp.path() + "/file").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto backups = Backups::Open(tmp.path() + "/file/backups");
  ASSERT_FALSE(backups.ok());
  EXPECT_EQ(backups.status().code(), Status::Code::kIoError);
  EXPECT_NE(backups.status().message().find("cannot create backup dir"), std::string::npos)
      << backups.status().ToString();
}

TEST(Backups, ASecondWriteWhileOneIsBeingWrittenIsRefused) {
  TempDir tmp;
  SlowStore store;
  auto backups = Backups::Open(tmp.path());
  ASSERT_TRUE(backups.ok());
  Outcome first;
  ASSERT_TRUE((*backups)->Write(store, first.Callback()));
  bool called = false;
  EXPECT_FALSE((*backups)->Write(store, [&](Result<std::string>) { called = true; }));
  store.Release();
  EXPECT_TRUE(first.Wait().ok());
  EXPECT_FALSE(called);
}

TEST(Backups, TheStoresErrorIsHandedToDone) {
  TempDir tmp;
  storage::MemoryStore store;  // cannot checkpoint
  auto backups = Backups::Open(tmp.path());
  ASSERT_TRUE(backups.ok());
  Outcome outcome;
  ASSERT_TRUE((*backups)->Write(store, outcome.Callback()));
  Result<std::string> r = outcome.Wait();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnsupported);
}

TEST(Backups, DestroyingWaitsForTheBackupBeingWritten) {
  TempDir tmp;
  SlowStore store;
  auto backups = Backups::Open(tmp.path());
  ASSERT_TRUE(backups.ok());
  std::atomic<bool> done{false};
  ASSERT_TRUE((*backups)->Write(store, [&](Result<std::string>) { done = true; }));
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    store.Release();
  });
  backups->reset();
  EXPECT_TRUE(done);
  release.join();
}

}  // namespace
}  // namespace etherply::server
