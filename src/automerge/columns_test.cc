// Column codecs (FORMAT.md §4). The encoders must produce the reference's
// bytes exactly, since change hashes are computed over them: each rule of the
// canonical RLE state machine (§4.2) has an example here, the columns of the
// worked example of §3.3 are reproduced, and random sequences are checked
// against a small independent model of the canonical form. The decoders read
// untrusted bytes: malformed columns must give errors, never crashes, and
// never a read outside the column's view.
#include "automerge/columns.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/coding.h"
#include "base/testutil.h"

namespace etherply::automerge {
namespace {

using Code = Status::Code;
constexpr auto N = std::nullopt;
using OptU = std::optional<uint64_t>;
using OptI = std::optional<int64_t>;
using OptS = std::optional<std::string>;

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kUint64Max = std::numeric_limits<uint64_t>::max();

using testutil::B;

// {0x7f, 0x05} -> "7f 05", so that expectations read like the format's tables.
std::string Hex(ByteView b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i) s.push_back(' ');
    s.push_back(kDigits[b[i] >> 4]);
    s.push_back(kDigits[b[i] & 15]);
  }
  return s;
}

std::string Str(std::string_view hex) {
  Bytes b = B(hex);
  return std::string(b.begin(), b.end());
}

std::string Describe(const ScalarValue& v) {
  struct {
    std::string operator()(std::monostate) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(Uint u) const { return "uint " + std::to_string(u.value); }
    std::string operator()(int64_t i) const { return "int " + std::to_string(i); }
    std::string operator()(double d) const { return "f64 " + std::to_string(d); }
    std::string operator()(const std::string& s) const { return "str \"" + s + "\""; }
    std::string operator()(const Bytes& b) const { return "bytes [" + Hex(b) + "]"; }
    std::string operator()(Counter c) const { return "counter " + std::to_string(c.value); }
    std::string operator()(Timestamp t) const { return "timestamp " + std::to_string(t.millis); }
    std::string operator()(const UnknownValue& u) const {
      return "unknown " + std::to_string(u.type_code) + " [" + Hex(u.raw) + "]";
    }
  } visitor;
  return std::visit(visitor, v);
}

// ---------------------------------------------------------------------------
// Encoding helpers.

template <typename V>
Bytes EncodeRle(const std::vector<std::optional<typename V::T>>& values) {
  RleEncoder<V> e;
  for (const auto& v : values) e.Append(v);
  return e.Finish();
}

Bytes EncodeUleb(const std::vector<OptU>& v) { return EncodeRle<UlebValue>(v); }
Bytes EncodeSleb(const std::vector<OptI>& v) { return EncodeRle<SlebValue>(v); }
Bytes EncodeStr(const std::vector<OptS>& v) { return EncodeRle<StringValue>(v); }

Bytes EncodeDelta(const std::vector<OptI>& values) {
  DeltaEncoder e;
  for (const auto& v : values) v ? e.Append(*v) : e.AppendNull();
  return e.Finish();
}

Bytes EncodeBool(const std::vector<bool>& values) {
  BooleanEncoder e;
  for (bool v : values) e.Append(v);
  return e.Finish();
}

Bytes EncodeMaybeBool(const std::vector<bool>& values) {
  BooleanEncoder e;
  for (bool v : values) e.Append(v);
  return e.FinishMaybe();
}

// Decoding helpers: n values, or the first error.

template <typename T, typename Decoder>
Result<std::vector<std::optional<T>>> ReadN(Decoder& d, size_t n) {
  std::vector<std::optional<T>> out;
  for (size_t i = 0; i < n; ++i) {
    auto v = d.Next();
    if (!v.ok()) return v.status();
    out.push_back(*v);
  }
  return out;
}

Result<std::vector<OptU>> DecodeUleb(ByteView b, size_t n) {
  UlebDecoder d(b);
  return ReadN<uint64_t>(d, n);
}
Result<std::vector<OptI>> DecodeSleb(ByteView b, size_t n) {
  RleDecoder<SlebValue> d(b);
  return ReadN<int64_t>(d, n);
}
Result<std::vector<OptS>> DecodeStr(ByteView b, size_t n) {
  StringDecoder d(b);
  return ReadN<std::string>(d, n);
}
Result<std::vector<OptI>> DecodeDelta(ByteView b, size_t n) {
  DeltaDecoder d(b);
  return ReadN<int64_t>(d, n);
}
Result<std::vector<bool>> DecodeBool(ByteView b, size_t n) {
  BooleanDecoder d(b);
  std::vector<bool> out;
  for (size_t i = 0; i < n; ++i) {
    auto v = d.Next();
    if (!v.ok()) return v.status();
    out.push_back(*v);
  }
  return out;
}

// Calls Next() up to `calls` times and returns the first error, or OK. Calls
// Next() a few more times after an error: a failed decoder must stay safe.
template <typename Decoder>
Status FirstError(Decoder& d, size_t calls) {
  for (size_t i = 0; i < calls; ++i) {
    auto v = d.Next();
    if (!v.ok()) {
      for (int k = 0; k < 3; ++k) (void)d.Next();
      return v.status();
    }
  }
  return Status::Ok();
}

// A rejection: an error, with a message saying what is wrong.
void ExpectError(const Status& s, std::string_view what) {
  ASSERT_FALSE(s.ok()) << "accepted: " << what;
  EXPECT_FALSE(s.message().empty()) << what;
}

// ---------------------------------------------------------------------------
// An independent model of the canonical RLE form: split the sequence into
// maximal groups of equal values (nulls equal to nulls); a group of two or more
// is a repeat run, a null group a null run, and consecutive single values one
// literal; a column of nothing but nulls is empty. The state machine of §4.2
// produces exactly this.

void ModelWrite(Bytes& out, uint64_t v) { AppendUleb(out, v); }
void ModelWrite(Bytes& out, int64_t v) { AppendSleb(out, v); }
void ModelWrite(Bytes& out, const std::string& v) {
  AppendUleb(out, v.size());
  Append(out, AsBytes(v));
}

template <typename T>
Bytes ModelRle(const std::vector<std::optional<T>>& xs) {
  bool all_null = true;
  for (const auto& x : xs) all_null = all_null && !x;
  if (all_null) return {};
  Bytes out;
  std::vector<T> literal;
  auto flush = [&] {
    if (literal.empty()) return;
    AppendSleb(out, -static_cast<int64_t>(literal.size()));
    for (const T& v : literal) ModelWrite(out, v);
    literal.clear();
  };
  for (size_t i = 0; i < xs.size();) {
    size_t j = i + 1;
    while (j < xs.size() && xs[j] == xs[i]) ++j;
    uint64_t k = j - i;
    if (!xs[i]) {
      flush();
      AppendSleb(out, 0);
      AppendUleb(out, k);
    } else if (k >= 2) {
      flush();
      AppendSleb(out, static_cast<int64_t>(k));
      ModelWrite(out, *xs[i]);
    } else {
      literal.push_back(*xs[i]);
    }
    i = j;
  }
  flush();
  return out;
}

std::vector<OptI> ModelDeltas(const std::vector<OptI>& xs) {
  std::vector<OptI> out;
  int64_t prev = 0;
  for (const auto& x : xs) {
    if (!x) {
      out.push_back(N);
    } else {
      out.push_back(*x - prev);
      prev = *x;
    }
  }
  return out;
}

Bytes ModelBool(const std::vector<bool>& xs) {
  Bytes out;
  if (xs.empty()) return out;
  bool current = false;
  uint64_t count = 0;
  for (bool x : xs) {
    if (x != current) {
      AppendUleb(out, count);
      current = x;
      count = 0;
    }
    ++count;
  }
  AppendUleb(out, count);
  return out;
}

