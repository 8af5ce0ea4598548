// LEB128 and Reader: the shortest forms writers must emit (FORMAT.md §1), and
// everything a reader must refuse: overlong forms, values beyond 64 bits and
// input that ends early, which must be told apart from malformed input and
// must leave the reader where it was.
#include "base/coding.h"
#include "base/testutil.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string_view>
#include <vector>

namespace etherply {
namespace {

using testutil::B;

Bytes Uleb(uint64_t v) {
  Bytes out;
  AppendUleb(out, v);
  return out;
}

Bytes Sleb(int64_t v) {
  Bytes out;
  AppendSleb(out, v);
  return out;
}

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kUint64Max = std::numeric_limits<uint64_t>::max();

using Code = Status::Code;

// Interesting values: every power of two and its neighbours, both signs.
std::vector<uint64_t> UnsignedEdges() {
  std::vector<uint64_t> v = {0, 1, 127, 128, 255, 256, 16383, 16384, kUint64Max};
  for (int i = 0; i < 64; ++i) {
    uint64_t p = uint64_t{1} << i;
    v.push_back(p - 1);
    v.push_back(p);
    v.push_back(p + 1);
  }
  return v;
}

std::vector<int64_t> SignedEdges() {
  std::vector<int64_t> v = {0, 1, -1, 63, 64, -64, -65, 127, 128, -128, -129, kInt64Min, kInt64Max};
  for (int i = 0; i < 63; ++i) {
    int64_t p = int64_t{1} << i;
    for (int64_t x : {p - 1, p, p + 1}) {
      v.push_back(x);
      v.push_back(-x);
    }
  }
  v.push_back(kInt64Min + 1);
  v.push_back(kInt64Max - 1);
  return v;
}

// ---------------------------------------------------------------------------
// Writers: shortest forms.

TEST(Coding, UlebShortestForms) {
  EXPECT_EQ(Uleb(0), B("00"));
  EXPECT_EQ(Uleb(1), B("01"));
  EXPECT_EQ(Uleb(127), B("7f"));
  EXPECT_EQ(Uleb(128), B("80 01"));
  EXPECT_EQ(Uleb(300), B("ac 02"));
  EXPECT_EQ(Uleb(16383), B("ff 7f"));
  EXPECT_EQ(Uleb(16384), B("80 80 01"));
  EXPECT_EQ(Uleb(UINT32_MAX), B("ff ff ff ff 0f"));
  EXPECT_EQ(Uleb(kUint64Max), B("ff ff ff ff ff ff ff ff ff 01"));
}

TEST(Coding, SlebShortestForms) {
  EXPECT_EQ(Sleb(0), B("00"));
  EXPECT_EQ(Sleb(1), B("01"));
  EXPECT_EQ(Sleb(-1), B("7f"));
  EXPECT_EQ(Sleb(63), B("3f"));
  EXPECT_EQ(Sleb(-64), B("40"));
  EXPECT_EQ(Sleb(64), B("c0 00"));
  EXPECT_EQ(Sleb(-65), B("bf 7f"));
  EXPECT_EQ(Sleb(127), B("ff 00"));
  EXPECT_EQ(Sleb(-128), B("80 7f"));
  EXPECT_EQ(Sleb(kInt64Max), B("ff ff ff ff ff ff ff ff ff 00"));
  EXPECT_EQ(Sleb(kInt64Min), B("80 80 80 80 80 80 80 80 80 7f"));
}

TEST(Coding, AppendAddsToTheEndWithoutTouchingWhatIsThere) {
  Bytes out = B("aa bb");
  AppendUleb(out, 128);
  AppendSleb(out, -65);
  EXPECT_EQ(out, B("aa bb 80 01 bf 7f"));
}

TEST(Coding, SizesAgreeWithWhatIsWritten) {
  for (uint64_t v : UnsignedEdges()) EXPECT_EQ(UlebSize(v), Uleb(v).size()) << v;
  for (int64_t v : SignedEdges()) EXPECT_EQ(SlebSize(v), Sleb(v).size()) << v;
  EXPECT_EQ(UlebSize(127), 1u);
  EXPECT_EQ(UlebSize(128), 2u);
  EXPECT_EQ(UlebSize(kUint64Max), 10u);
  EXPECT_EQ(SlebSize(63), 1u);
  EXPECT_EQ(SlebSize(64), 2u);
  EXPECT_EQ(SlebSize(-64), 1u);
  EXPECT_EQ(SlebSize(-65), 2u);
  EXPECT_EQ(SlebSize(kInt64Max), 10u);
  EXPECT_EQ(SlebSize(kInt64Min), 10u);
}

// ---------------------------------------------------------------------------
// Round trips.

TEST(Coding, UlebRoundTripsEdgeAndRandomValues) {
  std::vector<uint64_t> values = UnsignedEdges();
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10000; ++i) values.push_back(rng() >> (rng() % 64));
  Bytes all;
  for (uint64_t v : values) {
    Bytes one = Uleb(v);
    auto decoded = DecodeUlebExact(one);
    ASSERT_TRUE(decoded.ok()) << v << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, v);
    AppendUleb(all, v);
  }
  // The same values back to back, read by one Reader.
  Reader r(all);
  for (uint64_t v : values) {
    auto decoded = r.Uleb();
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, v);
  }
  EXPECT_TRUE(r.empty());
}

