// One line per event on stderr: "2026-11-25T02:07:51.123Z LEVEL message",
// the message's control characters written as \xNN, and its C1 controls and
// Unicode line separators as \uNNNN.
//
// Thread-safety: lines from concurrent threads never interleave.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

namespace etherply {

enum class LogLevel { kInfo, kWarn, kError };

void Log(LogLevel level, std::string_view message);
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarn(std::string_view m) { Log(LogLevel::kWarn, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }

// A warning about an event that can repeat thousands of times a second (a
// flood of refused connections): the first is logged at once, then at most
// one per `every`, saying how many were held back since the last line.
// Thread-safe.
class ThrottledWarning {
 public:
  explicit ThrottledWarning(std::chrono::seconds every) : every_(every) {}
  void Warn(std::string_view message,
            std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  const std::chrono::seconds every_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point next_{};  // guarded by mu_
  size_t held_ = 0;                               // guarded by mu_
};

// `value` in double quotes, its quotes and backslashes escaped with a
// backslash: for a value a client chose (a token's sub), so that it reads
// as one field whatever it holds.
std::string Quoted(std::string_view value);

}  // namespace etherply
