// Raw DEFLATE (FORMAT.md §1): what Deflate writes Inflate reads back, and
// Inflate refuses everything else: broken streams, streams cut short, bytes
// after the end, zlib/gzip wrappers, and output larger than the caller allows.
#include "base/deflate.h"
#include "base/testutil.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace etherply {
namespace {

using testutil::B;

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Compressible but not trivial: words drawn from a small vocabulary.
Bytes ProseBytes(size_t n, uint32_t seed) {
  static constexpr std::string_view kWords[] = {"the ",  "quick ", "brown ", "fox ", "jumps ",
                                                "over ", "lazy ",  "dog ",   "\n",   "automerge "};
  std::mt19937 rng(seed);
  Bytes out;
  out.reserve(n + 16);
  while (out.size() < n) {
    auto w = kWords[rng() % std::size(kWords)];
    out.insert(out.end(), w.begin(), w.end());
  }
  out.resize(n);
  return out;
}

constexpr size_t kGenerous = 64 << 20;
using Code = Status::Code;

void ExpectRoundTrip(const Bytes& data) {
  Bytes compressed = Deflate(data);
  auto back = Inflate(compressed, kGenerous);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == data) << "round trip of " << data.size() << " bytes differs";
}

// ---------------------------------------------------------------------------
// Round trips.

TEST(Deflate, RoundTripsNothing) { ExpectRoundTrip({}); }

TEST(Deflate, RoundTripsSmallInputs) {
  ExpectRoundTrip(Text("a"));
  ExpectRoundTrip(Text("hello"));
  ExpectRoundTrip(B("00"));
  ExpectRoundTrip(B("85 6f 4a 83 b8 1a 95 44 00 04 00 00 00 00"));
  for (size_t n : {2, 255, 256, 257, 4095, 4096, 4097}) ExpectRoundTrip(RandomBytes(n, n));
}

TEST(Deflate, RoundTripsAMegabyte) {
  ExpectRoundTrip(ProseBytes(1 << 20, 1));
  ExpectRoundTrip(RandomBytes(1 << 20, 2));
  ExpectRoundTrip(Bytes(1 << 20, 0));
}

TEST(Deflate, CompressesRepetitiveInput) {
  Bytes zeros(1 << 20, 0);
  EXPECT_LT(Deflate(zeros).size(), 8192u);
}

// ---------------------------------------------------------------------------
// Raw streams only: no zlib or gzip header on either side.

TEST(Deflate, WritesARawStream) {
  // The empty raw stream: one final fixed-Huffman block holding only its end.
  EXPECT_EQ(Deflate({}), B("03 00"));
}

TEST(Deflate, ReadsRawStreamsFromAnotherEncoder) {
  // "hello" as zlib's raw deflate at level 6 writes it (a fixed-Huffman block).
  auto fixed = Inflate(B("cb 48 cd c9 c9 07 00"), 100);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(*fixed, Text("hello"));
  // "hello" as a final stored block: LEN 5, NLEN ~5.
  auto stored = Inflate(B("01 05 00 fa ff 68 65 6c 6c 6f"), 100);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(*stored, Text("hello"));
}

TEST(Deflate, ZlibAndGzipWrappedStreamsAreRejected) {
  // zlib.compress(b"hello"): 78 9c header, Adler-32 trailer.
  auto zlib = Inflate(B("78 9c cb 48 cd c9 c9 07 00 06 2c 02 15"), 100);
  EXPECT_FALSE(zlib.ok());
  // gzip of "hello" (header 1f 8b 08, CRC-32 and size trailer).
  auto gzip =
      Inflate(B("1f 8b 08 00 00 00 00 00 02 03 cb 48 cd c9 c9 07 00 86 a6 10 36 05 00 00 00"), 100);
  EXPECT_FALSE(gzip.ok());
}

// ---------------------------------------------------------------------------
// Broken streams.

TEST(Deflate, GarbageIsCorruption) {
  for (std::string_view hex : {
           "07",                             // final block of reserved type 11
           "ff ff ff ff",                    // the same, and more
           "01 05 00 00 00 68 65 6c 6c 6f",  // stored block whose NLEN is not ~LEN
           "00 00 00 ff ff 07",              // an empty stored block, then reserved type 11
           "fc ff ff ff ff ff ff ff",        // dynamic block, impossible code lengths
       }) {
    auto r = Inflate(B(hex), 1 << 20);
    ASSERT_FALSE(r.ok()) << hex;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << hex << ": " << r.status().ToString();
  }
}

TEST(Deflate, RandomBytesAreRejectedWithoutCrashing) {
  int rejected = 0;
  for (uint32_t seed = 0; seed < 200; ++seed) {
    Bytes junk = RandomBytes(1 + seed % 97, seed);
    auto r = Inflate(junk, 1 << 20);
    if (!r.ok()) {
      ++rejected;
      EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().ToString();
    }
  }
  // Random bytes are almost never a complete stream with nothing after it.
  EXPECT_GE(rejected, 195);
}

