// LEB128 encoding and a bounds-checked cursor over bytes.
//
// Grammar (Automerge FORMAT.md §1):
//   uleb := { 1xxxxxxx } 0xxxxxxx      7 bits a byte, least significant first,
//                                      at most 10 bytes, at most 64 bits
//   sleb := the same, two's complement, sign-extended to a multiple of 7 bits
// Writers emit the shortest form; readers reject overlong forms and values
// that do not fit 64 bits.
//
// Thread-safety: Reader is a value with no shared state.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply {

void AppendUleb(Bytes& out, uint64_t v);
void AppendSleb(Bytes& out, int64_t v);
size_t UlebSize(uint64_t v);
size_t SlebSize(int64_t v);

// Reads from a byte view, front to back. Every read either succeeds and
// advances, or fails with kIncomplete (the bytes end first) or kCorruption
// (the bytes are malformed) and leaves the position where it was.
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  bool empty() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  ByteView rest() const { return data_.subspan(pos_); }

  Result<uint64_t> Uleb();
  Result<int64_t> Sleb();
  // A uLEB that must fit in 32 bits.
  Result<uint32_t> Uleb32();
  Result<uint8_t> Byte();
  // The next n bytes, as a view into the underlying data.
  Result<ByteView> Take(size_t n);
  // A uLEB length followed by that many bytes.
  Result<ByteView> LengthPrefixed();

 private:
  ByteView data_;
  size_t pos_ = 0;
};

// Decodes a whole view as exactly one uLEB / sLEB (no bytes left over).
Result<uint64_t> DecodeUlebExact(ByteView b);
Result<int64_t> DecodeSlebExact(ByteView b);

}  // namespace etherply
