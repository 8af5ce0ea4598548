// Lowercase hexadecimal encoding of bytes.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply {

// Appends the two lowercase digits of one byte.
inline void AppendHex(std::string& out, uint8_t b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out.push_back(kDigits[b >> 4]);
  out.push_back(kDigits[b & 15]);
}

std::string ToHex(ByteView b);
// Accepts upper- and lowercase digits; fails on odd length or a non-hex digit.
Result<Bytes> FromHex(std::string_view s);

}  // namespace etherply
