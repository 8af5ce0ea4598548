// Random names: bytes no other process or run will draw.
#pragma once

#include <cstddef>
#include <random>

#include "base/bytes.h"

namespace etherply {

// `n` bytes from std::random_device: the CPU's or the kernel's random
// source, never a seeded sequence.
inline Bytes RandomBytes(size_t n) {
  std::random_device rd;
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rd());
  return out;
}

}  // namespace etherply