TEST(Coding, SlebRoundTripsEdgeAndRandomValues) {
  std::vector<int64_t> values = SignedEdges();
  std::mt19937_64 rng(2);
  for (int i = 0; i < 10000; ++i) {
    values.push_back(static_cast<int64_t>(rng()) >> (rng() % 64));
  }
  Bytes all;
  for (int64_t v : values) {
    Bytes one = Sleb(v);
    auto decoded = DecodeSlebExact(one);
    ASSERT_TRUE(decoded.ok()) << v << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, v);
    AppendSleb(all, v);
  }
  Reader r(all);
  for (int64_t v : values) {
    auto decoded = r.Sleb();
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, v);
  }
  EXPECT_TRUE(r.empty());
}

TEST(Coding, ReadsTheLargestValues) {
  EXPECT_EQ(*DecodeUlebExact(B("ff ff ff ff ff ff ff ff ff 01")), kUint64Max);
  EXPECT_EQ(*DecodeSlebExact(B("ff ff ff ff ff ff ff ff ff 00")), kInt64Max);
  EXPECT_EQ(*DecodeSlebExact(B("80 80 80 80 80 80 80 80 80 7f")), kInt64Min);
}

TEST(Coding, ReaderAdvancesByTheBytesEachReadConsumes) {
  Bytes data = B("80 01 7f 05 aa bb 02 cc dd ee");
  Reader r(data);
  EXPECT_EQ(r.remaining(), 10u);
  EXPECT_EQ(*r.Uleb(), 128u);
  EXPECT_EQ(r.position(), 2u);
  EXPECT_EQ(*r.Sleb(), -1);
  EXPECT_EQ(r.position(), 3u);
  EXPECT_EQ(*r.Byte(), 0x05);
  EXPECT_EQ(r.position(), 4u);
  auto two = r.Take(2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(Bytes(two->begin(), two->end()), B("aa bb"));
  auto prefixed = r.LengthPrefixed();
  ASSERT_TRUE(prefixed.ok());
  EXPECT_EQ(Bytes(prefixed->begin(), prefixed->end()), B("cc dd"));
  EXPECT_EQ(r.position(), 9u);
  EXPECT_EQ(r.remaining(), 1u);
  EXPECT_EQ(Bytes(r.rest().begin(), r.rest().end()), B("ee"));
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(*r.Byte(), 0xee);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Coding, TakeReturnsAViewIntoTheUnderlyingData) {
  Bytes data = B("01 02 03");
  Reader r(data);
  auto v = r.Take(3);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->data(), data.data());
  EXPECT_EQ(v->size(), 3u);
}

