// Online backups of the store (doc/storage.md "Backups"): POST
// /v1/admin/backups asks for one while the server runs. Each is a
// Store::Checkpoint, written on a thread of its own so that no network
// thread waits for the disk, one at a time; the oldest beyond a number kept
// are removed after it. The backup dir is the server's own: nothing else
// should write backups' names into it.
//
// Thread-safety: Write may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "storage/store.h"

namespace etherply::server {

// A backup's name: etherply-YYYYMMDDTHHMMSS.mmmZ, the UTC time to the
// millisecond.
std::string BackupName(int64_t unix_ms);

// Where a name stands among backups' names, oldest first: BackupName's
// time, then the n of a "-n" after it (1 without). Empty for a name that is
// not a backup's (nor a backup's being written or removed: NAME.tmp,
// NAME.removing).
std::optional<std::pair<std::string, int>> BackupOrder(std::string_view name);

class Backups {
 public:
  // Backups go into `dir`, made here if missing (the error if it cannot be).
  // After each backup the oldest are removed, so that `keep` remain (0:
  // all remain). A backup is a directory named as BackupName makes them;
  // symbolic links and anything else in `dir` are left alone.
  static Result<std::unique_ptr<Backups>> Open(const std::string& dir, size_t keep = 0);
  // Waits for the backup being written, if any.
  ~Backups();

  struct Written {
    std::string path;                  // absolute
    std::vector<std::string> removed;  // absolute paths, oldest first
  };

  // Starts writing a backup of `store` into dir/etherply-<UTC time to the
  // ms> (with "-2", "-3", ... after it if that is taken), then removes the
  // backups beyond `keep`: the one just written stays, and of the others
  // the latest by name (a name holds the time it was taken). Then calls
  // done, on the backups' thread, with what it did or the error (at once,
  // here, if no thread can be started); a backup that fails removes
  // nothing. False, and done is not called, while another is being
  // written. The store must outlive the Backups.
  bool Write(storage::Store& store, std::function<void(Result<Written>)> done);

 private:
  Backups(std::string dir, size_t keep) : dir_(std::move(dir)), keep_(keep) {}
  // Removes the backups beyond keep_ other than `kept`, and what an earlier
  // removal left (NAME.removing); returns those removed, and logs what it
  // cannot remove. Removes none if dir_ cannot be listed whole.
  std::vector<std::string> Prune(const std::string& kept) const;

  const std::string dir_;  // absolute
  const size_t keep_;
  std::mutex mu_;
  bool busy_ = false;   // guarded by mu_
  std::thread thread_;  // guarded by mu_: the last backup's
};

}  // namespace etherply::server
