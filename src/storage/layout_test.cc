#include "storage/layout.h"

#include <gtest/gtest.h>

namespace etherply::storage {
namespace {

TEST(Layout, SequencePrefixIsAWorkspacesChangesOrItsHeadsKey) {
  EXPECT_EQ(SequencePrefix(ChangeKey("ws", 7)), ChangePrefix("ws"));
  EXPECT_EQ(SequencePrefix(ChangeKey("ws", 0x2f2f2f2f2f2f2f2f)), ChangePrefix("ws"));
  // IDs cannot hold '/'; were one to, its key would still give its whole prefix.
  EXPECT_EQ(SequencePrefix(ChangeKey("w/s", 1)), "c/w/s/");
  EXPECT_EQ(SequencePrefix(HeadsKey("ws")), HeadsKey("ws"));
}

TEST(Layout, SequencePrefixIsEmptyForOtherKeys) {
  EXPECT_EQ(SequencePrefix(kActorKey), "");
  EXPECT_EQ(SequencePrefix("w/o/12345678"), "");
  EXPECT_EQ(SequencePrefix("r/o/12345678"), "");
  EXPECT_EQ(SequencePrefix("h/"), "");
  // c/ keys that are not c/<workspace>/ and 8 index bytes.
  EXPECT_EQ(SequencePrefix("c/"), "");
  EXPECT_EQ(SequencePrefix("c/x/"), "");
  EXPECT_EQ(SequencePrefix("c//12345678"), "");     // no workspace ID
  EXPECT_EQ(SequencePrefix("c/ws/1234567"), "");    // 7 index bytes: no '/' before 8
  EXPECT_EQ(SequencePrefix("c/ws/123456789"), "");  // 9 index bytes
}

}  // namespace
}  // namespace etherply::storage
