// BlockArray: what is appended stays where it is and reads back, across
// the first block's growth and the whole blocks after it; truncation at
// every kind of boundary.
#include "base/block_array.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace etherply {
namespace {

using Wide = std::array<uint8_t, 40>;  // not a power of two: blocks of 52,428

Wide W(uint32_t i) {
  Wide w{};
  for (size_t k = 0; k < w.size(); k += 4) w[k] = static_cast<uint8_t>(i >> (k % 32));
  w[39] = static_cast<uint8_t>(i);
  return w;
}

TEST(BlockArray, AppendsReadBackAcrossBlocks) {
  BlockArray<uint64_t> a;
  EXPECT_TRUE(a.empty());
  const size_t n = 3 * BlockArray<uint64_t>::kBlock + 17;
  for (uint64_t i = 0; i < n; ++i) {
    a.push_back(i * 7);
    ASSERT_EQ(a.back(), i * 7);
  }
  ASSERT_EQ(a.size(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(a[i], i * 7) << i;
}

TEST(BlockArray, FullBlocksDoNotMove) {
  BlockArray<Wide> a;
  const size_t b = BlockArray<Wide>::kBlock;
  EXPECT_EQ(b, (size_t{2} << 20) / 40);
  for (uint32_t i = 0; i < b; ++i) a.push_back(W(i));
  const Wide* first = &a[0];
  for (uint32_t i = b; i < 2 * b + 5; ++i) a.push_back(W(i));
  EXPECT_EQ(&a[0], first) << "a full block stayed where it was";
  for (uint32_t i = 0; i < a.size(); i += 101) ASSERT_EQ(a[i], W(i));
}

TEST(BlockArray, AppendingAnElementOfItselfWhileTheFirstBlockGrows) {
  BlockArray<uint64_t> a;
  for (uint64_t i = 0; i < 16; ++i) a.push_back(100 + i);
  a.push_back(a[3]);  // the first block grows here
  EXPECT_EQ(a.back(), 103u);
}

TEST(BlockArray, ThePartOfAHugePageIsNeverReservedAlone) {
  // From 1 MiB on the first block takes a whole huge page's worth at once.
  BlockArray<uint64_t> a;
  size_t last = 0;
  for (uint64_t i = 0; i < BlockArray<uint64_t>::kBlock; ++i) {
    a.push_back(i);
    size_t now = a.MemoryUsage();
    if (now != last) {
      EXPECT_TRUE(now < kLargeBytes || now == kHugePageBytes) << now;
      last = now;
    }
  }
}

TEST(BlockArray, ASmallArrayHoldsLittle) {
  BlockArray<uint64_t> a;
  for (uint64_t i = 0; i < 100; ++i) a.push_back(i);
  EXPECT_LE(a.MemoryUsage(), 128 * sizeof(uint64_t));
}

TEST(BlockArray, TruncateAtEveryKindOfBoundaryThenGrowAgain) {
  const size_t b = BlockArray<uint32_t>::kBlock;
  for (size_t cut : {size_t{0}, size_t{1}, b - 1, b, b + 1, 2 * b, 2 * b + 3}) {
    SCOPED_TRACE(cut);
    BlockArray<uint32_t> a;
    for (uint32_t i = 0; i < 2 * b + 10; ++i) a.push_back(i);
    a.Truncate(cut);
    ASSERT_EQ(a.size(), cut);
    if (cut > 0) {
      ASSERT_EQ(a.back(), cut - 1);
    }
    a.Truncate(cut + 5);  // no-op: not shorter
    ASSERT_EQ(a.size(), cut);
    for (uint32_t i = cut; i < cut + b + 2; ++i) a.push_back(i + 1000);
    for (size_t i = 0; i < a.size(); i += 997) ASSERT_EQ(a[i], i < cut ? i : i + 1000) << i;
    ASSERT_EQ(a.back(), cut + b + 1 + 1000);
  }
}

}  // namespace
}  // namespace etherply