// Random sequences with runs, literals and nulls.
template <typename T, typename Pick>
std::vector<std::optional<T>> RandomSequence(std::mt19937_64& rng, size_t n, Pick pick) {
  std::vector<std::optional<T>> out;
  for (size_t i = 0; i < n; ++i) {
    uint64_t dice = rng() % 10;
    if (!out.empty() && dice < 4) {
      out.push_back(out.back());  // continue a run (of values or of nulls)
    } else if (dice < 6) {
      out.push_back(std::nullopt);
    } else {
      out.push_back(pick(rng));
    }
  }
  return out;
}

uint64_t PickUleb(std::mt19937_64& rng) {
  static constexpr uint64_t kEdges[] = {0, 1, 2, 127, 128, 300, uint64_t{1} << 63, kUint64Max};
  return rng() % 2 ? kEdges[rng() % std::size(kEdges)] : rng() >> (rng() % 64);
}
int64_t PickSleb(std::mt19937_64& rng) {
  static constexpr int64_t kEdges[] = {0, 1, -1, 63, 64, -64, -65, kInt64Min, kInt64Max};
  return rng() % 2 ? kEdges[rng() % std::size(kEdges)]
                   : static_cast<int64_t>(rng()) >> (rng() % 64);
}
std::string PickString(std::mt19937_64& rng) {
  static const std::string kEdges[] = {
      "", "a", "foo", "\xc3\xa9", "\xf0\x9f\x98\x80x", std::string(200, 'z')};
  return kEdges[rng() % std::size(kEdges)];
}
// Delta values small enough that differences never overflow.
int64_t PickDeltaValue(std::mt19937_64& rng) {
  int64_t v = static_cast<int64_t>(rng() % (uint64_t{1} << 40));
  return rng() % 3 == 0 ? -v : v;
}

// ===========================================================================
// The canonical RLE encoder, rule by rule (§4.2).

TEST(Columns, RleOfNothingIsEmpty) { EXPECT_EQ(Hex(EncodeUleb({})), ""); }

TEST(Columns, RleSingleValueIsALiteralOfOne) {
  // Never "01 05": a lone value is a literal.
  EXPECT_EQ(Hex(EncodeUleb({5})), "7f 05");
  EXPECT_EQ(Hex(EncodeUleb({0})), "7f 00");  // zero is a value, not a null
  EXPECT_EQ(Hex(EncodeUleb({300})), "7f ac 02");
}

TEST(Columns, RleEqualValuesFormARun) {
  EXPECT_EQ(Hex(EncodeUleb({5, 5})), "02 05");
  EXPECT_EQ(Hex(EncodeUleb({5, 5, 5})), "03 05");
  EXPECT_EQ(Hex(EncodeUleb({0, 0})), "02 00");
}

TEST(Columns, RleDistinctValuesFormOneLiteral) {
  EXPECT_EQ(Hex(EncodeUleb({1, 2})), "7e 01 02");
  EXPECT_EQ(Hex(EncodeUleb({1, 2, 3})), "7d 01 02 03");
  EXPECT_EQ(Hex(EncodeUleb({1, 2, 1, 2})), "7c 01 02 01 02");
}

TEST(Columns, RleAllNullsIsEmpty) {
  EXPECT_EQ(Hex(EncodeUleb({N})), "");
  EXPECT_EQ(Hex(EncodeUleb({N, N, N})), "");
  EXPECT_EQ(Hex(EncodeStr({N, N})), "");
}

TEST(Columns, RleLeadingNullsBecomeANullRunOnceAValueFollows) {
  EXPECT_EQ(Hex(EncodeUleb({N, 5})), "00 01 7f 05");
  EXPECT_EQ(Hex(EncodeUleb({N, N, 5, 5})), "00 02 02 05");
  EXPECT_EQ(Hex(EncodeUleb({N, N, N, 1, 2})), "00 03 7e 01 02");
}

TEST(Columns, RleTrailingNullsBecomeANullRun) {
  EXPECT_EQ(Hex(EncodeUleb({5, N})), "7f 05 00 01");  // lone, then null
  EXPECT_EQ(Hex(EncodeUleb({5, N, N})), "7f 05 00 02");
  EXPECT_EQ(Hex(EncodeUleb({5, 5, N})), "02 05 00 01");     // run, then null
  EXPECT_EQ(Hex(EncodeUleb({1, 2, N})), "7e 01 02 00 01");  // literal, then null
}

TEST(Columns, RleNullsBetweenValuesSplitThem) {
  EXPECT_EQ(Hex(EncodeUleb({1, N, 1})), "7f 01 00 01 7f 01");
  EXPECT_EQ(Hex(EncodeUleb({N, N, 1, N, N})), "00 02 7f 01 00 02");
  EXPECT_EQ(Hex(EncodeUleb({1, 1, N, 1, 1})), "02 01 00 01 02 01");
}

TEST(Columns, RleLiteralFollowedByARepeatIsLiteralThenRun) {
  // The last literal value leaves the literal to start the run.
  EXPECT_EQ(Hex(EncodeUleb({1, 2, 2})), "7f 01 02 02");
  EXPECT_EQ(Hex(EncodeUleb({1, 2, 3, 3, 3})), "7e 01 02 03 03");
  EXPECT_EQ(Hex(EncodeUleb({1, 2, 2, 3})), "7f 01 02 02 7f 03");
}

TEST(Columns, RleRunFollowedByOtherValues) {
  EXPECT_EQ(Hex(EncodeUleb({1, 1, 2})), "02 01 7f 02");
  EXPECT_EQ(Hex(EncodeUleb({1, 1, 2, 3})), "02 01 7e 02 03");
  EXPECT_EQ(Hex(EncodeUleb({1, 1, 2, 2})), "02 01 02 02");
}

TEST(Columns, RleCountsAreSignedLebAndNullCountsUnsigned) {
  // A run of 64 needs two bytes as a signed count; a literal of 64 only one.
  EXPECT_EQ(Hex(EncodeUleb(std::vector<OptU>(64, 5))), "c0 00 05");
  std::vector<OptU> literal64, literal65;
  Bytes expect64 = B("40"), expect65 = B("bf 7f");
  for (uint64_t i = 0; i < 65; ++i) {
    if (i < 64) {
      literal64.push_back(i);
      expect64.push_back(static_cast<uint8_t>(i));
    }
    literal65.push_back(i);
    expect65.push_back(static_cast<uint8_t>(i));
  }
  EXPECT_EQ(Hex(EncodeUleb(literal64)), Hex(expect64));
  EXPECT_EQ(Hex(EncodeUleb(literal65)), Hex(expect65));
  std::vector<OptU> nulls(128, N);
  nulls.push_back(1);
  EXPECT_EQ(Hex(EncodeUleb(nulls)), "00 80 01 7f 01");
  EXPECT_EQ(Hex(EncodeUleb(std::vector<OptU>(1000, 7))), "e8 07 07");
}

TEST(Columns, RleOfSignedValues) {
  EXPECT_EQ(Hex(EncodeSleb({-1})), "7f 7f");
  EXPECT_EQ(Hex(EncodeSleb({-1, -1})), "02 7f");
  EXPECT_EQ(Hex(EncodeSleb({64, -65})), "7e c0 00 bf 7f");
}

TEST(Columns, RleOfStrings) {
  EXPECT_EQ(Hex(EncodeStr({"foo"})), "7f 03 66 6f 6f");
  EXPECT_EQ(Hex(EncodeStr({"foo", "foo"})), "02 03 66 6f 6f");
  EXPECT_EQ(Hex(EncodeStr({"a", "b"})), "7e 01 61 01 62");
  EXPECT_EQ(Hex(EncodeStr({""})), "7f 00");  // the empty string is a value
  EXPECT_EQ(Hex(EncodeStr({N, "\xc3\xa9"})), "00 01 7f 02 c3 a9");
}

