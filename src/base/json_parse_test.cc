#include "base/json_parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace etherply {
namespace {

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

void ExpectRefused(std::string_view text, std::string_view why, size_t max_depth = 64) {
  auto v = ParseJson(text, max_depth);
  ASSERT_FALSE(v.ok()) << text;
  EXPECT_EQ(v.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(v.status().message().rfind(why, 0), 0u) << v.status().message();
}

TEST(ParseJson, NumbersAreTheNearestDouble) {
  auto v = ParseJson("[0.1, 2.5e-3, -0.0, 1e308, 123456789012345678901234567890]");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const auto& a = v->as_array();
  EXPECT_EQ(a[0].as_double(), 0.1);
  EXPECT_EQ(a[1].as_double(), 2.5e-3);
  EXPECT_TRUE(std::signbit(a[2].as_double()));
  EXPECT_EQ(a[3].as_double(), 1e308);
  EXPECT_EQ(a[4].as_double(), 123456789012345678901234567890.0);
}

TEST(ParseJson, NumbersBeyondADoubleAreRefused) {
  for (const char* text : {"1e400", "-1e400", "[1, {\"a\": 2e308}]", "1.7976931348623159e308"})
    ExpectRefused(text, "holds a number beyond the range of a double");
  // An exponent too long for the parser's own arithmetic, large or small.
  for (const char* text : {"1e99999999999999999999", "1e-99999999999999999999"})
    ExpectRefused(text, "holds a number whose exponent is too long to read");
}

TEST(ParseJson, NumbersTooSmallForADoubleRoundToZero) {
  auto v = ParseJson("[1e-400, -1e-400]");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->as_array()[0].as_double(), 0.0);
  EXPECT_EQ(v->as_array()[1].as_double(), 0.0);
}

TEST(ParseJson, DepthIsBounded) {
  EXPECT_TRUE(ParseJson(Nested(10), 10).ok());
  ExpectRefused(Nested(11), "nests deeper than 10 levels", 10);
  ExpectRefused(Nested(100000), "nests deeper than 64 levels");
  EXPECT_TRUE(ParseJson("{\"a\":{\"b\":[1]}}", 3).ok());
  ExpectRefused("{\"a\":{\"b\":[[1]]}}", "nests deeper than 3 levels", 3);
}

TEST(ParseJson, MalformedTextIsRefusedWithTheParsersReason) {
  for (const char* text : {"", "{", "[1,]", "{\"a\":1,}", "// c\n1", "nul", "\"\\ud800", "1 2",
                           "\"\xff\"", "[1] x", "\"\\ud80\"", "\"\\u12\""})
    ExpectRefused(text, "is not valid JSON (");
}

// RFC 8259's grammar lets a \u escape name half of a surrogate pair alone;
// a UTF-8 string cannot hold it, so it is refused, and said so.
TEST(ParseJson, LoneSurrogateEscapesAreRefusedAsSuch) {
  for (const char* text :
       {R"("\ud800")", R"("x\ud800y")", R"("\uDBFF\u0041")", R"("\udc00")", R"(["\uDFFF"])",
        R"({"\ud800":1})", R"("\ud800\ud800")", R"("\ud800"x)", R"(["\ud800\n"])", R"("\\\ud800")"})
    ExpectRefused(text, "holds a lone surrogate escape (\\ud800 to \\udfff without its pair)");
  // An escaped backslash before "ud800" is no escape: the text is bad for
  // another reason (a raw control character).
  for (const char* text : {"\"\\\\ud800\t\"", "\"\\\\uD9FF\x01\""})
    ExpectRefused(text, "is not valid JSON (");
  auto v = ParseJson(R"(["\ud83d\ude00","\uDBFF\uDFFF"])");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->as_array()[0].as_string(), "\xF0\x9F\x98\x80");
}

TEST(ParseJson, DuplicateKeysAreRefusedAtAnyDepth) {
  for (const char* text :
       {R"({"a":1,"a":2})", R"({"a":{"x":1},"a":2})", R"([{"k":1},{"b":[{"k":1,"k":1}]}])",
        R"({"a":1,"\u0061":2})", R"({"":1,"":1})"})
    ExpectRefused(text, "has an object with a duplicate key");
  // The same key in different objects is no duplicate.
  auto v = ParseJson(R"({"a":{"a":1,"b":{"a":2}},"b":[{"a":3},{"a":4}]})");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->at("b").as_array()[1].at("a").as_int64(), 4);
}

}  // namespace
}  // namespace etherply
