// Test doubles for the workspace's unit tests (only test code includes this).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "server/workspace.h"

namespace etherply::server::testutil {

// A client that keeps what the workspace sends it.
class FakeClient : public Client {
 public:
  void Send(std::shared_ptr<const std::string> message) override {
    std::lock_guard lock(mu_);
    messages_.push_back(*message);
  }
  void Close(uint16_t code, std::string_view) override {
    std::lock_guard lock(mu_);
    close_code_ = code;
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  uint16_t close_code() {  // 0: not closed
    std::lock_guard lock(mu_);
    return close_code_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> messages_;
  uint16_t close_code_ = 0;
};

}  // namespace etherply::server::testutil