TEST(Columns, StringValueIsLengthPrefixedUtf8) {
  Bytes out;
  StringValue::Write(out, "foo");
  EXPECT_EQ(Hex(out), "03 66 6f 6f");
  Reader r(out);
  auto v = StringValue::Read(r);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "foo");
  EXPECT_TRUE(r.empty());
}

TEST(Columns, RleEncoderMatchesTheCanonicalModelOnRandomSequences) {
  std::mt19937_64 rng(42);
  for (int iter = 0; iter < 2000; ++iter) {
    size_t n = rng() % 40;
    auto u = RandomSequence<uint64_t>(rng, n, PickUleb);
    ASSERT_EQ(Hex(EncodeUleb(u)), Hex(ModelRle(u))) << "iteration " << iter;
    auto s = RandomSequence<int64_t>(rng, n, PickSleb);
    ASSERT_EQ(Hex(EncodeSleb(s)), Hex(ModelRle(s))) << "iteration " << iter;
    auto t = RandomSequence<std::string>(rng, n, PickString);
    ASSERT_EQ(Hex(EncodeStr(t)), Hex(ModelRle(t))) << "iteration " << iter;
  }
}

// ===========================================================================
// The worked example of §3.3: the columns of a change setting foo = "bar".

TEST(Columns, WorkedExampleObjColumns) {
  EXPECT_EQ(Hex(EncodeUleb({N, 0, 0, 0})), "00 01 03 00");  // obj actor
  EXPECT_EQ(Hex(EncodeUleb({N, 1, 1, 1})), "00 01 03 01");  // obj counter
}

TEST(Columns, WorkedExampleKeyColumns) {
  EXPECT_EQ(Hex(EncodeUleb({N, N, 0, 0})), "00 02 02 00");              // key actor
  EXPECT_EQ(Hex(EncodeDelta({N, 0, 2, 3})), "00 01 7d 00 02 01");       // key counter
  EXPECT_EQ(Hex(EncodeStr({"foo", N, N, N})), "7f 03 66 6f 6f 00 03");  // key string
}

TEST(Columns, WorkedExampleInsertActionAndPredColumns) {
  EXPECT_EQ(Hex(EncodeBool({false, true, true, true})), "01 03");  // insert
  EXPECT_EQ(Hex(EncodeUleb({4, 1, 1, 1})), "7f 04 03 01");         // action
  EXPECT_EQ(Hex(EncodeUleb({0, 0, 0, 0})), "04 00");               // pred group
}

TEST(Columns, WorkedExampleValueColumns) {
  ValueEncoder e;
  e.Append(std::monostate{});
  e.Append(std::string("b"));
  e.Append(std::string("a"));
  e.Append(std::string("r"));
  EXPECT_EQ(Hex(e.FinishMeta()), "7f 00 03 16");
  EXPECT_EQ(Hex(e.FinishRaw()), "62 61 72");
}

TEST(Columns, WorkedExampleColumnsDecode) {
  auto obj = DecodeUleb(B("00 01 03 00"), 4);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(*obj, (std::vector<OptU>{N, 0, 0, 0}));
  auto key_ctr = DecodeDelta(B("00 01 7d 00 02 01"), 4);
  ASSERT_TRUE(key_ctr.ok()) << key_ctr.status().ToString();
  EXPECT_EQ(*key_ctr, (std::vector<OptI>{N, 0, 2, 3}));
  auto key_str = DecodeStr(B("7f 03 66 6f 6f 00 03"), 4);
  ASSERT_TRUE(key_str.ok()) << key_str.status().ToString();
  EXPECT_EQ(*key_str, (std::vector<OptS>{"foo", N, N, N}));
  auto insert = DecodeBool(B("01 03"), 4);
  ASSERT_TRUE(insert.ok()) << insert.status().ToString();
  EXPECT_EQ(*insert, (std::vector<bool>{false, true, true, true}));
  Bytes meta = B("7f 00 03 16"), raw = B("62 61 72");
  ValueDecoder values(meta, raw);
  for (const ScalarValue& want : {ScalarValue{}, ScalarValue{std::string("b")},
                                  ScalarValue{std::string("a")}, ScalarValue{std::string("r")}}) {
    auto v = values.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(Describe(*v), Describe(want));
  }
  EXPECT_TRUE(values.done());
}

// ===========================================================================
// Delta columns (§4.3).

TEST(Columns, DeltaExampleOfTheFormat) {
  EXPECT_EQ(Hex(EncodeDelta({3, 4, 5, 6, 9, 7, 8})), "7f 03 03 01 7d 03 7e 01");
  auto back = DecodeDelta(B("7f 03 03 01 7d 03 7e 01"), 7);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, (std::vector<OptI>{3, 4, 5, 6, 9, 7, 8}));
}

TEST(Columns, DeltaNullsDoNotMoveThePreviousValue) {
  // Deltas [5, null, +1]: the 6 is relative to the 5 before the null.
  EXPECT_EQ(Hex(EncodeDelta({5, N, 6})), "7f 05 00 01 7f 01");
  auto back = DecodeDelta(B("7f 05 00 01 7f 01"), 3);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, (std::vector<OptI>{5, N, 6}));
}

TEST(Columns, DeltaStartsFromZero) {
  EXPECT_EQ(Hex(EncodeDelta({0})), "7f 00");
  EXPECT_EQ(Hex(EncodeDelta({-3})), "7f 7d");
  EXPECT_EQ(Hex(EncodeDelta({1, 2, 3, 4})), "04 01");  // a counter column: one run
  EXPECT_EQ(Hex(EncodeDelta({N, N})), "");
}

TEST(Columns, DeltaEncoderMatchesTheModelOnRandomSequences) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 1000; ++iter) {
    auto xs = RandomSequence<int64_t>(rng, rng() % 40, PickDeltaValue);
    ASSERT_EQ(Hex(EncodeDelta(xs)), Hex(ModelRle(ModelDeltas(xs)))) << "iteration " << iter;
  }
}

TEST(Columns, DeltaDecoderOverflowIsNotUndefined) {
  // INT64_MAX twice: the running sum leaves int64. Either an error or some
  // value is acceptable; undefined behaviour (caught by UBSan) is not.
  Bytes data = B("02 ff ff ff ff ff ff ff ff ff 00");
  DeltaDecoder d(data);
  auto first = d.Next();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(**first, kInt64Max);
  auto second = d.Next();
  if (!second.ok()) {
    EXPECT_EQ(second.status().code(), Code::kCorruption);
  }
}

// ===========================================================================
// Boolean columns (§4.4).

TEST(Columns, BooleanRunsAlternateStartingWithFalse) {
  EXPECT_EQ(Hex(EncodeBool({true, true, false, false, false})), "00 02 03");
  EXPECT_EQ(Hex(EncodeBool({false, true, true, true})), "01 03");
  EXPECT_EQ(Hex(EncodeBool({true})), "00 01");
  EXPECT_EQ(Hex(EncodeBool({false, true})), "01 01");
  EXPECT_EQ(Hex(EncodeBool({true, false, true})), "00 01 01 01");
}

TEST(Columns, BooleanPlainAllFalseIsTheCount) {
  EXPECT_EQ(Hex(EncodeBool({false})), "01");  // one op's insert column
  EXPECT_EQ(Hex(EncodeBool({false, false, false})), "03");
  EXPECT_EQ(Hex(EncodeBool(std::vector<bool>(300, false))), "ac 02");
  EXPECT_EQ(Hex(EncodeBool({})), "");
}

