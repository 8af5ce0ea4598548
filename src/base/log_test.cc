#include "base/log.h"

#include <gtest/gtest.h>

#include <string>

namespace etherply {
namespace {

std::string Logged(std::string_view message) {
  testing::internal::CaptureStderr();
  LogWarn(message);
  return testing::internal::GetCapturedStderr();
}

TEST(Log, ControlCharactersCannotForgeALine) {
  std::string out = Logged("sub=eve\n2026-01-01T00:00:00.000Z ERROR forged\r\x1b[31m\x7f" +
                           std::string(1, '\0') + "\xc2\x85\xc2\x9b\xe2\x80\xa8\xe2\x80\xa9");
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;  // one line
  EXPECT_NE(out.find(" WARN sub=eve\\x0a2026-01-01T00:00:00.000Z ERROR forged\\x0d\\x1b[31m\\x7f"
                     "\\x00\\u0085\\u009b\\u2028\\u2029\n"),
            std::string::npos)
      << out;
}

TEST(Log, OtherTextIsWrittenAsItIs) {
  std::string out = Logged("ü€😀 \\x0a \xc2\xa0 \xe2\x80\xa7");
  EXPECT_NE(out.find(" WARN ü€😀 \\x0a \xc2\xa0 \xe2\x80\xa7\n"), std::string::npos) << out;
}

TEST(Log, QuotedKeepsAClientsValueOneField) {
  EXPECT_EQ(Quoted("eve"), "\"eve\"");
  EXPECT_EQ(Quoted("eve\" scope=\"admin"), "\"eve\\\" scope=\\\"admin\"");
  EXPECT_EQ(Quoted("a\\\"b"), "\"a\\\\\\\"b\"");
}

TEST(ThrottledWarning, LogsTheFirstThenOnePerPeriodWithTheCountHeldBack) {
  using namespace std::chrono_literals;
  ThrottledWarning w(10s);
  auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  auto warn = [&](std::chrono::steady_clock::time_point at) {
    testing::internal::CaptureStderr();
    w.Warn("accept failed", at);
    return testing::internal::GetCapturedStderr();
  };
  EXPECT_NE(warn(t0).find(" WARN accept failed\n"), std::string::npos);
  EXPECT_EQ(warn(t0 + 1s), "");
  EXPECT_EQ(warn(t0 + 9s), "");
  EXPECT_NE(
      warn(t0 + 10s).find(" WARN accept failed (and 2 more like it since the last such line)\n"),
      std::string::npos);
  EXPECT_EQ(warn(t0 + 19s), "");
  EXPECT_NE(
      warn(t0 + 30s).find(" WARN accept failed (and 1 more like it since the last such line)\n"),
      std::string::npos);
  EXPECT_NE(warn(t0 + 41s).find(" WARN accept failed\n"), std::string::npos);
}

}  // namespace
}  // namespace etherply