TEST(Coding, ZeroLengthReadsSucceedAtTheEnd) {
  Reader r(ByteView{});
  EXPECT_TRUE(r.empty());
  auto t = r.Take(0);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->empty());
  Bytes data = B("00");
  Reader r2(data);
  auto lp = r2.LengthPrefixed();
  ASSERT_TRUE(lp.ok());
  EXPECT_TRUE(lp->empty());
  EXPECT_TRUE(r2.empty());
}

TEST(Coding, Uleb32AcceptsUpToUint32Max) {
  Bytes data = B("ff ff ff ff 0f");
  Reader r(data);
  auto v = r.Uleb32();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, UINT32_MAX);
  EXPECT_TRUE(r.empty());
}

// ---------------------------------------------------------------------------
// Overlong forms: readers must reject them, or two encodings of one value
// would hash differently and both be accepted.

TEST(Coding, OverlongUlebIsCorruption) {
  for (std::string_view hex : {
           "80 00",                          // 0 in two bytes
           "81 00",                          // 1 in two bytes
           "ff 00",                          // 127 in two bytes
           "80 80 00",                       // 0 in three bytes
           "80 81 00",                       // 128 in three bytes
           "ff ff ff ff ff ff ff ff ff 00",  // 2^63-1 in ten bytes, last 00
           "80 80 80 80 80 80 80 80 80 00",  // 0 in ten bytes
       }) {
    Bytes data = B(hex);
    Reader r(data);
    auto v = r.Uleb();
    ASSERT_FALSE(v.ok()) << hex;
    EXPECT_EQ(v.status().code(), Code::kCorruption) << hex << ": " << v.status().ToString();
    EXPECT_EQ(r.position(), 0u) << hex;
    EXPECT_EQ(DecodeUlebExact(data).status().code(), Code::kCorruption) << hex;
  }
}

TEST(Coding, OverlongSlebIsCorruption) {
  for (std::string_view hex : {
           "80 00",                          // 0 in two bytes
           "81 00",                          // 1 in two bytes
           "bf 00",                          // 63 in two bytes: 3f would do
           "ff 7f",                          // -1 in two bytes
           "c0 7f",                          // -64 in two bytes: 40 would do
           "80 80 00",                       // 0 in three bytes
           "ff ff 7f",                       // -1 in three bytes
           "c0 80 00",                       // 64 in three bytes: c0 00 would do
           "bf ff 7f",                       // -65 in three bytes: bf 7f would do
           "80 80 80 80 80 80 80 80 80 00",  // 0 in ten bytes
           "ff ff ff ff ff ff ff ff ff 7f",  // -1 in ten bytes
       }) {
    Bytes data = B(hex);
    Reader r(data);
    auto v = r.Sleb();
    ASSERT_FALSE(v.ok()) << hex << " read as " << *v;
    EXPECT_EQ(v.status().code(), Code::kCorruption) << hex << ": " << v.status().ToString();
    EXPECT_EQ(r.position(), 0u) << hex;
    EXPECT_EQ(DecodeSlebExact(data).status().code(), Code::kCorruption) << hex;
  }
}

// The signed rule is about the sign bit of the byte before, not the value of
// the last byte alone: these end in 00 or 7f and are the shortest forms.
TEST(Coding, SlebEndingInZeroOrSevenFIsNotAlwaysOverlong) {
  EXPECT_EQ(*DecodeSlebExact(B("c0 00")), 64);
  EXPECT_EQ(*DecodeSlebExact(B("ff 00")), 127);
  EXPECT_EQ(*DecodeSlebExact(B("80 7f")), -128);
  EXPECT_EQ(*DecodeSlebExact(B("bf 7f")), -65);
  EXPECT_EQ(*DecodeSlebExact(B("80 80 01")), 16384);
  EXPECT_EQ(*DecodeSlebExact(B("80 c0 00")), 8192);
  EXPECT_EQ(*DecodeSlebExact(B("ff bf 7f")), -8193);
}

// ---------------------------------------------------------------------------
// Values that do not fit 64 bits.

