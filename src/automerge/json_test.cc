// The JSON view of a document, as JSON.stringify(A.toJS(doc)) shows it. The
// expected strings are facts of ECMAScript (Number.prototype.toString,
// JSON.stringify, Date.prototype.toISOString, property order), taken from
// node 20 with `node -e 'console.log(String(x))'` and kept here as literals.
#include "automerge/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "automerge/document.h"
#include "automerge/transaction.h"

namespace etherply::automerge {
namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

std::string Scalar(const ScalarValue& v) {
  std::string out;
  AppendJsonScalar(out, v);
  return out;
}

Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }

// ---------------------------------------------------------------------------
// Numbers: Number.prototype.toString.

TEST(Json, FormatJsNumberMatchesJavaScript) {
  struct Case {
    double d;
    const char* js;
  } cases[] = {
      {0, "0"},
      {-0.0, "0"},
      {1, "1"},
      {-1.5, "-1.5"},
      {0.1, "0.1"},
      {1e21, "1e+21"},
      {-1e21, "-1e+21"},
      {1e20, "100000000000000000000"},
      {1e-7, "1e-7"},
      {123456789012345680000.0, "123456789012345680000"},
      {1.5e-7, "1.5e-7"},
      {5e-324, "5e-324"},
      {-5e-324, "-5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {0.000001, "0.000001"},
      {0.00001, "0.00001"},
      {0.000001234, "0.000001234"},
      {1.23e-18, "1.23e-18"},
      {0.1 + 0.2, "0.30000000000000004"},
      {100, "100"},
      {25, "25"},
      {9007199254740992.0, "9007199254740992"},
      {18446744073709551616.0, "18446744073709552000"},
      {1.0 / 3, "0.3333333333333333"},
      {4.35, "4.35"},
      {1e301, "1e+301"},
      {1.0000000000000002, "1.0000000000000002"},
      {12345.6789, "12345.6789"},
  };
  for (const Case& c : cases) EXPECT_EQ(FormatJsNumber(c.d), c.js) << c.js;
}

TEST(Json, NonFiniteNumbersAreNull) {
  // JSON.stringify(NaN) and JSON.stringify(Infinity) are "null".
  EXPECT_EQ(Scalar(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(Scalar(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(Scalar(-std::numeric_limits<double>::infinity()), "null");
}

// ---------------------------------------------------------------------------
// Strings: JSON.stringify.

TEST(Json, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(Quoted(""), "\"\"");
  EXPECT_EQ(Quoted("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(Quoted("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(Quoted("/"), "\"/\"");  // not escaped
}

TEST(Json, EscapesControlCharacters) {
  EXPECT_EQ(Quoted("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(Quoted(std::string_view("\x00", 1)), "\"\\u0000\"");
  EXPECT_EQ(Quoted("\x01"), "\"\\u0001\"");
  EXPECT_EQ(Quoted("\x0b"), "\"\\u000b\"");  // \v has no short form
  EXPECT_EQ(Quoted("\x1f"), "\"\\u001f\"");  // lowercase hex
  EXPECT_EQ(Quoted("\x1a"), "\"\\u001a\"");
}

TEST(Json, DoesNotEscapeDelOrNonAscii) {
  EXPECT_EQ(Quoted("\x7f"), "\"\x7f\"");
  EXPECT_EQ(Quoted(" "), "\" \"");
  EXPECT_EQ(Quoted("é😀\u2028\u2029"), "\"é😀\u2028\u2029\"");
}

TEST(Json, JsonStringOfAMixedString) {
  // JSON.stringify("q\"b\\\b\f\n\r\t\x00\x01\x1f\x7f é😀")
  constexpr char kRaw[] = "q\"b\\\b\f\n\r\t\x00\x01\x1f\x7f é😀";
  std::string s(kRaw, sizeof kRaw - 1);
  ASSERT_EQ(s.size(), 20u);
  EXPECT_EQ(Quoted(s), "\"q\\\"b\\\\\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\x7f é😀\"");
}

// ---------------------------------------------------------------------------
// Timestamps: Date.prototype.toISOString.

TEST(Json, FormatIsoTime) {
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(FormatIsoTime(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIsoTime(-1000), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(FormatIsoTime(951782400000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(253402300799999), "9999-12-31T23:59:59.999Z");
}

TEST(Json, FormatIsoTimeOfTheExemplarTimestamp) {
  // Date.parse("1941-04-26T08:17:00.123Z") is -905182979877.
  EXPECT_EQ(FormatIsoTime(-905182979877), "1941-04-26T08:17:00.123Z");
  // and new Date(-904750979877).toISOString() is five days later.
  EXPECT_EQ(FormatIsoTime(-904750979877), "1941-05-01T08:17:00.123Z");
}

TEST(Json, FormatIsoTimeOfExpandedYears) {
  EXPECT_EQ(FormatIsoTime(253402300800000), "+010000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(-62167219200000), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(-62167219200001), "-000001-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIsoTime(-62198755200000), "-000001-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(8640000000000000), "+275760-09-13T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(-8640000000000000), "-271821-04-20T00:00:00.000Z");
}

TEST(Json, FormatIsoTimeOutOfRangeIsNullopt) {
  // new Date(8.64e15 + 1).getTime() is NaN.
  EXPECT_EQ(FormatIsoTime(8640000000000001), std::nullopt);
  EXPECT_EQ(FormatIsoTime(-8640000000000001), std::nullopt);
  EXPECT_EQ(FormatIsoTime(std::numeric_limits<int64_t>::max()), std::nullopt);
  EXPECT_EQ(FormatIsoTime(std::numeric_limits<int64_t>::min()), std::nullopt);
  EXPECT_EQ(Scalar(Timestamp{std::numeric_limits<int64_t>::min()}), "null");
}

// ---------------------------------------------------------------------------
// Bytes: base64 (RFC 4648 test vectors; Buffer.from(s).toString("base64")).

TEST(Json, Base64) {
  EXPECT_EQ(Base64(Str("")), "");
  EXPECT_EQ(Base64(Str("f")), "Zg==");
  EXPECT_EQ(Base64(Str("fo")), "Zm8=");
  EXPECT_EQ(Base64(Str("foo")), "Zm9v");
  EXPECT_EQ(Base64(Str("foob")), "Zm9vYg==");
  EXPECT_EQ(Base64(Str("fooba")), "Zm9vYmE=");
  EXPECT_EQ(Base64(Str("foobar")), "Zm9vYmFy");
  EXPECT_EQ(Base64(Bytes{0xff, 0xfe, 0xfd, 0x00}), "//79AA==");
  EXPECT_EQ(Base64(Bytes{0xfb, 0xff}), "+/8=");
}

// ---------------------------------------------------------------------------
// Scalars.

TEST(Json, Scalars) {
  EXPECT_EQ(Scalar(std::monostate{}), "null");
  EXPECT_EQ(Scalar(true), "true");
  EXPECT_EQ(Scalar(false), "false");
  EXPECT_EQ(Scalar(int64_t{-4}), "-4");
  EXPECT_EQ(Scalar(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
  // Integers keep every digit (JavaScript would round beyond 2^53).
  EXPECT_EQ(Scalar(Uint{UINT64_MAX}), "18446744073709551615");
  EXPECT_EQ(Scalar(3.14159267), "3.14159267");
  EXPECT_EQ(Scalar(std::string("a\"b")), "\"a\\\"b\"");
  EXPECT_EQ(Scalar(Bytes{0x85, 0x6f, 0x4a, 0x83}), "\"hW9Kgw==\"");
  EXPECT_EQ(Scalar(Counter{5}), "5");
  EXPECT_EQ(Scalar(Timestamp{-905182979877}), "\"1941-04-26T08:17:00.123Z\"");
  EXPECT_EQ(Scalar(UnknownValue{12, {1, 2}}), "null");
}

// ---------------------------------------------------------------------------
// Documents.

TEST(Json, EmptyDocument) {
  Document doc;
  EXPECT_EQ(doc.ToJson(), "{}");
}

TEST(Json, KeyOrderPutsArrayIndicesFirst) {
  Document doc;
  Transaction tx(doc, Str("actor"));
  int64_t v = 0;
  for (const char* k : {"b", "10", "a", "2", "01"}) ASSERT_TRUE(tx.Put(kRoot, k, ++v).ok());
  // JSON.stringify({"b":1,"10":2,"a":3,"2":4,"01":5}) in node:
  //   {"2":4,"10":2,"b":1,"a":3,"01":5}: indices ascending, then insertion
  // order. A document has no insertion order; the rest follow in UTF-8 order.
  EXPECT_EQ(doc.ToJson(), "{\"2\":4,\"10\":2,\"01\":5,\"a\":3,\"b\":1}");
}

TEST(Json, ArrayIndicesStopBelowTwoToThe32MinusOne) {
  Document doc;
  Transaction tx(doc, Str("actor"));
  int64_t v = 0;
  for (const char* k : {"4294967295", "4294967294", "a", "-1", "1.5", "0", "00"})
    ASSERT_TRUE(tx.Put(kRoot, k, ++v).ok());
  // "4294967295" is not an array index: it sorts with the strings.
  EXPECT_EQ(doc.ToJson(),
            "{\"0\":6,\"4294967294\":2,\"-1\":4,\"00\":7,\"1.5\":5,\"4294967295\":1,\"a\":3}");
}

TEST(Json, KeysSortByUtf8Bytes) {
  Document doc;
  Transaction tx(doc, Str("actor"));
  // U+FF5E sorts after U+1F600 in UTF-16 but before it in UTF-8.
  ASSERT_TRUE(tx.Put(kRoot, "\xf0\x9f\x98\x80", int64_t{1}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "\xef\xbd\x9e", int64_t{2}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "Z", int64_t{3}).ok());
  EXPECT_EQ(doc.ToJson(), "{\"Z\":3,\"\xef\xbd\x9e\":2,\"\xf0\x9f\x98\x80\":1}");
}

TEST(Json, NestedObjects) {
  Document doc;
  Transaction tx(doc, Str("actor"));
  auto map = tx.PutObject(kRoot, "m", ObjType::kMap);
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(tx.Put(*map, "k\n", std::string("v")).ok());
  auto list = tx.PutObject(kRoot, "l", ObjType::kList);
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(tx.Insert(*list, 0, int64_t{1}).ok());
  ASSERT_TRUE(tx.Insert(*list, 1, std::monostate{}).ok());
  auto inner = tx.InsertObject(*list, 2, ObjType::kList);
  ASSERT_TRUE(inner.ok());
  auto text = tx.PutObject(kRoot, "t", ObjType::kText);
  ASSERT_TRUE(text.ok());
  ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "hi \"x\"").ok());
  auto table = tx.PutObject(kRoot, "tab", ObjType::kTable);
  ASSERT_TRUE(table.ok());
  ASSERT_TRUE(tx.Put(*table, "c", Counter{3}).ok());
  ASSERT_TRUE(tx.Increment(*table, "c", -5).ok());
  EXPECT_EQ(doc.ToJson(),
            "{\"l\":[1,null,[]],\"m\":{\"k\\n\":\"v\"},\"t\":\"hi \\\"x\\\"\",\"tab\":{\"c\":-2}}");
}

}  // namespace
}  // namespace etherply::automerge