TEST(Deflate, NothingIsNotAStream) {
  auto r = Inflate(ByteView{}, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

TEST(Deflate, EveryTruncationOfASmallStreamIsRejected) {
  Bytes data = ProseBytes(3000, 3);
  Bytes compressed = Deflate(data);
  ASSERT_GT(compressed.size(), 10u);
  for (size_t n = 0; n < compressed.size(); ++n) {
    auto r = Inflate(ByteView(compressed).first(n), 1 << 20);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " of " << compressed.size() << " bytes accepted";
    EXPECT_EQ(r.status().code(), Code::kCorruption) << n;
  }
}

TEST(Deflate, TruncationsOfALargeStreamAreRejected) {
  Bytes data = ProseBytes(1 << 20, 4);
  Bytes compressed = Deflate(data);
  for (size_t n : {size_t{1}, compressed.size() / 3, compressed.size() / 2, compressed.size() - 2,
                   compressed.size() - 1}) {
    auto r = Inflate(ByteView(compressed).first(n), 2 << 20);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " of " << compressed.size() << " bytes accepted";
    EXPECT_EQ(r.status().code(), Code::kCorruption) << n;
  }
}

TEST(Deflate, TruncatedStoredBlockIsRejected) {
  // LEN says 5, four bytes follow.
  auto r = Inflate(B("01 05 00 fa ff 68 65 6c 6c"), 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

TEST(Deflate, BytesAfterTheStreamAreRejected) {
  Bytes compressed = Deflate(Text("hello"));
  for (std::string_view extra : {"00", "ff", "03 00", "de ad be ef"}) {
    Bytes padded = compressed;
    Append(padded, B(extra));
    auto r = Inflate(padded, 100);
    ASSERT_FALSE(r.ok()) << extra;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << extra;
  }
}

TEST(Deflate, TwoStreamsBackToBackAreRejected) {
  Bytes two = Deflate(Text("one"));
  Append(two, Deflate(Text("two")));
  auto r = Inflate(two, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

TEST(Deflate, BytesAfterALargeStreamAreRejected) {
  Bytes data = ProseBytes(1 << 20, 5);
  Bytes compressed = Deflate(data);
  compressed.push_back(0);
  auto r = Inflate(compressed, 2 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

// ---------------------------------------------------------------------------
// The size limit: a guard against decompression bombs.

TEST(Deflate, OutputBeyondTheLimitIsRejected) {
  for (size_t n : {1, 100, 4096, 4097, 100000}) {
    Bytes data = ProseBytes(n, static_cast<uint32_t>(n));
    auto r = Inflate(Deflate(data), n - 1);
    ASSERT_FALSE(r.ok()) << n << " bytes inflated under a limit of " << n - 1;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << n;
  }
}

TEST(Deflate, OutputOfExactlyTheLimitIsAccepted) {
  // "Exceed" means more than max_out: a stream that inflates to exactly
  // max_out bytes is fine.
  for (size_t n : {1, 100, 4095, 4096, 4097, 8192, 100000, 1 << 20}) {
    Bytes data = ProseBytes(n, static_cast<uint32_t>(n) + 7);
    auto r = Inflate(Deflate(data), n);
    if (!r.ok()) {
      ADD_FAILURE() << n << " bytes under a limit of " << n << ": " << r.status().ToString();
      continue;
    }
    EXPECT_TRUE(*r == data) << n;
  }
}

TEST(Deflate, EmptyStreamUnderALimitOfZeroIsAccepted) {
  auto r = Inflate(B("03 00"), 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
}

TEST(Deflate, OutputOfExactlyTheLimitFollowedByAnEmptyFinalBlockIsAccepted) {
  // A non-final stored block "hello", then a final fixed block holding only
  // its end code: the output is full before the last block is read.
  Bytes stream = B("00 05 00 fa ff 68 65 6c 6c 6f 03 00");
  auto r = Inflate(stream, 5);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Text("hello"));
  // The same after a full 4096-byte first allocation.
  Bytes big = ProseBytes(4096, 9);
  Bytes stored = B("00 00 10 ff ef");  // non-final stored block, LEN 4096
  Append(stored, big);
  Append(stored, B("03 00"));
  auto r2 = Inflate(stored, 4096);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_TRUE(*r2 == big);
}

TEST(Deflate, DecompressionBombIsStoppedAtTheLimit) {
  // 256 MiB of zeros deflates to about a quarter of a megabyte. Inflating it
  // under a 1 MiB limit must fail without producing the 256 MiB.
  Bytes zeros(size_t{256} << 20, 0);
  Bytes bomb = Deflate(zeros);
  zeros = Bytes();
  ASSERT_LT(bomb.size(), size_t{1} << 20);
  auto r = Inflate(bomb, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

TEST(Deflate, LimitOfZeroRejectsAnyOutput) {
  auto r = Inflate(Deflate(Text("x")), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace etherply
