// Fuzz target: what a WebSocket client controls before any document is
// touched: its token (auth/jwt.h) and its messages (server/protocol.h).
//
// Input: any bytes, read as a token and as a message.
// Properties: no crash, sanitizer report or hang; a message that parses
// names a key; a token accepted under one secret is refused under another.
#include <string_view>

#include "auth/jwt.h"
#include "fuzz.h"
#include "server/protocol.h"

using namespace etherply;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto op = server::ParseClientMessage(text); op.ok()) FUZZ_CHECK(!op->key.empty());
  static const uint8_t kSecret[] = "a development secret of 32 bytes";
  static const uint8_t kOther[] = "another secret, also of 32 bytes";
  constexpr int64_t kNow = 1'800'000'000;
  if (auth::VerifyToken(text, ByteView(kSecret, 32), kNow).ok())
    FUZZ_CHECK(!auth::VerifyToken(text, ByteView(kOther, 32), kNow).ok());
  return 0;
}
