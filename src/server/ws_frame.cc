#include "server/ws_frame.h"

namespace etherply::server {

namespace {
constexpr uint8_t kFinText = 0x81;  // FIN | opcode 1
constexpr uint8_t kLength16 = 126;  // a 2-byte length follows
constexpr uint8_t kLength64 = 127;  // an 8-byte length follows
}  // namespace

FrameHeader EncodeTextFrameHeader(size_t payload_size) {
  FrameHeader h;
  h.bytes[0] = static_cast<char>(kFinText);
  uint64_t n = payload_size;
  if (n < kLength16) {
    h.bytes[1] = static_cast<char>(n);
    h.size = 2;
  } else if (n <= 0xffff) {
    h.bytes[1] = static_cast<char>(kLength16);
    h.bytes[2] = static_cast<char>(n >> 8);
    h.bytes[3] = static_cast<char>(n);
    h.size = 4;
  } else {
    h.bytes[1] = static_cast<char>(kLength64);
    for (int i = 0; i < 8; ++i) h.bytes[2 + i] = static_cast<char>(n >> (56 - 8 * i));
    h.size = 10;
  }
  return h;
}

}  // namespace etherply::server
