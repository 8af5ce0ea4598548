#include "server/ws_frame.h"

#include <gtest/gtest.h>

#include "base/testutil.h"

// That Beast reads these frames (each length form, as a text message) is
// tested with the stream that writes them: gather_write_stream_test.cc.

namespace etherply::server {
namespace {

using testutil::B;

Bytes HeaderBytes(size_t payload_size) {
  FrameHeader h = EncodeTextFrameHeader(payload_size);
  return Bytes(h.view().begin(), h.view().end());
}

TEST(WsFrame, HeaderTakesTheLengthFormOfItsSize) {
  EXPECT_EQ(HeaderBytes(0), B("81 00"));
  EXPECT_EQ(HeaderBytes(125), B("81 7d"));
  EXPECT_EQ(HeaderBytes(126), B("81 7e 00 7e"));
  EXPECT_EQ(HeaderBytes(65535), B("81 7e ff ff"));
  EXPECT_EQ(HeaderBytes(65536), B("81 7f 00 00 00 00 00 01 00 00"));
  EXPECT_EQ(HeaderBytes(0x0102030405), B("81 7f 00 00 00 01 02 03 04 05"));
}

TEST(WsFrame, HeaderIsNeverMaskedNorCompressed) {
  for (size_t size : {0, 1, 125, 126, 65535, 65536}) {
    FrameHeader h = EncodeTextFrameHeader(size);
    EXPECT_EQ(static_cast<uint8_t>(h.bytes[0]) & 0x70, 0) << "RSV1-3 clear, size " << size;
    EXPECT_EQ(static_cast<uint8_t>(h.bytes[1]) & 0x80, 0) << "MASK clear, size " << size;
  }
}

}  // namespace
}  // namespace etherply::server
