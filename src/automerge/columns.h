// Column codecs of the Automerge binary format (FORMAT.md §4).
//
// Grammar of an RLE column (§4.2), for uLEB, sLEB and string values:
//   column  := { run }
//   run     := sleb(n>0) value             n copies of one value
//            | sleb(n<0) value{-n}         -n literal values
//            | sleb(0) uleb(k)             k nulls
//   value   := uleb | sleb | uleb(len) utf8{len}
// Boolean column (§4.4): uleb counts of alternating runs, starting with false.
// Delta column (§4.3): an RLE column of sLEB differences between successive
// non-null values, starting from 0.
// Value columns (§4.5): an RLE uLEB metadata column of (length << 4 | type)
// and a raw column with the values' bytes back to back.
//
// The encoders are the canonical state machine of §4.2: the same values give
// the same bytes as the reference, which is what makes change hashes agree.
//
// Decoders read from a view of one column's bytes and yield values one at a
// time. A column that is absent from a chunk is decoded from an empty view and
// yields nulls (or false) for as many rows as asked. Every decoder fails with
// kCorruption on malformed bytes and never reads outside its view; done() says
// whether all of the column's bytes have been consumed.
//
// Thread-safety: encoders and decoders are single-threaded values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/types.h"
#include "base/bytes.h"
#include "base/coding.h"
#include "base/status.h"

namespace etherply::automerge {

// How each RLE value type is written and read.
struct UlebValue {
  using T = uint64_t;
  static void Write(Bytes& out, T v) { AppendUleb(out, v); }
  static Result<T> Read(Reader& r) { return r.Uleb(); }
};
struct SlebValue {
  using T = int64_t;
  static void Write(Bytes& out, T v) { AppendSleb(out, v); }
  static Result<T> Read(Reader& r) { return r.Sleb(); }
};
struct StringValue {
  using T = std::string;
  static void Write(Bytes& out, const T& v);
  // Fails on invalid UTF-8.
  static Result<T> Read(Reader& r);
};

// What an encoder reserves at its first write: a change's columns are mostly
// a few bytes each, and growing a buffer from empty byte by byte took three
// or four allocations per column (a fifth of a document load's time).
inline constexpr size_t kFirstCapacity = 16;

template <typename V>
class RleEncoder {
 public:
  using T = typename V::T;

  void Append(const T& v);
  void AppendNull();
  void Append(const std::optional<T>& v) { v ? Append(*v) : AppendNull(); }
  // The column's bytes; empty if nothing but nulls (or nothing) was appended.
  Bytes Finish();
  // The same bytes, left in the encoder: valid until the next call. With
  // Reset, an encoder is used again without allocating again.
  ByteView FinishInPlace();
  // Empties the encoder, keeping its buffers.
  void Reset();

 private:
  enum class State { kEmpty, kInitialNull, kNull, kLone, kRun, kLiteral };
  void FlushLiteral();  // writes literal_ (+ value_ as its last element)
  void FlushValues();   // writes the pending lone value, run or literal run, if any
  void FlushNulls();    // writes the pending null run
  Bytes& Out() {
    if (out_.capacity() == 0) out_.reserve(kFirstCapacity);
    return out_;
  }

  State state_ = State::kEmpty;
  uint64_t count_ = 0;  // nulls or run length
  T value_{};           // the lone/run value, or the literal's last value
  std::vector<T> literal_;
  Bytes out_;
};

template <typename V>
class RleDecoder {
 public:
  using T = typename V::T;

  explicit RleDecoder(ByteView data) : r_(data) {}
  // The next value, or nullopt for a null (also past the end of the data).
  Result<std::optional<T>> Next();
  bool done() const { return remaining_ == 0 && r_.empty(); }

