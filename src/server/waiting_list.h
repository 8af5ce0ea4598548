// The HTTP connections waiting on their client (for a request, for it to
// take an answer, for it to close), oldest first. When a new connection
// finds the server full, the acceptor closes the connection that has waited
// longest rather than refuse the newcomer, so that connections a client
// leaves idle (a slow client's, or an attacker's) cannot lock the other
// clients out until they time out (doc/design.md). Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace etherply::server {

class WaitingList {
 public:
  // Lists a connection that now waits for a request; `close` is called
  // with the connection's ticket, on the thread that calls CloseOldest, if
  // that picks it. Returns the ticket.
  uint64_t Add(std::function<void(uint64_t ticket)> close);
  // Takes the ticket's connection off the list (what it waited for came, or
  // it closed). False if CloseOldest took it already: the connection must
  // then close, even if what it waited for came, so that each pick closes one.
  bool Remove(uint64_t ticket);
  // Takes the connection that has waited longest off the list and calls its
  // `close` (without the list's lock held); false if none waits.
  bool CloseOldest();
  size_t size() const;

 private:
  mutable std::mutex mu_;
  uint64_t next_ = 1;                                          // guarded by mu_
  std::map<uint64_t, std::function<void(uint64_t)>> waiting_;  // guarded by mu_; oldest first
};

}  // namespace etherply::server