TEST(Columns, BooleanMaybeAllFalseIsEmpty) {
  EXPECT_EQ(Hex(EncodeMaybeBool({})), "");
  EXPECT_EQ(Hex(EncodeMaybeBool({false})), "");
  EXPECT_EQ(Hex(EncodeMaybeBool(std::vector<bool>(300, false))), "");
  // With any true value it is the plain encoding.
  EXPECT_EQ(Hex(EncodeMaybeBool({true})), "00 01");
  EXPECT_EQ(Hex(EncodeMaybeBool({false, false, true})), "02 01");
  EXPECT_EQ(Hex(EncodeMaybeBool({true, false})), "00 01 01");
}

TEST(Columns, BooleanEncoderMatchesTheModelOnRandomSequences) {
  std::mt19937_64 rng(9);
  for (int iter = 0; iter < 1000; ++iter) {
    std::vector<bool> xs;
    size_t n = rng() % 200;
    for (size_t i = 0; i < n; ++i) xs.push_back(!xs.empty() && rng() % 4 ? xs.back() : rng() % 2);
    ASSERT_EQ(Hex(EncodeBool(xs)), Hex(ModelBool(xs))) << "iteration " << iter;
    bool any_true = false;
    for (bool x : xs) any_true = any_true || x;
    ASSERT_EQ(Hex(EncodeMaybeBool(xs)), any_true ? Hex(ModelBool(xs)) : "") << iter;
    auto back = DecodeBool(ModelBool(xs), n);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_EQ(*back, xs) << "iteration " << iter;
  }
}

TEST(Columns, BooleanDecoderPastTheEndYieldsFalse) {
  Bytes data = B("00 02");
  BooleanDecoder d(data);
  EXPECT_FALSE(d.done());
  EXPECT_TRUE(*d.Next());
  EXPECT_FALSE(d.done());
  EXPECT_TRUE(*d.Next());
  EXPECT_TRUE(d.done());
  for (int i = 0; i < 3; ++i) {
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_FALSE(*v);
  }
  EXPECT_TRUE(d.done());
}

TEST(Columns, BooleanDecoderOfAnAbsentColumnYieldsFalse) {
  BooleanDecoder d(ByteView{});
  EXPECT_TRUE(d.done());
  for (int i = 0; i < 3; ++i) {
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_FALSE(*v);
  }
}

TEST(Columns, BooleanDecoderRejectsMalformedCounts) {
  for (std::string_view hex : {
           "80 00",                          // an overlong count
           "01 80 00",                       // an overlong count after a good one
           "ff ff ff ff ff ff ff ff ff 7f",  // a count beyond 64 bits
       }) {
    Bytes data = B(hex);
    BooleanDecoder d(data);
    Status s = FirstError(d, 5);
    ASSERT_FALSE(s.ok()) << hex;
    EXPECT_EQ(s.code(), Code::kCorruption) << hex << ": " << s.ToString();
  }
}

TEST(Columns, BooleanDecoderRejectsCountsCutShort) {
  for (std::string_view hex : {"80", "01 ff"}) {
    Bytes data = B(hex);
    BooleanDecoder d(data);
    ExpectError(FirstError(d, 5), hex);
  }
}

TEST(Columns, BooleanDecoderHandlesHugeCountsLazily) {
  Bytes data = B("00 ff ff ff ff ff ff ff ff ff 01");  // 2^64-1 trues
  BooleanDecoder d(data);
  for (int i = 0; i < 1000; ++i) {
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_TRUE(*v);
  }
  EXPECT_FALSE(d.done());
}

// ===========================================================================
// RLE decoders: round trips, done(), and the end of the data.

TEST(Columns, RleDecodersRoundTripRandomSequences) {
  std::mt19937_64 rng(1234);
  for (int iter = 0; iter < 1000; ++iter) {
    size_t n = rng() % 60;
    auto u = RandomSequence<uint64_t>(rng, n, PickUleb);
    auto du = DecodeUleb(EncodeUleb(u), n);
    ASSERT_TRUE(du.ok()) << du.status().ToString();
    ASSERT_EQ(*du, u) << "iteration " << iter;
    auto s = RandomSequence<int64_t>(rng, n, PickSleb);
    auto ds = DecodeSleb(EncodeSleb(s), n);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    ASSERT_EQ(*ds, s) << "iteration " << iter;
    auto t = RandomSequence<std::string>(rng, n, PickString);
    auto dt = DecodeStr(EncodeStr(t), n);
    ASSERT_TRUE(dt.ok()) << dt.status().ToString();
    ASSERT_EQ(*dt, t) << "iteration " << iter;
    auto d = RandomSequence<int64_t>(rng, n, PickDeltaValue);
    auto dd = DecodeDelta(EncodeDelta(d), n);
    ASSERT_TRUE(dd.ok()) << dd.status().ToString();
    ASSERT_EQ(*dd, d) << "iteration " << iter;
  }
}

TEST(Columns, RleDecoderIsDoneExactlyAfterTheLastValue) {
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 500; ++iter) {
    size_t n = 1 + rng() % 30;
    auto xs = RandomSequence<uint64_t>(rng, n, PickUleb);
    bool any_value = false;
    for (const auto& x : xs) any_value = any_value || x.has_value();
    Bytes data = EncodeUleb(xs);
    UlebDecoder d(data);
    for (size_t i = 0; i < n; ++i) {
      // An all-null column is empty, hence done from the start.
      ASSERT_EQ(d.done(), !any_value)
          << "before value " << i << " of " << n << ", iteration " << iter;
      ASSERT_TRUE(d.Next().ok());
    }
    ASSERT_TRUE(d.done()) << "iteration " << iter;
  }
}

TEST(Columns, RleDecoderDoneInsideRunsLiteralsAndNullRuns) {
  Bytes data = B("02 05 7e 01 02 00 02");  // 5 5 1 2 null null
  UlebDecoder d(data);
  std::vector<OptU> expected = {5, 5, 1, 2, N, N};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_FALSE(d.done()) << i;
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, expected[i]) << i;
  }
  EXPECT_TRUE(d.done());
}

TEST(Columns, RleDecoderPastTheEndYieldsNulls) {
  Bytes data = B("7f 05");
  UlebDecoder d(data);
  EXPECT_EQ(**d.Next(), 5u);
  EXPECT_TRUE(d.done());
  for (int i = 0; i < 3; ++i) {
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_FALSE(v->has_value());
  }
  EXPECT_TRUE(d.done());
}

TEST(Columns, DecodersOfAnAbsentColumnYieldNulls) {
  UlebDecoder u(ByteView{});
  StringDecoder s(ByteView{});
  DeltaDecoder d(ByteView{});
  EXPECT_TRUE(u.done());
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(d.done());
  for (int i = 0; i < 3; ++i) {
    auto a = u.Next();
    auto b = s.Next();
    auto c = d.Next();
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_FALSE(a->has_value());
    EXPECT_FALSE(b->has_value());
    EXPECT_FALSE(c->has_value());
  }
}

TEST(Columns, RleDecoderAcceptsWellFormedNonCanonicalRuns) {
  // Not what our encoder writes, but valid by the grammar: a run of one, a
  // literal of equal values, two adjacent runs of one value.
  auto one = DecodeUleb(B("01 05"), 1);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, (std::vector<OptU>{5}));
  auto equal = DecodeUleb(B("7e 05 05"), 2);
  ASSERT_TRUE(equal.ok()) << equal.status().ToString();
  EXPECT_EQ(*equal, (std::vector<OptU>{5, 5}));
  auto adjacent = DecodeUleb(B("02 05 02 05"), 4);
  ASSERT_TRUE(adjacent.ok()) << adjacent.status().ToString();
  EXPECT_EQ(*adjacent, (std::vector<OptU>{5, 5, 5, 5}));
}