TEST(Coding, UlebBeyond64BitsIsCorruption) {
  for (std::string_view hex : {
           "80 80 80 80 80 80 80 80 80 02",     // 2^64
           "ff ff ff ff ff ff ff ff ff 03",     // 2^65-1
           "ff ff ff ff ff ff ff ff ff 7f",     // 2^70-1
           "80 80 80 80 80 80 80 80 80 81 00",  // eleven bytes
           "ff ff ff ff ff ff ff ff ff ff 01",  // eleven bytes
           "80 80 80 80 80 80 80 80 80 80 80 80 80 80 80 80 01",
       }) {
    Bytes data = B(hex);
    Reader r(data);
    auto v = r.Uleb();
    ASSERT_FALSE(v.ok()) << hex << " read as " << *v;
    EXPECT_EQ(v.status().code(), Code::kCorruption) << hex << ": " << v.status().ToString();
    EXPECT_EQ(r.position(), 0u) << hex;
  }
}

TEST(Coding, SlebBeyond64BitsIsCorruption) {
  for (std::string_view hex : {
           "80 80 80 80 80 80 80 80 80 01",     // 2^63
           "ff ff ff ff ff ff ff ff ff 01",     // 2^64-1
           "ff ff ff ff ff ff ff ff ff 7e",     // below INT64_MIN
           "80 80 80 80 80 80 80 80 80 40",     // bit 63 clear, higher bits set
           "ff ff ff ff ff ff ff ff ff 3f",     // bit 63 set, value positive
           "80 80 80 80 80 80 80 80 80 80 00",  // eleven bytes
           "ff ff ff ff ff ff ff ff ff ff 7f",  // eleven bytes
       }) {
    Bytes data = B(hex);
    Reader r(data);
    auto v = r.Sleb();
    ASSERT_FALSE(v.ok()) << hex << " read as " << *v;
    EXPECT_EQ(v.status().code(), Code::kCorruption) << hex << ": " << v.status().ToString();
    EXPECT_EQ(r.position(), 0u) << hex;
  }
}

TEST(Coding, Uleb32Beyond32BitsIsCorruptionAndDoesNotMove) {
  for (std::string_view hex : {"80 80 80 80 10", "ff ff ff ff ff ff ff ff ff 01"}) {
    Bytes data = B(hex);
    Reader r(data);
    auto v = r.Uleb32();
    ASSERT_FALSE(v.ok()) << hex;
    EXPECT_EQ(v.status().code(), Code::kCorruption) << hex << ": " << v.status().ToString();
    EXPECT_EQ(r.position(), 0u) << hex;
  }
}

TEST(Coding, Uleb32PassesOnTheErrorsOfUleb) {
  Bytes overlong = B("80 00");
  Reader r1(overlong);
  EXPECT_EQ(r1.Uleb32().status().code(), Code::kCorruption);
  EXPECT_EQ(r1.position(), 0u);
  Bytes truncated = B("80 80");
  Reader r2(truncated);
  EXPECT_EQ(r2.Uleb32().status().code(), Code::kIncomplete);
  EXPECT_EQ(r2.position(), 0u);
}

// ---------------------------------------------------------------------------
// Truncated input: kIncomplete ("need more bytes"), never kCorruption, and the
// position is where it was so that a caller may retry with more bytes.

TEST(Coding, TruncatedLebIsIncompleteAndDoesNotMove) {
  for (std::string_view hex : {"", "80", "ff", "80 80", "ff ff ff ff ff ff ff ff ff"}) {
    Bytes data = B(hex);
    Reader ru(data);
    auto u = ru.Uleb();
    ASSERT_FALSE(u.ok()) << "'" << hex << "'";
    EXPECT_EQ(u.status().code(), Code::kIncomplete) << hex << ": " << u.status().ToString();
    EXPECT_EQ(ru.position(), 0u) << hex;
    Reader rs(data);
    auto s = rs.Sleb();
    ASSERT_FALSE(s.ok()) << "'" << hex << "'";
    EXPECT_EQ(s.status().code(), Code::kIncomplete) << hex << ": " << s.status().ToString();
    EXPECT_EQ(rs.position(), 0u) << hex;
    EXPECT_EQ(DecodeUlebExact(data).status().code(), Code::kIncomplete) << hex;
    EXPECT_EQ(DecodeSlebExact(data).status().code(), Code::kIncomplete) << hex;
  }
}

