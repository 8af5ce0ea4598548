// HugePageAllocator: small arrays from the heap, large ones in aligned
// mappings of whole huge pages; both hold what is written to them, and a
// request too large to express fails cleanly.
#include "base/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

namespace etherply {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

TEST(HugePages, SmallArraysHoldTheirValues) {
  std::vector<uint64_t, HugePageAllocator<uint64_t>> v(1000);
  std::iota(v.begin(), v.end(), 0);
  EXPECT_EQ(std::accumulate(v.begin(), v.end(), uint64_t{0}), 999u * 1000 / 2);
}

TEST(HugePages, LargeArraysAreAlignedToAHugePageAndHoldTheirValues) {
  for (size_t bytes : {kHugePage / 2, kHugePage, kHugePage + 8, 5 * kHugePage + 24}) {
    SCOPED_TRACE(bytes);
    std::vector<uint64_t, HugePageAllocator<uint64_t>> v(bytes / sizeof(uint64_t));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePage, 0u);
    std::iota(v.begin(), v.end(), 1);
    uint64_t n = v.size();
    EXPECT_EQ(std::accumulate(v.begin(), v.end(), uint64_t{0}), n * (n + 1) / 2);
  }
}

TEST(HugePages, GrowingAcrossTheThresholdKeepsTheValues) {
  std::vector<uint32_t, HugePageAllocator<uint32_t>> v;
  for (uint32_t i = 0; i < 3 * kHugePage / sizeof(uint32_t); ++i) v.push_back(i);
  for (uint32_t i = 0; i < v.size(); i += 4099) ASSERT_EQ(v[i], i);
}

TEST(HugePages, AnImpossibleSizeThrowsInsteadOfWrapping) {
  HugePageAllocator<uint64_t> a;
  EXPECT_THROW(a.allocate(SIZE_MAX / 4), std::bad_array_new_length);
  EXPECT_THROW(a.allocate(SIZE_MAX / 16), std::bad_alloc);  // 2^60 bytes: refused by the kernel
  // A size whose rounding up to huge pages would wrap to a tiny mapping.
  EXPECT_THROW(HugePageAllocator<uint8_t>().allocate(SIZE_MAX - 4096), std::bad_alloc);
}

TEST(HugePages, NextBlockDoublesThenJumpsToAWholeHugePage) {
  EXPECT_EQ(NextBlock(0, 8), 0u);
  EXPECT_EQ(NextBlock(16, 8), 32u);
  EXPECT_EQ(NextBlock(32768, 8), 65536u);        // 512 KiB
  EXPECT_EQ(NextBlock(65536, 8), 262144u);       // 1 MiB would take 2 MiB anyway
  EXPECT_EQ(NextBlock(262144, 8), 262144u);      // full blocks stay full
  EXPECT_EQ(NextBlock(32768, 40), 52428u);       // a size that is no power of two
  EXPECT_EQ(NextBlock(1, size_t{4} << 20), 1u);  // an element over a huge page
}

}  // namespace
}  // namespace etherply
