// Times as UTC text.
#pragma once

#include <cstdint>
#include <string>

namespace etherply {

// "2026-11-25T02:07:51.123Z": RFC 3339 in UTC, to the millisecond, of a
// time in Unix milliseconds (at or after the epoch).
std::string Iso8601Millis(int64_t unix_ms);

// The current time in Unix milliseconds.
int64_t NowUnixMillis();

}  // namespace etherply
