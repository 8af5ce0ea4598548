// SHA-256 (OpenSSL), the hash of every Automerge chunk.
#pragma once

#include <array>
#include <cstdint>

#include "base/bytes.h"

namespace etherply {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental hashing of several pieces, e.g. a chunk header and its body.
class Sha256 {
 public:
  Sha256();
  void Update(ByteView b);
  Sha256Digest Finish();

 private:
  alignas(8) uint8_t ctx_[112];  // SHA256_CTX, kept opaque to callers
};

Sha256Digest Sha256Of(ByteView b);

}  // namespace etherply
