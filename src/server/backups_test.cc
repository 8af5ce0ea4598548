#include "server/backups.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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
  std::function<void(Result<Backups::Written>)> Callback() {
    return [this](Result<Backups::Written> r) {
      std::lock_guard lock(mu_);
      result_ = std::move(r);
      cv_.notify_all();
    };
  }
  Result<Backups::Written> Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return result_.has_value(); });
    return *result_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<Backups::Written>> result_;
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
  Result<Backups::Written> written = first.Wait();
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  const std::string& path = written->path;
  EXPECT_EQ(std::filesystem::path(path).parent_path(), tmp.path() + "/a/backups");
  EXPECT_EQ(std::filesystem::path(path).filename().string().rfind("etherply-", 0), 0u) << path;
  EXPECT_EQ(BackupName(1764905400123), "etherply-20251205T033000.123Z");
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_TRUE(written->removed.empty());
  Outcome second;
  ASSERT_TRUE((*backups)->Write(store, second.Callback())) << "one at a time, not one in all";
  ASSERT_TRUE(second.Wait().ok());
  EXPECT_TRUE(std::filesystem::is_directory(path)) << "every backup kept by default";
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
  Result<Backups::Written> written = outcome.Wait();
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->path.substr(written->path.size() - 2), "-2") << written->path;
}

TEST(Backups, BackupOrderTakesTheNamesBackupsGetAndNothingElse) {
  using Order = std::optional<std::pair<std::string, int>>;
  EXPECT_EQ(BackupOrder("etherply-20251205T033000.123Z"), Order({"20251205T033000.123Z", 1}));
  EXPECT_EQ(BackupOrder("etherply-20251205T033000.123Z-2"), Order({"20251205T033000.123Z", 2}));
  EXPECT_EQ(BackupOrder("etherply-20251205T033000.123Z-999"), Order({"20251205T033000.123Z", 999}));
  for (const char* name :
       {"", "etherply-", "etherply-20251205T033000.123", "etherply-20251205T033000.123Z.tmp",
        "etherply-20251205T033000.123Z.removing", "etherply-20251205T033000.123Z-",
        "etherply-20251205T033000.123Z-0", "etherply-20251205T033000.123Z-1",
        "etherply-20251205T033000.123Z-02", "etherply-20251205T033000.123Z-1000",
        "etherply-20251205T033000.123Z-2x", "etherply-2025120ST033000.123Z",
        "etherply-20251205-033000.123Z", "Etherply-20251205T033000.123Z", "data", "LOCK"})
    EXPECT_EQ(BackupOrder(name), std::nullopt) << name;
}

// What a backup dir holds beside backups, which retention leaves alone:
// their names.
std::vector<std::string> MakeStrangers(const std::string& dir) {
  std::vector<std::string> names = {"etherply-notes", BackupName(1000) + ".tmp",  // cut short
                                    BackupName(2000),  // a file, not a backup
                                    BackupName(NowUnixMillis() + 86'400'000)};  // a link
  std::filesystem::create_directory(dir + "/" + names[0]);
  std::filesystem::create_directory(dir + "/" + names[1]);
  if (std::FILE* f = std::fopen((dir + "/" + names[2]).c_str(), "w")) std::fclose(f);
  std::filesystem::create_directory_symlink(dir + "/" + names[0], dir + "/" + names[3]);
  return names;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Backups, KeepRemovesTheOldestBackupsAndNothingElse) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = std::filesystem::canonical(tmp.path()).string();
  int64_t now = NowUnixMillis();
  std::vector<std::string> old;  // oldest first
  for (int64_t ago : {40'000, 30'000, 20'000, 10'000}) old.push_back(BackupName(now - ago));
  old.insert(old.begin() + 2, BackupName(now - 30'000) + "-2");
  for (const std::string& name : old) std::filesystem::create_directory(dir + "/" + name);
  std::vector<std::string> strangers = MakeStrangers(dir);
  std::filesystem::create_directory(dir + "/" + BackupName(3000) + ".removing");  // cut short
  SlowStore store;
  store.Release();
  auto backups = Backups::Open(dir, 3);
  ASSERT_TRUE(backups.ok());
  Outcome outcome;
  ASSERT_TRUE((*backups)->Write(store, outcome.Callback()));
  Result<Backups::Written> written = outcome.Wait();
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->removed,
            (std::vector<std::string>{dir + "/" + old[0], dir + "/" + old[1], dir + "/" + old[2]}))
      << "the oldest first; -2 after the name it extends";
  std::vector<std::string> expected = strangers;
  for (const std::string& name :
       {old[3], old[4], std::filesystem::path(written->path).filename().string()})
    expected.push_back(name);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Entries(dir), expected) << "NAME.removing finished; the rest untouched";
}

// The clock set back: the new backup's name sorts before the old ones', and
// it stays all the same.
TEST(Backups, KeepNeverRemovesTheBackupJustWritten) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = std::filesystem::canonical(tmp.path()).string();
  int64_t later = NowUnixMillis() + 3'600'000;
  for (int64_t ms : {0, 1000, 2000})
    std::filesystem::create_directory(dir + "/" + BackupName(later + ms));
  SlowStore store;
  store.Release();
  auto backups = Backups::Open(dir, 2);
  ASSERT_TRUE(backups.ok());
  Outcome outcome;
  ASSERT_TRUE((*backups)->Write(store, outcome.Callback()));
  Result<Backups::Written> written = outcome.Wait();
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->removed, (std::vector<std::string>{dir + "/" + BackupName(later),
                                                        dir + "/" + BackupName(later + 1000)}));
  std::vector<std::string> expected = {std::filesystem::path(written->path).filename().string(),
                                       BackupName(later + 2000)};
  EXPECT_EQ(Entries(dir), expected);
}

TEST(Backups, ABackupThatFailsRemovesNothing) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = std::filesystem::canonical(tmp.path()).string();
  for (int64_t ms : {1000, 2000, 3000})
    std::filesystem::create_directory(dir + "/" + BackupName(ms));
  MakeStrangers(dir);
  std::vector<std::string> before = Entries(dir);
  storage::MemoryStore store;  // cannot checkpoint
  auto backups = Backups::Open(dir, 1);
  ASSERT_TRUE(backups.ok());
  Outcome outcome;
  ASSERT_TRUE((*backups)->Write(store, outcome.Callback()));
  ASSERT_FALSE(outcome.Wait().ok());
  EXPECT_EQ(Entries(dir), before);
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
  EXPECT_FALSE((*backups)->Write(store, [&](Result<Backups::Written>) { called = true; }));
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
  Result<Backups::Written> r = outcome.Wait();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnsupported);
}

TEST(Backups, DestroyingWaitsForTheBackupBeingWritten) {
  TempDir tmp;
  SlowStore store;
  auto backups = Backups::Open(tmp.path());
  ASSERT_TRUE(backups.ok());
  std::atomic<bool> done{false};
  ASSERT_TRUE((*backups)->Write(store, [&](Result<Backups::Written>) { done = true; }));
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
