#include "storage/committer.h"

#include <vector>

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
    if (!failed_.count(stream)) {
      queue_.push_back(Item{stream, std::move(batch), std::move(done)});
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
  while (true) {
    std::vector<Item> group, rejected;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to write
      while (!queue_.empty()) {
        // Queued before an earlier group of its stream failed: must not land.
        (failed_.count(queue_.front().stream) ? rejected : group)
            .push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (Item& item : rejected)
      item.done(Status::IoError("an earlier write of this workspace failed"));
    if (group.empty()) continue;
    WriteBatch all;
    for (Item& item : group) all.Append(std::move(item.batch));
    Status s = store_.Write(all);
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      for (const Item& item : group) failed_.insert(item.stream);
    }
    for (Item& item : group) item.done(s);
  }
}

}  // namespace etherply::storage
