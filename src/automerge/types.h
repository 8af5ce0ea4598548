// The vocabulary of Automerge: actors, change hashes, op IDs, actions, values.
//
// Everything here is a plain value type. OpId carries an actor *index*, not
// the actor bytes; which table the index refers to (a change's actor table or
// a document's) depends on where the OpId lives, and is said there.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply::automerge {

using ActorId = Bytes;
using ChangeHash = std::array<uint8_t, 32>;

// Op counters are at most 32 bits wide, as in Automerge 3.x, which rejects
// larger ones ("counter too large").
inline constexpr uint64_t kMaxCounter = UINT32_MAX;

// An op's identity: (counter, actor). Counter 0 never names an op; it stands
// for the root object or, as a list key, for HEAD.
struct OpId {
  uint32_t counter = 0;
  uint32_t actor = 0;

  bool is_root() const { return counter == 0; }
  friend bool operator==(const OpId&, const OpId&) = default;
};

struct OpIdHash {
  size_t operator()(const OpId& id) const {
    return std::hash<uint64_t>()(uint64_t{id.counter} << 32 | id.actor);
  }
};

struct ChangeHashHash {
  size_t operator()(const ChangeHash& h) const {
    size_t v;
    static_assert(sizeof(v) <= sizeof(ChangeHash));
    __builtin_memcpy(&v, h.data(), sizeof(v));
    return v;
  }
};

enum class Action : uint8_t {
  kMakeMap = 0,
  kSet = 1,
  kMakeList = 2,
  kDelete = 3,
  kMakeText = 4,
  kIncrement = 5,
  kMakeTable = 6,
  kMark = 7,
};
inline constexpr uint64_t kMaxAction = 7;

enum class ObjType : uint8_t { kMap, kTable, kList, kText };

// The object type an action creates, if it creates one.
std::optional<ObjType> CreatedObjType(Action a);
bool IsSequence(ObjType t);

// The value type codes of the value-metadata column (FORMAT.md §4.5).
enum class ValueType : uint8_t {
  kNull = 0,
  kFalse = 1,
  kTrue = 2,
  kUint = 3,
  kInt = 4,
  kF64 = 5,
  kStr = 6,
  kBytes = 7,
  kCounter = 8,
  kTimestamp = 9,
};

struct Counter {
  int64_t value;
  friend bool operator==(const Counter&, const Counter&) = default;
};
struct Timestamp {
  int64_t millis;
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};
struct Uint {
  uint64_t value;
  friend bool operator==(const Uint&, const Uint&) = default;
};
// A value type code from a future version (10-15), kept with its raw bytes.
struct UnknownValue {
  uint8_t type_code;
  Bytes raw;
  friend bool operator==(const UnknownValue&, const UnknownValue&) = default;
};

// A scalar value of an op. The variant's alternatives are, in order:
// null, bool, uint, int, f64, str, bytes, counter, timestamp, unknown.
using ScalarValue = std::variant<std::monostate, bool, Uint, int64_t, double, std::string, Bytes,
                                 Counter, Timestamp, UnknownValue>;

// "null", "str", "counter", ...: for messages and the history API.
const char* ValueTypeName(const ScalarValue& v);

// Actor IDs, hashes and op IDs as the reference prints them.
std::string HashToHex(const ChangeHash& h);
Result<ChangeHash> HashFromHex(std::string_view hex);
// "h1,h2" -> hashes: every item, an empty list's one included, is a hash
// (kInvalidArgument "heads must be 64-digit hex change hashes").
Result<std::vector<ChangeHash>> HashesFromHexList(std::string_view comma_separated);

}  // namespace etherply::automerge