TEST(Columns, RleDecoderHandlesHugeCountsLazily) {
  // A run and a null run of 2^63-1: decoding must not expand them up front.
  Bytes run = B("ff ff ff ff ff ff ff ff ff 00 05");
  UlebDecoder d(run);
  for (int i = 0; i < 1000; ++i) {
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_EQ(*v, OptU(5));
  }
  EXPECT_FALSE(d.done());
  Bytes nulls = B("00 ff ff ff ff ff ff ff ff ff 01");
  UlebDecoder n(nulls);
  for (int i = 0; i < 1000; ++i) {
    auto v = n.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_FALSE(v->has_value());
  }
  EXPECT_FALSE(n.done());
}

// ===========================================================================
// RLE decoders on malformed input: errors, never crashes. Which error a
// column cut short gives is pinned down once, in
// BytesEndingInsideAColumnAreCorruptionNotIncomplete below.

Status UlebColumnError(std::string_view hex, size_t calls = 8) {
  Bytes data = B(hex);
  UlebDecoder d(data);
  return FirstError(d, calls);
}

void ExpectUlebColumnRejected(std::string_view hex, size_t calls = 8) {
  ExpectError(UlebColumnError(hex, calls), hex);
}

void ExpectUlebColumnCorrupt(std::string_view hex) {
  Status s = UlebColumnError(hex);
  ASSERT_FALSE(s.ok()) << "accepted: " << hex;
  EXPECT_EQ(s.code(), Code::kCorruption) << hex << ": " << s.ToString();
}

TEST(Columns, RleRunCountWithoutItsValueIsRejected) {
  ExpectUlebColumnRejected("02");
  ExpectUlebColumnRejected("7f 05 03");
  ExpectUlebColumnRejected("02 80");  // the value cut short
}

TEST(Columns, RleLiteralCountPastTheEndIsRejected) {
  ExpectUlebColumnRejected("7f");
  ExpectUlebColumnRejected("7d 01 02");
  ExpectUlebColumnRejected("7e 01 80");
}

TEST(Columns, RleNullRunWithoutItsCountIsRejected) {
  ExpectUlebColumnRejected("00");
  ExpectUlebColumnRejected("7f 05 00");
  ExpectUlebColumnRejected("00 80");
}

TEST(Columns, RleOverlongLebInsideAColumnIsCorruption) {
  ExpectUlebColumnCorrupt("80 00 05");     // overlong run count
  ExpectUlebColumnCorrupt("ff 7f 05");     // overlong literal count (-1)
  ExpectUlebColumnCorrupt("02 80 00");     // overlong run value
  ExpectUlebColumnCorrupt("7e 01 85 00");  // overlong literal value
  ExpectUlebColumnCorrupt("00 80 00");     // overlong null count
  // A value beyond 64 bits.
  ExpectUlebColumnCorrupt("7f ff ff ff ff ff ff ff ff ff 7f");
  ExpectUlebColumnRejected("80");  // a count cut short
}

TEST(Columns, RleHugeLiteralCountIsRejectedWithoutCrashing) {
  // A literal count of INT64_MIN (whose negation does not fit int64) and of
  // -(2^63-1), each followed by a single value.
  for (std::string_view hex :
       {"80 80 80 80 80 80 80 80 80 7f 01", "81 80 80 80 80 80 80 80 80 7f 01"}) {
    ExpectUlebColumnRejected(hex, 4);
  }
}

TEST(Columns, RleDecoderNeverReadsOutsideItsView) {
  // The byte after the view would complete the run; the decoder must not see it.
  Bytes buffer = B("02 05 7d 01 02 03");
  ByteView run = ByteView(buffer).first(1);
  UlebDecoder d(run);
  ExpectError(FirstError(d, 3), "02 | 05");
  ByteView literal = ByteView(buffer).subspan(2, 3);  // "7d 01 02": three promised
  UlebDecoder d2(literal);
  ExpectError(FirstError(d2, 4), "7d 01 02 | 03");
  Bytes str_buffer = B("7f 03 66 6f 6f");
  StringDecoder d3(ByteView(str_buffer).first(4));  // "foo" cut to "fo"
  ExpectError(FirstError(d3, 2), "7f 03 66 6f | 6f");
}

TEST(Columns, StringColumnRejectsMalformedStrings) {
  for (std::string_view hex : {
           "7f 01 ff",        // not UTF-8
           "7f 02 c0 80",     // overlong encoding of NUL
           "7f 03 ed a0 80",  // a surrogate
           "02 01 80",        // a run of a lone continuation byte
           "7e 01 61 01 ff",  // the second literal value is not UTF-8
           "7f 82 00 61 62",  // overlong length
       }) {
    Bytes data = B(hex);
    StringDecoder d(data);
    Status s = FirstError(d, 4);
    ASSERT_FALSE(s.ok()) << "accepted: " << hex;
    EXPECT_EQ(s.code(), Code::kCorruption) << hex << ": " << s.ToString();
  }
}

TEST(Columns, StringColumnRejectsStringsPastTheEnd) {
  for (std::string_view hex : {
           "7f 05 61 62",                          // length past the end
           "02 02 c3",                             // a run whose value is cut short
           "7f ff ff ff ff ff ff ff ff ff 01 61",  // absurd length
       }) {
    Bytes data = B(hex);
    StringDecoder d(data);
    ExpectError(FirstError(d, 4), hex);
  }
}

TEST(Columns, DeltaColumnRejectsMalformedRuns) {
  for (std::string_view hex : {"80 00 01", "7f 80 00", "7f ff 7f"}) {
    Bytes data = B(hex);
    DeltaDecoder d(data);
    Status s = FirstError(d, 5);
    ASSERT_FALSE(s.ok()) << "accepted: " << hex;
    EXPECT_EQ(s.code(), Code::kCorruption) << hex << ": " << s.ToString();
  }
  for (std::string_view hex : {"02", "7d 01 02", "00"}) {
    Bytes data = B(hex);
    DeltaDecoder d(data);
    ExpectError(FirstError(d, 5), hex);
  }
}

// A column's view holds all of its bytes: none will follow. Bytes that end
// inside a run are therefore malformed (kCorruption), as the header says of
// every decoder. kIncomplete would tell a caller parsing a stream to wait for
// bytes that will never come.
TEST(Columns, BytesEndingInsideAColumnAreCorruptionNotIncomplete) {
  auto expect_corruption = [](const Status& s, std::string_view what) {
    ASSERT_FALSE(s.ok()) << "accepted: " << what;
    EXPECT_EQ(s.code(), Code::kCorruption) << what << ": " << s.ToString();
  };
  for (std::string_view hex : {"80", "02", "7f", "7d 01 02", "00", "00 80", "02 80"}) {
    expect_corruption(UlebColumnError(hex), std::string("uleb column ") + std::string(hex));
    Bytes data = B(hex);
    DeltaDecoder d(data);
    expect_corruption(FirstError(d, 5), std::string("delta column ") + std::string(hex));
  }
  for (std::string_view hex : {"7f 05 61 62", "02 02 c3"}) {
    Bytes data = B(hex);
    StringDecoder d(data);
    expect_corruption(FirstError(d, 4), std::string("string column ") + std::string(hex));
  }
  for (std::string_view hex : {"80", "01 ff"}) {
    Bytes data = B(hex);
    BooleanDecoder d(data);
    expect_corruption(FirstError(d, 5), std::string("boolean column ") + std::string(hex));
  }
  {
    Bytes meta = B("7f 36"), raw = B("62 61");  // a 3-byte string, 2 raw bytes
    ValueDecoder d(meta, raw);
    expect_corruption(FirstError(d, 2), "raw column shorter than the metadata");
  }
  {
    Bytes meta = B("7f 18"), raw = B("80 01");  // a 1-byte counter that wants 2
    ValueDecoder d(meta, raw);
    expect_corruption(FirstError(d, 2), "counter LEB longer than its metadata");
  }
  {
    Bytes meta = B("02"), raw;  // metadata run without its value
    ValueDecoder d(meta, raw);
    expect_corruption(FirstError(d, 2), "metadata cut short");
  }
  expect_corruption(DecodeRawValue(3, {}).status(), "uint of no bytes");
  expect_corruption(DecodeRawValue(8, B("80")).status(), "counter cut short");
}

