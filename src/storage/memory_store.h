// An in-memory Store for tests, with fault injection: FailWritesAfter(n)
// makes every write after the next n fail with kIoError (applying nothing).
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

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
  size_t writes() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string, std::less<>> data_;  // guarded by mu_
  int fail_after_ = -1;                                   // guarded by mu_
  size_t writes_ = 0;                                     // guarded by mu_
};

}  // namespace etherply::storage
