#include "base/workspace_id.h"

#include <gtest/gtest.h>

#include <string>

namespace etherply {
namespace {

TEST(WorkspaceId, LengthOneTo128OfTheAllowedSet) {
  EXPECT_TRUE(IsValidWorkspaceId("a"));
  EXPECT_TRUE(IsValidWorkspaceId("A-z_0.9"));
  EXPECT_TRUE(IsValidWorkspaceId(std::string(128, 'x')));
  // Dots are allowed, but not as the dot segments "." and "..".
  EXPECT_TRUE(IsValidWorkspaceId("..."));
  EXPECT_TRUE(IsValidWorkspaceId(".a"));
  EXPECT_TRUE(IsValidWorkspaceId("a.."));
  EXPECT_FALSE(IsValidWorkspaceId(""));
  EXPECT_FALSE(IsValidWorkspaceId(std::string(129, 'x')));
}

TEST(WorkspaceId, EverythingElseIsRefused) {
  const std::string bad_ids[] = {
      "a/b", "a b", "a%20", "a:b", "a*", "..\\x", "caf\xc3\xa9", std::string("a\0b", 3), ".", ".."};
  for (const std::string& bad : bad_ids)
    EXPECT_FALSE(IsValidWorkspaceId(bad)) << bad;
}

}  // namespace
}  // namespace etherply
