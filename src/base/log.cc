#include "base/log.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>

#include "base/hex.h"
#include "base/utc.h"

namespace etherply {

void Log(LogLevel level, std::string_view message) {
  static std::mutex mu;
  const char* lvl = level == LogLevel::kInfo ? "INFO" : level == LogLevel::kWarn ? "WARN" : "ERROR";
  std::string line = Iso8601Millis(NowUnixMillis()) + " " + lvl + " ";
  // One event, one line: what could break or rewrite a line is escaped.
  // Bytes below 0x20 and DEL as \xNN; the C1 controls (U+0080-U+009F) and
  // the line and paragraph separators (U+2028, U+2029) as \uNNNN. Values
  // from clients are quoted by the caller (Quoted): a quote in them cannot
  // end their field.
  for (size_t i = 0; i < message.size(); ++i) {
    auto u = static_cast<unsigned char>(message[i]);
    auto next = [&](size_t k) {
      return i + k < message.size() ? static_cast<unsigned char>(message[i + k]) : 0;
    };
    if (u < 0x20 || u == 0x7f) {
      line += "\\x";
      AppendHex(line, u);
    } else if (u == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) {
      line += "\\u00";
      AppendHex(line, next(1));
      i += 1;
    } else if (u == 0xe2 && next(1) == 0x80 && (next(2) == 0xa8 || next(2) == 0xa9)) {
      line += next(2) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      line += message[i];
    }
  }
  line += '\n';
  std::lock_guard lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void ThrottledWarning::Warn(std::string_view message, std::chrono::steady_clock::time_point now) {
  size_t held;
  {
    std::lock_guard lock(mu_);
    if (now < next_) {
      ++held_;
      return;
    }
    next_ = now + every_;
    held = std::exchange(held_, 0);
  }
  if (held == 0) return LogWarn(message);
  LogWarn(std::string(message) + " (and " + std::to_string(held) +
          " more like it since the last such line)");
}

std::string Quoted(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

}  // namespace etherply
