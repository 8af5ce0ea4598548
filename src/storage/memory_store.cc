#include "storage/memory_store.h"

#include <algorithm>

namespace etherply::storage {

Status MemoryStore::Write(const WriteBatch& batch) {
  std::lock_guard lock(mu_);
  if (fail_after_ == 0) return Status::IoError("injected write failure");
  if (fail_after_ > 0) --fail_after_;
  for (const auto& r : batch.records()) {
    if (r.value) {
      data_[r.key] = *r.value;
    } else {
      data_.erase(r.key);
    }
  }
  ++writes_;
  return Status::Ok();
}

Result<std::string> MemoryStore::Get(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return Status::NotFound("no such key");
  return it->second;
}

Status MemoryStore::ScanFrom(std::string_view prefix, std::string_view start,
                             const std::function<bool(std::string_view, std::string_view)>& f) {
  std::vector<std::pair<std::string, std::string>> snapshot;
  {
    std::lock_guard lock(mu_);
    for (auto it = data_.lower_bound(std::max(prefix, start)); it != data_.end(); ++it) {
      if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
      snapshot.emplace_back(it->first, it->second);
    }
  }
  for (const auto& [k, v] : snapshot)
    if (!f(k, v)) break;
  return Status::Ok();
}

void MemoryStore::FailWritesAfter(int n) {
  std::lock_guard lock(mu_);
  fail_after_ = n;
}

size_t MemoryStore::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

}  // namespace etherply::storage