 private:
  enum class Kind { kRun, kLiteral, kNull };
  Reader r_;
  Kind kind_ = Kind::kNull;
  uint64_t remaining_ = 0;
  T value_{};
};

using UlebEncoder = RleEncoder<UlebValue>;
using UlebDecoder = RleDecoder<UlebValue>;
using StringEncoder = RleEncoder<StringValue>;
using StringDecoder = RleDecoder<StringValue>;

class DeltaEncoder {
 public:
  void Append(int64_t v) {
    rle_.Append(v - prev_);
    prev_ = v;
  }
  void AppendNull() { rle_.AppendNull(); }
  Bytes Finish() { return rle_.Finish(); }
  ByteView FinishInPlace() { return rle_.FinishInPlace(); }
  void Reset() {
    rle_.Reset();
    prev_ = 0;
  }

 private:
  RleEncoder<SlebValue> rle_;
  int64_t prev_ = 0;
};

class DeltaDecoder {
 public:
  explicit DeltaDecoder(ByteView data) : rle_(data) {}
  Result<std::optional<int64_t>> Next();
  bool done() const { return rle_.done(); }

 private:
  RleDecoder<SlebValue> rle_;
  int64_t prev_ = 0;
};

class BooleanEncoder {
 public:
  void Append(bool v);
  // Plain encoding: always ends with the count of the last run (so a column
  // of n falses is uleb(n)); empty only if nothing was appended.
  Bytes Finish();
  // "Maybe-boolean" encoding: empty when every value is false.
  Bytes FinishMaybe();
  // As Finish and FinishMaybe, leaving the bytes in the encoder (see
  // RleEncoder::FinishInPlace).
  ByteView FinishInPlace();
  ByteView FinishMaybeInPlace();
  void Reset();

 private:
  bool last_ = false;
  bool any_true_ = false;
  uint64_t count_ = 0;
  uint64_t total_ = 0;
  Bytes out_;
  Bytes& Out() {
    if (out_.capacity() == 0) out_.reserve(kFirstCapacity);
    return out_;
  }
};

class BooleanDecoder {
 public:
  explicit BooleanDecoder(ByteView data) : r_(data) {}
  // The next value; false past the end of the data.
  Result<bool> Next();
  bool done() const { return remaining_ == 0 && r_.empty(); }

 private:
  Reader r_;
  bool value_ = true;  // flipped before the first run, which is false
  uint64_t remaining_ = 0;
};

// Writes a value's metadata and raw bytes (§4.5).
class ValueEncoder {
 public:
  void Append(const ScalarValue& v);
  Bytes FinishMeta() { return meta_.Finish(); }
  Bytes FinishRaw() { return std::move(raw_); }
  // As FinishMeta and FinishRaw, leaving the bytes in the encoder (see
  // RleEncoder::FinishInPlace).
  ByteView FinishMetaInPlace() { return meta_.FinishInPlace(); }
  ByteView FinishRawInPlace() const { return raw_; }
  void Reset() {
    meta_.Reset();
    raw_.clear();
  }

 private:
  UlebEncoder meta_;
  Bytes raw_;
};

class ValueDecoder {
 public:
  ValueDecoder(ByteView meta, ByteView raw) : meta_(meta), raw_(raw) {}
  // The next value. A null metadata entry (or the end of the column) is a
  // null value. Fails when the raw bytes disagree with the metadata.
  Result<ScalarValue> Next();
  bool done() const { return meta_.done() && raw_.empty(); }

 private:
  UlebDecoder meta_;
  Reader raw_;
};

// Value <-> (type code, raw bytes).
uint8_t ValueTypeCode(const ScalarValue& v);
void AppendRawValue(Bytes& out, const ScalarValue& v);
Result<ScalarValue> DecodeRawValue(uint8_t type_code, ByteView raw);

bool IsValidUtf8(std::string_view s);

extern template class RleEncoder<UlebValue>;
extern template class RleEncoder<SlebValue>;
extern template class RleEncoder<StringValue>;
extern template class RleDecoder<UlebValue>;
extern template class RleDecoder<SlebValue>;
extern template class RleDecoder<StringValue>;

}  // namespace etherply::automerge
