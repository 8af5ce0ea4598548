// One line per event on stderr: "2026-11-25T02:07:51.123Z LEVEL message",
// the message's control characters written as \xNN, and its C1 controls and
// Unicode line separators as \uNNNN.
//
// Thread-safety: lines from concurrent threads never interleave.
#pragma once

#include <string>
#include <string_view>

namespace etherply {

enum class LogLevel { kInfo, kWarn, kError };

void Log(LogLevel level, std::string_view message);
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarn(std::string_view m) { Log(LogLevel::kWarn, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }

// `value` in double quotes, its quotes and backslashes escaped with a
// backslash: for a value a client chose (a token's sub), so that it reads
// as one field whatever it holds.
std::string Quoted(std::string_view value);

}  // namespace etherply
