// Helpers shared by the unit tests (only test code includes this).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/hex.h"

namespace etherply::testutil {

// "85 6f 4a" -> {0x85, 0x6f, 0x4a}: a hex literal, spaces ignored. A bad
// literal fails the test that wrote it.
inline Bytes B(std::string_view hex) {
  std::string digits;
  for (char c : hex)
    if (c != ' ') digits.push_back(c);
  auto bytes = FromHex(digits);
  if (!bytes.ok()) {
    ADD_FAILURE() << "bad hex literal in a test: " << hex;
    return {};
  }
  return *bytes;
}

// A fresh directory under /tmp, removed with everything in it at the end of
// the scope. path() is empty (and the test fails) if it cannot be made.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/etherply-test-XXXXXX";
    if (mkdtemp(tmpl))
      path_ = tmpl;
    else
      ADD_FAILURE() << "cannot make a directory under /tmp";
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Threads that Wait stay until Open is called, once, for good.
class Gate {
 public:
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

}  // namespace etherply::testutil
