#include "storage/memory_store.h"

#include <algorithm>

namespace etherply::storage {

Status MemoryStore::Write(const WriteBatch& batch) {
  std::unique_lock lock(mu_);
  ++writes_begun_;
  permitted_.wait(lock, [&] { return !held_ || permits_ > 0; });
  if (held_) --permits_;
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

namespace {
Status ReadFailure() { return Status::IoError("injected read failure"); }
}  // namespace

Result<std::string> MemoryStore::Get(std::string_view key) {
  std::lock_guard lock(mu_);
  if (fail_reads_after_ == 0) return ReadFailure();
  if (fail_reads_after_ > 0) --fail_reads_after_;
  auto it = data_.find(key);
  if (it == data_.end()) return Status::NotFound("no such key");
  return it->second;
}

Status MemoryStore::ScanFrom(std::string_view prefix, std::string_view start,
                             const std::function<bool(std::string_view, std::string_view)>& f) {
  std::vector<std::pair<std::string, std::string>> snapshot;
  bool fails = false;  // after the snapshot's records
  {
    std::lock_guard lock(mu_);
    for (auto it = data_.lower_bound(std::max(prefix, start)); it != data_.end(); ++it) {
      if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
      if (fail_reads_after_ == 0) {
        fails = true;
        break;
      }
      if (fail_reads_after_ > 0) --fail_reads_after_;
      snapshot.emplace_back(it->first, it->second);
    }
  }
  for (const auto& [k, v] : snapshot)
    if (!f(k, v)) return Status::Ok();
  return fails ? ReadFailure() : Status::Ok();
}

void MemoryStore::FailWritesAfter(int n) {
  std::lock_guard lock(mu_);
  fail_after_ = n;
}

void MemoryStore::FailReadsAfter(int n) {
  std::lock_guard lock(mu_);
  fail_reads_after_ = n;
}

void MemoryStore::HoldWrites() {
  std::lock_guard lock(mu_);
  held_ = true;
  permits_ = 0;
}

void MemoryStore::PermitWrites(size_t n) {
  {
    std::lock_guard lock(mu_);
    permits_ += n;
  }
  permitted_.notify_all();
}

void MemoryStore::ResumeWrites() {
  {
    std::lock_guard lock(mu_);
    held_ = false;
  }
  permitted_.notify_all();
}

size_t MemoryStore::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

size_t MemoryStore::writes_begun() const {
  std::lock_guard lock(mu_);
  return writes_begun_;
}

}  // namespace etherply::storage
