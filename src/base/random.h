// Random names: bytes no other process or run will draw.
#pragma once

#include <cstddef>
#include <random>

#include "base/bytes.h"

namespace etherply {

// `n` bytes from the system's random source (std::random_device, which
// reads the kernel's on Linux).
inline Bytes RandomBytes(size_t n) {
  std::random_device rd;
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rd());
  return out;
}

}  // namespace etherply
