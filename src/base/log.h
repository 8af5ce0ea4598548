// One line per event on stderr: "2026-11-25T02:07:51.123Z LEVEL message",
// the message's control characters and backslashes written as \xNN.
//
// Thread-safety: lines from concurrent threads never interleave.
#pragma once

#include <string_view>

namespace etherply {

enum class LogLevel { kInfo, kWarn, kError };

void Log(LogLevel level, std::string_view message);
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarn(std::string_view m) { Log(LogLevel::kWarn, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }

}  // namespace etherply
