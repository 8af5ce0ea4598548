// An in-memory Store for tests, with fault injection: FailWritesAfter(n)
// makes every write after the next n fail with kIoError (applying nothing);
// FailReadsAfter(n) makes reads fail with kIoError once n more records are
// read (a Get reads one; a scan stops with the error where it reaches the
// limit, having passed on the records before it);
// HoldWrites() stalls the disk: each write then waits, before it is applied
// or failed, for a permit (PermitWrites(n) grants n, ResumeWrites() ends the
// stall).
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>

#include "storage/store.h"

namespace etherply::storage {

class MemoryStore : public Store {
 public:
  Status Write(const WriteBatch& batch) override;
  Result<std::string> Get(std::string_view key) override;
  Status ScanFrom(std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& f) override;

  // -1 (the default): never fail.
  void FailWritesAfter(int n);
  void FailReadsAfter(int n);
  void HoldWrites();
  void PermitWrites(size_t n);
  void ResumeWrites();
  // Writes applied.
  size_t writes() const;
  // Writes begun: applied, failed, or waiting for a permit.
  size_t writes_begun() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable permitted_;
  std::map<std::string, std::string, std::less<>> data_;  // guarded by mu_
  int fail_after_ = -1;                                   // guarded by mu_
  int fail_reads_after_ = -1;                             // guarded by mu_
  bool held_ = false;                                     // guarded by mu_
  size_t permits_ = 0;                                    // guarded by mu_
  size_t writes_ = 0;                                     // guarded by mu_
  size_t writes_begun_ = 0;                               // guarded by mu_
};

}  // namespace etherply::storage
