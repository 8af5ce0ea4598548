#include "server/backups.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "base/log.h"
#include "base/utc.h"

namespace etherply::server {

std::string BackupName(int64_t unix_ms) {
  std::string name = "etherply-";
  for (char c : Iso8601Millis(unix_ms))  // ISO 8601's basic form: no - or :
    if (c != '-' && c != ':') name += c;
  return name;
}

std::optional<std::pair<std::string, int>> BackupOrder(std::string_view name) {
  constexpr std::string_view kPrefix = "etherply-";
  constexpr std::string_view kTime = "00000000T000000.000Z";  // digits where the 0s are
  if (name.size() < kPrefix.size() + kTime.size() || !name.starts_with(kPrefix)) return {};
  std::string_view time = name.substr(kPrefix.size(), kTime.size());
  for (size_t i = 0; i < kTime.size(); ++i)
    if (kTime[i] == '0' ? !std::isdigit(static_cast<unsigned char>(time[i])) : time[i] != kTime[i])
      return {};
  std::string_view rest = name.substr(kPrefix.size() + kTime.size());
  if (rest.empty()) return std::pair{std::string(time), 1};
  // "-n" as FreePath makes it: 2 to 999, no leading zero.
  if (rest.size() < 2 || rest.size() > 4 || rest[0] != '-' || rest[1] == '0') return {};
  int n = 0;
  for (char c : rest.substr(1)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return {};
    n = n * 10 + (c - '0');
  }
  if (n < 2) return {};
  return std::pair{std::string(time), n};
}

namespace {

constexpr std::string_view kRemoving = ".removing";

// Syncs a directory, so that an entry renamed into it survives a crash.
Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("open " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IoError("fsync " + dir + ": " + std::strerror(err));
  return Status::Ok();
}

// dir/BackupName(), or with "-2", "-3", ... after it if that is taken (the
// clock set back, or two backups in one millisecond).
std::string FreePath(const std::string& dir) {
  std::string base = (std::filesystem::path(dir) / BackupName(NowUnixMillis())).string();
  std::string path = base;
  std::error_code ec;
  for (int n = 2; n < 1000 &&
                  (std::filesystem::exists(path, ec) || std::filesystem::exists(path + ".tmp", ec));
       ++n)
    path = base + "-" + std::to_string(n);
  return path;
}

}  // namespace

Result<std::unique_ptr<Backups>> Backups::Open(const std::string& dir, size_t keep) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create backup dir " + dir + ": " + ec.message());
  // The directory made, symbolic links resolved ("link/.." is not ".").
  std::string absolute = std::filesystem::canonical(dir, ec).string();
  if (ec) return Status::IoError("backup dir " + dir + ": " + ec.message());
  return std::unique_ptr<Backups>(new Backups(std::move(absolute), keep));
}

Backups::~Backups() {
  std::thread last;
  {
    std::lock_guard lock(mu_);
    last = std::move(thread_);
  }
  if (last.joinable()) last.join();  // it takes mu_ before it ends
}

// Each backup beyond those kept is renamed NAME.removing, which no reader
// takes for a backup, before its files go: one cut short is finished by the
// next pass.
std::vector<std::string> Backups::Prune(const std::string& kept) const {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::pair<std::string, int>, std::string>> others;  // order, path
  std::vector<std::string> doomed;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string path = it->path().string();
    // A backup is a directory of its own: a symbolic link is not counted.
    std::error_code type_ec;
    bool dir = it->is_directory(type_ec) && !it->is_symlink(type_ec);
    if (name.ends_with(kRemoving) &&
        BackupOrder(std::string_view(name).substr(0, name.size() - kRemoving.size())))
      doomed.push_back(path);
    else if (auto order = BackupOrder(name); order && path != kept && dir)
      others.emplace_back(std::move(*order), std::move(path));
  }
  std::vector<std::string> removed;
  if (ec) {  // a part of the list could leave the older out and take the newer
    LogWarn("listing backup dir " + dir_ + " to remove old backups: " + ec.message() +
            "; none removed");
    return removed;
  }
  if (keep_ > 0 && others.size() > keep_ - 1) {
    std::sort(others.begin(), others.end());
    for (size_t i = 0; i < others.size() - (keep_ - 1); ++i) {  // oldest first
      const std::string& path = others[i].second;
      fs::rename(path, path + std::string(kRemoving), ec);
      if (ec) {
        LogWarn("cannot remove old backup " + path + ": " + ec.message());
        continue;
      }
      fs::remove_all(path + std::string(kRemoving), ec);
      if (ec) {
        LogWarn("cannot remove old backup " + path + std::string(kRemoving) + ": " + ec.message());
        continue;
      }
      removed.push_back(path);
    }
  }
  for (const std::string& path : doomed) {  // what earlier passes left
    fs::remove_all(path, ec);
    if (ec) LogWarn("cannot remove " + path + ": " + ec.message());
  }
  if (!removed.empty())
    LogInfo("removed " + std::to_string(removed.size()) + " old backup(s), oldest " + removed[0]);
  return removed;
}

bool Backups::Write(storage::Store& store, std::function<void(Result<Written>)> done) {
  std::lock_guard lock(mu_);
  if (busy_) return false;
  busy_ = true;
  if (thread_.joinable()) thread_.join();  // done, or at most finishing its done()
  auto run = [this, &store, done] {
    std::string path = FreePath(dir_);
    Status s = store.Checkpoint(path);  // renames NAME.tmp to NAME at the end
    if (s.ok()) s = SyncDir(dir_);
    if (s.ok())
      LogInfo("backup written to " + path);
    else
      LogError("backup into " + path + " failed: " + s.ToString());
    Result<Written> result = s;
    if (s.ok()) result = Written{path, Prune(path)};
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    done(std::move(result));
  };
  try {
    thread_ = std::thread(std::move(run));
  } catch (const std::system_error& e) {  // the system's thread limit
    busy_ = false;
    done(Status::IoError(std::string("cannot start a thread for the backup: ") + e.what()));
  }
  return true;
}

}  // namespace etherply::server
