#include "server/waiting_list.h"

#include <utility>

namespace etherply::server {

uint64_t WaitingList::Add(std::function<void(uint64_t ticket)> close) {
  std::lock_guard lock(mu_);
  uint64_t ticket = next_++;
  waiting_.emplace_hint(waiting_.end(), ticket, std::move(close));
  return ticket;
}

bool WaitingList::Remove(uint64_t ticket) {
  std::lock_guard lock(mu_);
  return waiting_.erase(ticket) == 1;
}

bool WaitingList::CloseOldest() {
  std::function<void(uint64_t)> close;
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    if (waiting_.empty()) return false;
    ticket = waiting_.begin()->first;
    close = std::move(waiting_.begin()->second);
    waiting_.erase(waiting_.begin());
  }
  close(ticket);
  return true;
}

size_t WaitingList::size() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

}  // namespace etherply::server
