#include "cli/flags.h"

#include <gtest/gtest.h>

#include <string>

namespace etherply::cli {
namespace {

constexpr int64_t kYear = int64_t{365} * 86400;

TEST(ParseDuration, EachUnitAsSeconds) {
  EXPECT_EQ(*ParseDuration("90"), 90);
  EXPECT_EQ(*ParseDuration("90s"), 90);
  EXPECT_EQ(*ParseDuration("15m"), 900);
  EXPECT_EQ(*ParseDuration("2h"), 7200);
  EXPECT_EQ(*ParseDuration("7d"), 7 * 86400);
  EXPECT_EQ(*ParseDuration("0"), 0);  // callers that need more say so
}

TEST(ParseDuration, UpTo365DaysInAnyUnit) {
  EXPECT_EQ(kMaxDurationSeconds, kYear);
  for (const char* year : {"365d", "8760h", "525600m", "31536000s", "31536000"})
    EXPECT_EQ(*ParseDuration(year), kYear) << year;
  // One unit more, and what once overflowed the clocks' nanoseconds.
  for (const char* over : {"366d", "8761h", "525601m", "31536001s", "999999d", "1099511627776",
                           "18446744073709551615", "18446744073709551616d"})
    EXPECT_FALSE(ParseDuration(over).ok()) << over;
}

TEST(ParseDuration, MalformedIsRefusedSayingTheFormsAndTheBound) {
  for (const char* bad : {"", "s", "-1", "+1", "1.5h", "1w", "1 s", "0x10", "1ms", "1ss", "h1"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().message(), std::string("wants a duration such as 60s, 5m, 2h or 1d, up to "
                                                "365d, not \"") +
                                        bad + "\"");
  }
}

TEST(ParseMillis, MillisecondsOrAnyDurationUpTo365Days) {
  EXPECT_EQ(*ParseMillis("250ms"), 250);
  EXPECT_EQ(*ParseMillis("0ms"), 0);
  EXPECT_EQ(*ParseMillis("2"), 2000);
  EXPECT_EQ(*ParseMillis("30s"), 30000);
  EXPECT_EQ(*ParseMillis("365d"), kYear * 1000);
  EXPECT_EQ(*ParseMillis("31536000000ms"), kYear * 1000);
  for (const char* over : {"31536000001ms", "366d", "1099511627776ms", "1099511627776"})
    EXPECT_FALSE(ParseMillis(over).ok()) << over;
  for (const char* bad : {"ms", "1.5ms", "-1ms", "1mss", "x"}) {
    auto d = ParseMillis(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().message(),
              std::string("wants a duration such as 500ms, 60s, 5m, 2h or 1d, up to 365d, not \"") +
                  bad + "\"");
  }
}

}  // namespace
}  // namespace etherply::cli
