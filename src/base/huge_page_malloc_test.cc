// The tunable string UseHugePageMalloc execs with. The exec itself runs in
// every `etherply doc` of the interop and CLI tests.
#include "base/huge_page_malloc.h"

#include <gtest/gtest.h>

namespace etherply {
namespace {

TEST(HugePageTunables, AddsTheTunableWhenUnsetOrEmpty) {
  EXPECT_EQ(HugePageTunables(nullptr), "glibc.malloc.hugetlb=1");
  EXPECT_EQ(HugePageTunables(""), "glibc.malloc.hugetlb=1");
}

TEST(HugePageTunables, KeepsTheUsersOtherTunables) {
  EXPECT_EQ(HugePageTunables("glibc.malloc.arena_max=2"), "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
  EXPECT_EQ(HugePageTunables("glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0"),
            "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1");
}

// An explicit choice wins, whatever it is: no exec (and so no exec loop:
// the re-executed process finds the tunable and goes on).
TEST(HugePageTunables, LeavesAnExplicitChoiceAlone) {
  EXPECT_EQ(HugePageTunables("glibc.malloc.hugetlb=0"), std::nullopt);
  EXPECT_EQ(HugePageTunables("glibc.malloc.hugetlb=1"), std::nullopt);
  EXPECT_EQ(HugePageTunables("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2"), std::nullopt);
  EXPECT_EQ(HugePageTunables(HugePageTunables(nullptr)->c_str()), std::nullopt);
}

}  // namespace
}  // namespace etherply
