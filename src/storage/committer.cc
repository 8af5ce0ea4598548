#include "storage/committer.h"

#include <algorithm>

namespace etherply::storage {

Committer::Committer(Store& store) : store_(store), writer_([this] { Run(); }) {}

Committer::~Committer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  writer_.join();
}

void Committer::Submit(uint64_t stream, WriteBatch batch, Callback done) {
  Queue(stream, std::move(batch), std::move(done), false);
}

bool Committer::SubmitMayLead(uint64_t stream, WriteBatch batch, Callback done) {
  return Queue(stream, std::move(batch), std::move(done), true);
}

bool Committer::Queue(uint64_t stream, WriteBatch batch, Callback done, bool may_lead) {
  {
    std::lock_guard lock(mu_);
    bool failed = failed_.count(stream) > 0;
    // A failed stream's batch is rejected here only when no earlier callback
    // is still to run; otherwise it is queued, marked rejected, and rejected
    // in its group's turn (even if the failure is cleared meanwhile).
    if (!failed || busy_ || !queue_.empty()) {
      bool lead = may_lead && !busy_ && queue_.empty() && lone_groups_ >= kLoneGroupsToLead;
      queue_.push_back(Item{stream, std::move(batch), std::move(done), failed});
      awaiting_leader_ = lead;  // a later Submit hands the leader's batch to the writer thread
      if (!lead) cv_.notify_one();
      return lead;
    }
  }
  done(Status::IoError("an earlier write of this workspace failed; it is being reloaded"));
  return false;
}

void Committer::Lead() {
  std::unique_lock lock(mu_);
  awaiting_leader_ = false;
  if (busy_ || queue_.empty()) return;
  WriteGroup(lock);
  // Submitted while this thread wrote: the writer thread's turn. Stopping:
  // the writer thread waits for this group before it ends.
  if (!queue_.empty() || stopping_) cv_.notify_one();
}

bool Committer::idle() const {
  std::lock_guard lock(mu_);
  return !busy_ && queue_.empty();
}

void Committer::ClearFailure(uint64_t stream) {
  std::lock_guard lock(mu_);
  failed_.erase(stream);
}

void Committer::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return !busy_ && (stopping_ || (!queue_.empty() && !awaiting_leader_)); });
    if (queue_.empty()) return;  // stopping, and nothing left to write
    WriteGroup(lock);
  }
}

void Committer::WriteGroup(std::unique_lock<std::mutex>& lock) {
  std::deque<Item> items = std::move(queue_);
  queue_.clear();
  busy_ = true;
  lone_groups_ = items.size() == 1 ? std::min(lone_groups_ + 1, kLoneGroupsToLead) : 0;
  lock.unlock();

  WriteBatch all;
  bool any = false;
  for (Item& item : items) {
    if (item.rejected) continue;
    all.Append(std::move(item.batch));
    any = true;
  }
  Status s = any ? store_.Write(all) : Status::Ok();
  if (!s.ok()) {
    lock.lock();
    for (const Item& item : items)
      if (!item.rejected) failed_.insert(item.stream);
    // Queued behind the failed write: must not land, even if the failure is
    // cleared before the writer thread takes them.
    for (Item& item : queue_) item.rejected |= failed_.count(item.stream) > 0;
    lock.unlock();
  }
  for (Item& item : items)
    item.done(item.rejected ? Status::IoError("an earlier write of this workspace failed") : s);

  lock.lock();
  busy_ = false;
}

}  // namespace etherply::storage
