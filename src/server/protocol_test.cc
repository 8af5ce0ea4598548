#include "server/protocol.h"

#include <gtest/gtest.h>

#include <string>

#include "automerge/document.h"
#include "automerge/transaction.h"

namespace etherply::server {
namespace {

std::string Op(std::string_view value) {
  return "{\"type\":\"op\",\"payload\":{\"key\":\"k\",\"value\":" + std::string(value) + "}}";
}

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

void ExpectRefused(std::string_view text, std::string_view message) {
  auto op = ParseClientMessage(text);
  ASSERT_FALSE(op.ok()) << text;
  EXPECT_EQ(op.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(op.status().message(), message) << text;
}

TEST(ParseClientMessage, AnOp) {
  auto op = ParseClientMessage(
      R"({"type":"op","payload":{"key":"k","value":{"a":[1,0.1]},"timestamp":-5},"x":1})");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(op->key, "k");
  EXPECT_EQ(op->value.at("a").at(1).as_double(), 0.1);
  EXPECT_EQ(op->timestamp, -5);
  auto no_time =
      ParseClientMessage(R"({"type":"op","payload":{"key":"k","value":null,"timestamp":null}})");
  ASSERT_TRUE(no_time.ok());
  EXPECT_TRUE(no_time->value.is_null());
  EXPECT_FALSE(no_time->timestamp);
}

TEST(ParseClientMessage, AValueNestsUpToTheLimit) {
  EXPECT_TRUE(ParseClientMessage(Op(Nested(kMaxValueDepth))).ok());
  ExpectRefused(Op(Nested(kMaxValueDepth + 1)),
                "message nests deeper than " + std::to_string(kMaxValueDepth + 2) + " levels");
}

TEST(ParseClientMessage, MalformedMessagesSayWhatIsWrong) {
  ExpectRefused(Op("1e400"), "message holds a number beyond the range of a double");
  ExpectRefused(R"({"type":"op","payload":{"key":"a","key":"b","value":1}})",
                "message has an object with a duplicate key");
  ExpectRefused(Op(R"({"x":1,"x":2})"), "message has an object with a duplicate key");
  ExpectRefused("{\"type\":\"op\",", "message is not valid JSON (incomplete JSON)");
  ExpectRefused("[1]", "message is not a JSON object");
  ExpectRefused(R"({"payload":{}})", "message has no \"type\"");
  ExpectRefused(R"({"type":1,"payload":{}})", "message \"type\" must be a string");
  ExpectRefused(Op(R"("x\ud800y")"),
                "message holds a lone surrogate escape (\\ud800 to \\udfff without its pair): "
                "strings must be Unicode text");
  ExpectRefused(R"({"type":"sub","payload":{}})", "unknown message type \"sub\"");
  ExpectRefused(R"({"type":"op","payload":[]})", "op has no \"payload\" object");
  ExpectRefused(R"({"type":"op","payload":{"key":"","value":1}})",
                "op payload needs a non-empty string \"key\"");
  ExpectRefused(R"({"type":"op","payload":{"key":"k"}})", "op payload needs a \"value\"");
  for (const char* ts : {"1.5", "\"1\"", "18446744073709551615", "true"})
    ExpectRefused(
        R"({"type":"op","payload":{"key":"k","value":1,"timestamp":)" + std::string(ts) + "}}",
        "\"timestamp\" must be an integer of Unix microseconds");
}

}  // namespace
}  // namespace etherply::server