TEST(Columns, DecodersSurviveRandomBytes) {
  // Whatever the bytes, every decoder returns values or errors.
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 3000; ++iter) {
    Bytes junk(rng() % 24);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    UlebDecoder u(junk);
    (void)FirstError(u, 40);
    RleDecoder<SlebValue> s(junk);
    (void)FirstError(s, 40);
    StringDecoder t(junk);
    (void)FirstError(t, 40);
    DeltaDecoder d(junk);
    (void)FirstError(d, 40);
    BooleanDecoder b(junk);
    (void)FirstError(b, 40);
    size_t split = junk.empty() ? 0 : rng() % junk.size();
    ValueDecoder v(ByteView(junk).first(split), ByteView(junk).subspan(split));
    (void)FirstError(v, 40);
  }
}

// ===========================================================================
// Value columns (§4.5).

struct ValueCase {
  ScalarValue value;
  std::string meta;  // the metadata column for this value alone
  std::string raw;
};

std::vector<ValueCase> ValueCases() {
  std::string long_str(200, 'x');
  std::string long_raw;
  for (int i = 0; i < 200; ++i) long_raw += (i ? " 78" : "78");
  return {
      {std::monostate{}, "7f 00", ""},
      {false, "7f 01", ""},
      {true, "7f 02", ""},
      {Uint{0}, "7f 13", "00"},
      {Uint{128}, "7f 23", "80 01"},
      {Uint{kUint64Max}, "7f a3 01", "ff ff ff ff ff ff ff ff ff 01"},
      {int64_t{-1}, "7f 14", "7f"},
      {int64_t{64}, "7f 24", "c0 00"},
      {kInt64Min, "7f a4 01", "80 80 80 80 80 80 80 80 80 7f"},
      {1.5, "7f 85 01", "00 00 00 00 00 00 f8 3f"},
      {-0.0, "7f 85 01", "00 00 00 00 00 00 00 80"},
      {std::string(), "7f 06", ""},
      {std::string("bar"), "7f 36", "62 61 72"},
      {std::string("\xc3\xa9"), "7f 26", "c3 a9"},
      {long_str, "7f 86 19", long_raw},
      {Bytes{}, "7f 07", ""},  // an empty extra-bytes entry, §6.2
      {Bytes{0x00, 0xff}, "7f 27", "00 ff"},
      {Counter{1}, "7f 18", "01"},
      {Counter{-65}, "7f 28", "bf 7f"},
      {Timestamp{-1}, "7f 19", "7f"},
      {Timestamp{1000}, "7f 29", "e8 07"},
      {UnknownValue{10, {}}, "7f 0a", ""},
      {UnknownValue{10, {0xaa, 0xbb}}, "7f 2a", "aa bb"},
      {UnknownValue{15, {0x01, 0x02, 0x03}}, "7f 3f", "01 02 03"},
  };
}

// Compares values bitwise for doubles, so that -0.0 and NaN are checked.
bool SameValue(const ScalarValue& a, const ScalarValue& b) {
  if (a.index() != b.index()) return false;
  if (auto* d = std::get_if<double>(&a)) {
    return std::bit_cast<uint64_t>(*d) == std::bit_cast<uint64_t>(std::get<double>(b));
  }
  return a == b;
}

TEST(Columns, ValueEncoderWritesEveryTypeAsTheFormatSays) {
  for (const auto& c : ValueCases()) {
    ValueEncoder e;
    e.Append(c.value);
    EXPECT_EQ(Hex(e.FinishMeta()), c.meta) << Describe(c.value);
    EXPECT_EQ(Hex(e.FinishRaw()), c.raw) << Describe(c.value);
  }
}

TEST(Columns, ValueDecoderReadsEveryTypeBack) {
  for (const auto& c : ValueCases()) {
    Bytes meta = B(c.meta), raw = B(c.raw);
    ValueDecoder d(meta, raw);
    EXPECT_FALSE(d.done()) << Describe(c.value);
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << Describe(c.value) << ": " << v.status().ToString();
    EXPECT_TRUE(SameValue(*v, c.value)) << Describe(*v) << " != " << Describe(c.value);
    EXPECT_TRUE(d.done()) << Describe(c.value);
  }
}

TEST(Columns, ValueRawRoundTripsForEveryType) {
  for (const auto& c : ValueCases()) {
    Bytes raw;
    AppendRawValue(raw, c.value);
    EXPECT_EQ(Hex(raw), c.raw) << Describe(c.value);
    auto back = DecodeRawValue(ValueTypeCode(c.value), raw);
    ASSERT_TRUE(back.ok()) << Describe(c.value) << ": " << back.status().ToString();
    EXPECT_TRUE(SameValue(*back, c.value)) << Describe(*back) << " != " << Describe(c.value);
  }
}

TEST(Columns, ValueTypeCodes) {
  EXPECT_EQ(ValueTypeCode(std::monostate{}), 0);
  EXPECT_EQ(ValueTypeCode(false), 1);
  EXPECT_EQ(ValueTypeCode(true), 2);
  EXPECT_EQ(ValueTypeCode(Uint{7}), 3);
  EXPECT_EQ(ValueTypeCode(int64_t{7}), 4);
  EXPECT_EQ(ValueTypeCode(7.0), 5);
  EXPECT_EQ(ValueTypeCode(std::string("7")), 6);
  EXPECT_EQ(ValueTypeCode(Bytes{7}), 7);
  EXPECT_EQ(ValueTypeCode(Counter{7}), 8);
  EXPECT_EQ(ValueTypeCode(Timestamp{7}), 9);
  for (uint8_t code = 10; code <= 15; ++code) {
    EXPECT_EQ(ValueTypeCode(UnknownValue{code, {}}), code);
  }
  EXPECT_EQ(static_cast<uint8_t>(ValueType::kTimestamp), 9);
}

TEST(Columns, UnknownValueTypesKeepTheirCodeAndBytes) {
  for (uint8_t code = 10; code <= 15; ++code) {
    ValueEncoder e;
    e.Append(UnknownValue{code, {0xde, 0xad}});
    Bytes meta = e.FinishMeta(), raw = e.FinishRaw();
    EXPECT_EQ(Hex(meta), Hex(Bytes{0x7f, static_cast<uint8_t>(0x20 | code)}));
    ValueDecoder d(meta, raw);
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_TRUE(std::holds_alternative<UnknownValue>(*v)) << Describe(*v);
    EXPECT_EQ(std::get<UnknownValue>(*v).type_code, code);
    EXPECT_EQ(Hex(std::get<UnknownValue>(*v).raw), "de ad");
  }
}

