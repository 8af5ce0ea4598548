// The header of a WebSocket frame the server writes itself (RFC 6455 §5.2):
// broadcasts go to the socket as pre-encoded frames, beside Beast's own
// frames (server/gather_write_stream.h, doc/design.md "Writes: one gather
// write per connection").
//
// The grammar of what EncodeTextFrameHeader writes. A server's frames are
// never masked, and the sessions' WebSocket streams are built without
// permessage-deflate, so RSV1-3 are always clear:
//
//   header     = first-byte length
//   first-byte = %x81                  ; FIN set, RSV1-3 clear, opcode 1 (text)
//   length     = %x00-7D               ; payload of 0..125 bytes: the length, MASK clear
//              / %x7E 2OCTET           ; 126..65535: 126, then the length, big-endian
//              / %x7F 8OCTET           ; 65536 and more: 127, then the length,
//                                      ;   big-endian, most significant bit 0
//
// so a header is 2, 4 or 10 bytes, and the payload follows as it is (one
// frame: the whole message; the payload must be UTF-8, as a text message's).
//
// Thread-safety: a pure function returning a value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace etherply::server {

struct FrameHeader {
  std::array<char, 10> bytes;
  uint8_t size = 0;  // 2, 4 or 10
  std::string_view view() const { return {bytes.data(), size}; }
};

// The header of an unmasked, final text frame of `payload_size` bytes.
// Cannot fail (sizes of 2^63 bytes and more do not occur in memory).
FrameHeader EncodeTextFrameHeader(size_t payload_size);

}  // namespace etherply::server