TEST(Coding, FailedReadInTheMiddleKeepsEarlierProgress) {
  Bytes data = B("05 80 80");
  Reader r(data);
  EXPECT_EQ(*r.Uleb(), 5u);
  auto v = r.Uleb();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kIncomplete);
  EXPECT_EQ(r.position(), 1u);
  EXPECT_EQ(r.remaining(), 2u);
}

TEST(Coding, ByteAtTheEndIsIncomplete) {
  Reader r(ByteView{});
  auto b = r.Byte();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kIncomplete);
  EXPECT_EQ(r.position(), 0u);
}

TEST(Coding, TakePastTheEndIsIncompleteAndDoesNotMove) {
  Bytes data = B("01 02 03");
  Reader r(data);
  ASSERT_TRUE(r.Byte().ok());
  auto t = r.Take(3);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kIncomplete);
  EXPECT_EQ(r.position(), 1u);
  // A size that would overflow position + n must not wrap around.
  auto huge = r.Take(std::numeric_limits<size_t>::max());
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), Code::kIncomplete);
  EXPECT_EQ(r.position(), 1u);
  auto exact = r.Take(2);
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(r.empty());
}

TEST(Coding, LengthPrefixedPastTheEndIsIncompleteAndDoesNotMove) {
  for (std::string_view hex : {
           "01",                             // one byte promised, none there
           "03 61 62",                       // three promised, two there
           "80 01 00",                       // 128 promised
           "ff ff ff ff ff ff ff ff ff 01",  // 2^64-1 promised
           "80",                             // the length itself is cut short
       }) {
    Bytes data = B(hex);
    Reader r(data);
    auto v = r.LengthPrefixed();
    ASSERT_FALSE(v.ok()) << hex;
    EXPECT_EQ(v.status().code(), Code::kIncomplete) << hex << ": " << v.status().ToString();
    EXPECT_EQ(r.position(), 0u) << hex;
  }
}

TEST(Coding, LengthPrefixedWithOverlongLengthIsCorruption) {
  Bytes data = B("82 00 61 62");
  Reader r(data);
  auto v = r.LengthPrefixed();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kCorruption);
  EXPECT_EQ(r.position(), 0u);
}

TEST(Coding, LengthPrefixedTakesOnlyWhatItsLengthSays) {
  Bytes data = B("02 61 62 63");
  Reader r(data);
  auto v = r.LengthPrefixed();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(AsChars(*v), "ab");
  EXPECT_EQ(r.position(), 3u);
  EXPECT_EQ(r.remaining(), 1u);
}

// ---------------------------------------------------------------------------
// Exact decoding: one value, nothing after it.

TEST(Coding, ExactDecodingRejectsTrailingBytes) {
  for (std::string_view hex : {"00 00", "01 ff", "80 01 00", "7f 7f"}) {
    Bytes data = B(hex);
    auto u = DecodeUlebExact(data);
    ASSERT_FALSE(u.ok()) << hex;
    EXPECT_EQ(u.status().code(), Code::kCorruption) << hex << ": " << u.status().ToString();
    auto s = DecodeSlebExact(data);
    ASSERT_FALSE(s.ok()) << hex;
    EXPECT_EQ(s.status().code(), Code::kCorruption) << hex << ": " << s.status().ToString();
  }
}

TEST(Coding, ExactDecodingOfNothingIsIncomplete) {
  EXPECT_EQ(DecodeUlebExact(ByteView{}).status().code(), Code::kIncomplete);
  EXPECT_EQ(DecodeSlebExact(ByteView{}).status().code(), Code::kIncomplete);
}

TEST(Coding, TheSameBytesReadDifferentlyAsSignedAndUnsigned) {
  EXPECT_EQ(*DecodeUlebExact(B("7f")), 127u);
  EXPECT_EQ(*DecodeSlebExact(B("7f")), -1);
  EXPECT_EQ(*DecodeUlebExact(B("40")), 64u);
  EXPECT_EQ(*DecodeSlebExact(B("40")), -64);
}

}  // namespace
}  // namespace etherply