TEST(Columns, ValueNanRoundTripsBitForBit) {
  double nan = std::bit_cast<double>(uint64_t{0x7ff8000000000123});
  ValueEncoder e;
  e.Append(nan);
  Bytes meta = e.FinishMeta(), raw = e.FinishRaw();
  EXPECT_EQ(Hex(raw), "23 01 00 00 00 00 f8 7f");
  ValueDecoder d(meta, raw);
  auto v = d.Next();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_TRUE(std::holds_alternative<double>(*v));
  EXPECT_TRUE(std::isnan(std::get<double>(*v)));
  EXPECT_TRUE(SameValue(*v, nan));
}

TEST(Columns, ValueColumnsRoundTripRandomSequences) {
  std::mt19937_64 rng(77);
  auto pick = [&]() -> ScalarValue {
    switch (rng() % 11) {
      case 0:
        return std::monostate{};
      case 1:
        return rng() % 2 == 0;
      case 2:
        return Uint{PickUleb(rng)};
      case 3:
        return PickSleb(rng);
      case 4:
        return std::bit_cast<double>(rng());
      case 5:
        return PickString(rng);
      case 6:
        return Bytes(rng() % 5, static_cast<uint8_t>(rng()));
      case 7:
        return Counter{PickSleb(rng)};
      case 8:
        return Timestamp{PickSleb(rng)};
      case 9:
        return UnknownValue{static_cast<uint8_t>(10 + rng() % 6), Bytes(rng() % 3, 0x5a)};
      default:
        return std::string("same");  // makes runs in the metadata
    }
  };
  for (int iter = 0; iter < 500; ++iter) {
    std::vector<ScalarValue> values;
    size_t n = rng() % 30;
    for (size_t i = 0; i < n; ++i) values.push_back(pick());
    ValueEncoder e;
    std::vector<OptU> model_meta;
    Bytes model_raw;
    for (const auto& v : values) {
      e.Append(v);
      Bytes raw;
      AppendRawValue(raw, v);
      model_meta.push_back(raw.size() << 4 | ValueTypeCode(v));
      Append(model_raw, raw);
    }
    Bytes meta = e.FinishMeta(), raw = e.FinishRaw();
    ASSERT_EQ(Hex(meta), Hex(ModelRle(model_meta))) << "iteration " << iter;
    ASSERT_EQ(Hex(raw), Hex(model_raw)) << "iteration " << iter;
    ValueDecoder d(meta, raw);
    for (size_t i = 0; i < n; ++i) {
      auto v = d.Next();
      ASSERT_TRUE(v.ok()) << "iteration " << iter << " value " << i << ": "
                          << v.status().ToString();
      ASSERT_TRUE(SameValue(*v, values[i])) << Describe(*v) << " != " << Describe(values[i]);
    }
    ASSERT_TRUE(d.done()) << "iteration " << iter;
  }
}

TEST(Columns, ValueDecoderNullEntriesAndTheEndAreNullValues) {
  Bytes meta = B("00 02 7f 02");  // RLE null, RLE null, true
  ValueDecoder d(meta, ByteView{});
  for (const ScalarValue& want : {ScalarValue{}, ScalarValue{}, ScalarValue{true}}) {
    auto v = d.Next();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(Describe(*v), Describe(want));
  }
  EXPECT_TRUE(d.done());
  auto past = d.Next();
  ASSERT_TRUE(past.ok()) << past.status().ToString();
  EXPECT_TRUE(std::holds_alternative<std::monostate>(*past));
  ValueDecoder absent(ByteView{}, ByteView{});
  EXPECT_TRUE(absent.done());
  auto none = absent.Next();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(std::holds_alternative<std::monostate>(*none));
}

TEST(Columns, ValueDecoderIsNotDoneWhileRawBytesRemain) {
  Bytes meta = B("7f 14"), raw = B("01 02");  // one 1-byte int, and a stray byte
  ValueDecoder d(meta, raw);
  auto v = d.Next();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(Describe(*v), "int 1");
  EXPECT_FALSE(d.done());
}

Status ValuesError(std::string_view meta_hex, std::string_view raw_hex) {
  Bytes meta = B(meta_hex), raw = B(raw_hex);
  ValueDecoder d(meta, raw);
  return FirstError(d, 4);
}

void ExpectValuesRejected(std::string_view meta_hex, std::string_view raw_hex,
                          std::string_view why) {
  ExpectError(ValuesError(meta_hex, raw_hex), why);
}

void ExpectValuesCorrupt(std::string_view meta_hex, std::string_view raw_hex,
                         std::string_view why) {
  Status s = ValuesError(meta_hex, raw_hex);
  ASSERT_FALSE(s.ok()) << why << ": accepted meta [" << meta_hex << "] raw [" << raw_hex << "]";
  EXPECT_EQ(s.code(), Code::kCorruption) << why << ": " << s.ToString();
}

TEST(Columns, ValueDecoderRejectsLengthsThatDisagreeWithTheLeb) {
  // The fixture counter_value_has_incorrect_meta: meta says 2 bytes, the LEB
  // takes 1.
  ExpectValuesCorrupt("7f 28", "01 02", "counter meta length 2, 1-byte LEB");
  ExpectValuesCorrupt("7f 23", "01 02", "uint meta length 2, 1-byte LEB");
  ExpectValuesCorrupt("7f 24", "01 02", "int meta length 2, 1-byte LEB");
  ExpectValuesCorrupt("7f 29", "01 02", "timestamp meta length 2, 1-byte LEB");
  // Meta says 1 byte, the LEB wants 2.
  ExpectValuesRejected("7f 18", "80 01", "counter meta length 1, 2-byte LEB");
  ExpectValuesRejected("7f 13", "80 01", "uint meta length 1, 2-byte LEB");
  // Zero-length LEB values.
  ExpectValuesRejected("7f 03", "", "uint of length 0");
  ExpectValuesRejected("7f 08", "", "counter of length 0");
}

TEST(Columns, ValueDecoderRejectsOverlongLebs) {
  // The fixture counter_value_is_overlong.
  ExpectValuesCorrupt("7f 28", "80 00", "overlong counter");
  ExpectValuesCorrupt("7f 24", "80 00", "overlong int");
  ExpectValuesCorrupt("7f 23", "80 00", "overlong uint");
  ExpectValuesCorrupt("7f 29", "ff 7f", "overlong timestamp (-1)");
  ExpectValuesCorrupt("7f a3 01", "80 80 80 80 80 80 80 80 80 02", "uint beyond 64 bits");
}

TEST(Columns, ValueDecoderRejectsARawColumnShorterThanTheMetadata) {
  ExpectValuesRejected("7f 36", "62 61", "3-byte string, 2 raw bytes");
  ExpectValuesRejected("02 16", "61", "two 1-byte strings, 1 raw byte");
  ExpectValuesRejected("7f 85 01", "00 00 00 00", "f64, 4 raw bytes");
  ExpectValuesRejected("7f 27", "", "2-byte bytes, no raw bytes");
  ExpectValuesRejected("7f 2a", "aa", "2-byte unknown, 1 raw byte");
  // A length that no column could hold.
  Bytes huge_meta = B("7f");
  AppendUleb(huge_meta, (uint64_t{1} << 59) << 4 | 7);
  Bytes one_byte = B("00");
  ValueDecoder d(huge_meta, one_byte);
  Status s = FirstError(d, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kCorruption);
}

TEST(Columns, ValueDecoderRejectsBadValues) {
  ExpectValuesCorrupt("7f 45", "00 00 00 00", "f64 of length 4");
  ExpectValuesCorrupt("7f 95 01", "00 00 00 00 00 00 00 00 00", "f64 of length 9");
  ExpectValuesCorrupt("7f 16", "ff", "string that is not UTF-8");
  ExpectValuesCorrupt("7f 36", "ed a0 80", "string holding a surrogate");
}

