// The clock of webhook delivery: wall time for what is written into events
// and headers, monotonic time for scheduling retries, and a way to wait for
// either a deadline or a notification. RealClock is the production one;
// tests use a fake that they advance by hand.
//
// Thread-safety: implementations must allow every method to be called from
// any thread concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace etherply::webhooks {

class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using MonoTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;

  // Now, as calendar time (event timestamps, webhook-timestamp, Retry-After
  // dates).
  virtual WallTime Now() = 0;
  // Now, on a clock that never goes back (retry schedules).
  virtual MonoTime Monotonic() = 0;
  // Blocks on cv (with `lock` held on entry and on return) until Monotonic()
  // reaches `until` or cv is notified. May return early; callers re-check.
  virtual void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         MonoTime until) = 0;
};

// The system's clocks.
class RealClock final : public Clock {
 public:
  WallTime Now() override { return std::chrono::system_clock::now(); }
  MonoTime Monotonic() override { return std::chrono::steady_clock::now(); }
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 MonoTime until) override {
    cv.wait_until(lock, until);
  }
};

}  // namespace etherply::webhooks
