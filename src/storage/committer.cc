#include "storage/committer.h"

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
  {
    std::lock_guard lock(mu_);
    bool failed = failed_.count(stream) > 0;
    // A failed stream's batch is rejected here only when no earlier callback
    // is still to run; otherwise it is queued, marked rejected, and the writer
    // thread rejects it in its turn (even if the failure is cleared meanwhile).
    if (!failed || busy_ || !queue_.empty()) {
      queue_.push_back(Item{stream, std::move(batch), std::move(done), failed});
      cv_.notify_one();
      return;
    }
  }
  done(Status::IoError("an earlier write of this workspace failed; it is being reloaded"));
}

void Committer::ClearFailure(uint64_t stream) {
  std::lock_guard lock(mu_);
  failed_.erase(stream);
}

void Committer::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to write
    std::deque<Item> items = std::move(queue_);
    queue_.clear();
    busy_ = true;
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
}

}  // namespace etherply::storage
