#include "base/log.h"

#include <gtest/gtest.h>

#include <string>

namespace etherply {
namespace {

TEST(Log, ControlCharactersCannotForgeALine) {
  testing::internal::CaptureStderr();
  LogWarn("sub=eve\n2026-01-01T00:00:00.000Z ERROR forged\r\x1b[31m\\x0a\x7f" + std::string(1, '\0'));
  std::string out = testing::internal::GetCapturedStderr();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;  // one line
  EXPECT_NE(out.find(" WARN sub=eve\\x0a2026-01-01T00:00:00.000Z ERROR forged\\x0d\\x1b[31m\\x5cx0a"
                     "\\x7f\\x00\n"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace etherply
