// Lowercase hexadecimal encoding of bytes.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply {

std::string ToHex(ByteView b);
// Accepts upper- and lowercase digits; fails on odd length or a non-hex digit.
Result<Bytes> FromHex(std::string_view s);

}  // namespace etherply
