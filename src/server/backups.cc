#include "server/backups.h"

#include <fcntl.h>
#include <unistd.h>

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

namespace {

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

Result<std::unique_ptr<Backups>> Backups::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create backup dir " + dir + ": " + ec.message());
  // The directory made, symbolic links resolved ("link/.." is not ".").
  std::string absolute = std::filesystem::canonical(dir, ec).string();
  if (ec) return Status::IoError("backup dir " + dir + ": " + ec.message());
  return std::unique_ptr<Backups>(new Backups(std::move(absolute)));
}

Backups::~Backups() {
  std::thread last;
  {
    std::lock_guard lock(mu_);
    last = std::move(thread_);
  }
  if (last.joinable()) last.join();  // it takes mu_ before it ends
}

bool Backups::Write(storage::Store& store, std::function<void(Result<std::string>)> done) {
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
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    done(s.ok() ? Result<std::string>(path) : Result<std::string>(s));
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