TEST(Columns, ValueDecoderRejectsMalformedMetadata) {
  ExpectValuesCorrupt("7f 80 00", "", "overlong metadata value");
  ExpectValuesRejected("02", "", "run without its value");
  ExpectValuesRejected("7e 16", "61", "literal of two with one value");
}

TEST(Columns, DecodeRawValueChecksTheBytes) {
  struct Bad {
    uint8_t code;
    std::string_view raw;
  };
  // Malformed bytes: kCorruption.
  for (const Bad& c : {
           Bad{3, "80 00"},
           Bad{3, "01 00"},
           Bad{3, "ff ff ff ff ff ff ff ff ff 7f"},
           Bad{4, "ff 7f"},
           Bad{4, "01 01"},
           Bad{5, "00"},
           Bad{5, "00 00 00 00 00 00 00"},
           Bad{5, "00 00 00 00 00 00 00 00 00"},
           Bad{6, "ff"},
           Bad{6, "c0 80"},
           Bad{6, "e2 82"},
           Bad{8, "80 00"},
           Bad{8, "01 02"},
           Bad{9, "80 00"},
           Bad{9, "01 02"},
       }) {
    auto v = DecodeRawValue(c.code, B(c.raw));
    ASSERT_FALSE(v.ok()) << "type " << int{c.code} << " raw [" << c.raw << "] gave "
                         << Describe(*v);
    EXPECT_EQ(v.status().code(), Code::kCorruption) << v.status().ToString();
  }
  // LEBs cut short (see BytesEndingInsideAColumnAreCorruptionNotIncomplete).
  for (const Bad& c : {Bad{3, ""}, Bad{3, "80"}, Bad{4, ""}, Bad{8, ""}, Bad{9, "ff"}}) {
    auto v = DecodeRawValue(c.code, B(c.raw));
    ASSERT_FALSE(v.ok()) << "type " << int{c.code} << " raw [" << c.raw << "] gave "
                         << Describe(*v);
    EXPECT_FALSE(v.status().message().empty());
  }
}

TEST(Columns, DecodeRawValueReadsEachType) {
  EXPECT_EQ(Describe(*DecodeRawValue(0, {})), "null");
  EXPECT_EQ(Describe(*DecodeRawValue(1, {})), "false");
  EXPECT_EQ(Describe(*DecodeRawValue(2, {})), "true");
  EXPECT_EQ(Describe(*DecodeRawValue(3, B("ac 02"))), "uint 300");
  EXPECT_EQ(Describe(*DecodeRawValue(4, B("bf 7f"))), "int -65");
  EXPECT_EQ(Describe(*DecodeRawValue(6, B("66 6f 6f"))), "str \"foo\"");
  EXPECT_EQ(Describe(*DecodeRawValue(7, B("ff 00"))), "bytes [ff 00]");
  EXPECT_EQ(Describe(*DecodeRawValue(8, B("c0 00"))), "counter 64");
  EXPECT_EQ(Describe(*DecodeRawValue(9, B("40"))), "timestamp -64");
  EXPECT_EQ(Describe(*DecodeRawValue(12, B("01"))), "unknown 12 [01]");
}

// ===========================================================================
// UTF-8 validation: strings in columns must be well-formed UTF-8.

TEST(Columns, Utf8Valid) {
  for (std::string_view hex : {
           "",             // nothing
           "61 62 63",     // ASCII
           "00",           // NUL is a code point
           "7f",           // U+007F
           "c2 80",        // U+0080, the smallest 2-byte
           "c3 a9",        // é
           "df bf",        // U+07FF
           "e0 a0 80",     // U+0800, the smallest 3-byte
           "e2 82 ac",     // €
           "ed 9f bf",     // U+D7FF, just below the surrogates
           "ee 80 80",     // U+E000, just above them
           "ef bf bf",     // U+FFFF
           "f0 90 80 80",  // U+10000, the smallest 4-byte
           "f0 9f 98 80",  // 😀
           "f4 8f bf bf",  // U+10FFFF, the largest code point
           "61 c3 a9 e2 82 ac f0 9f 98 80 62",
       }) {
    EXPECT_TRUE(IsValidUtf8(Str(hex))) << hex;
  }
}

TEST(Columns, Utf8Invalid) {
  for (std::string_view hex : {
           "80",  // a lone continuation byte
           "bf",
           "61 80 62",
           "c0 80",              // overlong NUL
           "c1 bf",              // overlong U+007F
           "e0 80 80",           // overlong 3-byte
           "e0 9f bf",           // overlong U+07FF
           "f0 80 80 80",        // overlong 4-byte
           "f0 8f bf bf",        // overlong U+FFFF
           "ed a0 80",           // U+D800, a surrogate
           "ed bf bf",           // U+DFFF
           "ed af bf ed b0 80",  // a surrogate pair (CESU-8)
           "f4 90 80 80",        // U+110000, beyond U+10FFFF
           "f5 80 80 80",
           "f7 bf bf bf",
           "f8 88 80 80 80",  // 5-byte form
           "fc 84 80 80 80 80",
           "fe",
           "ff",
           "c3",           // truncated 2-byte
           "e2 82",        // truncated 3-byte
           "f0 9f 98",     // truncated 4-byte
           "c3 41",        // continuation byte missing
           "e2 28 a1",     // bad second byte
           "e2 82 28",     // bad third byte
           "f0 9f 98 28",  // bad fourth byte
           "61 62 c3",     // truncated at the end of a longer string
       }) {
    EXPECT_FALSE(IsValidUtf8(Str(hex))) << hex;
  }
}

// ===========================================================================
// Encoders used again after Reset give what fresh ones give: no state of the
// last column (pending run, literal, delta base, boolean run) leaks into the
// next.

TEST(Columns, ResetEncodersForgetTheLastColumn) {
  const std::vector<std::vector<OptU>> ulebs = {
      {1, 2, 3}, {std::nullopt, std::nullopt}, {5, 5, 5}, {}, {7, std::nullopt, 7, 8}};
  UlebEncoder u;
  for (const auto& column : ulebs) {
    u.Reset();
    for (const auto& v : column) u.Append(v);
    EXPECT_EQ(Hex(u.FinishInPlace()), Hex(EncodeUleb(column)));
  }

  const std::vector<std::vector<OptI>> deltas = {{10, 11, 12}, {10, 11, 12}, {-5, std::nullopt, 3}, {}};
  DeltaEncoder d;
  for (const auto& column : deltas) {
    d.Reset();
    for (const auto& v : column) v ? d.Append(*v) : d.AppendNull();
    EXPECT_EQ(Hex(d.FinishInPlace()), Hex(EncodeDelta(column)));
  }

  const std::vector<std::vector<bool>> bools = {{true, true, false}, {false}, {}, {true}};
  BooleanEncoder b, m;
  for (const auto& column : bools) {
    b.Reset();
    m.Reset();
    for (bool v : column) b.Append(v), m.Append(v);
    EXPECT_EQ(Hex(b.FinishInPlace()), Hex(EncodeBool(column)));
    EXPECT_EQ(Hex(m.FinishMaybeInPlace()), Hex(EncodeMaybeBool(column)));
  }

  ValueEncoder v, fresh_first;
  v.Append(ScalarValue(std::string("abc")));
  v.FinishMetaInPlace();
  v.Reset();
  v.Append(ScalarValue(int64_t{-3}));
  fresh_first.Append(ScalarValue(int64_t{-3}));
  EXPECT_EQ(Hex(v.FinishMetaInPlace()), Hex(fresh_first.FinishMeta()));
  EXPECT_EQ(Hex(v.FinishRawInPlace()), Hex(fresh_first.FinishRaw()));
}

}  // namespace
}  // namespace etherply::automerge
