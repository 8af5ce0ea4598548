// Online backups of the store (doc/storage.md "Backups"): POST
// /v1/admin/backups asks for one while the server runs. Each is a
// Store::Checkpoint, written on a thread of its own so that no network
// thread waits for the disk, one at a time.
//
// Thread-safety: Write may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "storage/store.h"

namespace etherply::server {

// A backup's name: etherply-YYYYMMDDTHHMMSS.mmmZ, the UTC time to the
// millisecond.
std::string BackupName(int64_t unix_ms);

class Backups {
 public:
  // Backups go into `dir`, made here if missing (the error if it cannot be).
  static Result<std::unique_ptr<Backups>> Open(const std::string& dir);
  // Waits for the backup being written, if any.
  ~Backups();

  // Starts writing a backup of `store` into dir/etherply-<UTC time to the
  // ms> (with "-2", "-3", ... after it if that is taken), then calls done,
  // on the backups' thread, with its absolute path or the error (at once,
  // here, if no thread can be started). False, and done is not called,
  // while another is being written. The store must outlive the Backups.
  bool Write(storage::Store& store, std::function<void(Result<std::string>)> done);

 private:
  explicit Backups(std::string dir) : dir_(std::move(dir)) {}

  const std::string dir_;  // absolute
  std::mutex mu_;
  bool busy_ = false;   // guarded by mu_
  std::thread thread_;  // guarded by mu_: the last backup's
};

}  // namespace etherply::server
