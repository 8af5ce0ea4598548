#include "base/sha256.h"

#include <openssl/sha.h>

namespace etherply {

static_assert(sizeof(SHA256_CTX) <= 112, "SHA256_CTX must fit the opaque buffer");

// The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP,
// but EVP allocates a context per hash; for millions of ~100-byte changes the
// direct calls are measurably cheaper and remain supported.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
Sha256::Sha256() { SHA256_Init(reinterpret_cast<SHA256_CTX*>(ctx_)); }

void Sha256::Update(ByteView b) {
  SHA256_Update(reinterpret_cast<SHA256_CTX*>(ctx_), b.data(), b.size());
}

Sha256Digest Sha256::Finish() {
  Sha256Digest d;
  SHA256_Final(d.data(), reinterpret_cast<SHA256_CTX*>(ctx_));
  return d;
}
#pragma GCC diagnostic pop

Sha256Digest Sha256Of(ByteView b) {
  Sha256 h;
  h.Update(b);
  return h.Finish();
}

}  // namespace etherply
