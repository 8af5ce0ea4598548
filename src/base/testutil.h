// Helpers shared by the unit tests (only test code includes this).
#pragma once

#include <gtest/gtest.h>

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

}  // namespace etherply::testutil
