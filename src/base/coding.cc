#include "base/coding.h"

namespace etherply {

void AppendUleb(Bytes& out, uint64_t v) {
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    if (v != 0) byte |= 0x80;
    out.push_back(byte);
  } while (v != 0);
}

void AppendSleb(Bytes& out, int64_t v) {
  while (true) {
    uint8_t byte = v & 0x7f;
    v >>= 7;  // arithmetic shift
    bool done = (v == 0 && !(byte & 0x40)) || (v == -1 && (byte & 0x40));
    if (!done) byte |= 0x80;
    out.push_back(byte);
    if (done) return;
  }
}

size_t UlebSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

size_t SlebSize(int64_t v) {
  size_t n = 1;
  while (true) {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    if ((v == 0 && !(byte & 0x40)) || (v == -1 && (byte & 0x40))) return n;
    ++n;
  }
}

Result<uint64_t> Reader::Uleb() {
  uint64_t result = 0;
  size_t p = pos_;
  for (int shift = 0;; shift += 7) {
    if (p >= data_.size()) return Status::Incomplete("LEB128 runs past the end of the input");
    uint8_t byte = data_[p++];
    uint64_t low = byte & 0x7f;
    if (shift == 63 && low > 1) return Status::Corruption("uLEB128 value does not fit 64 bits");
    result |= low << shift;
    if (!(byte & 0x80)) {
      if (byte == 0 && shift > 0) return Status::Corruption("overlong uLEB128");
      pos_ = p;
      return result;
    }
    if (shift == 63) return Status::Corruption("uLEB128 value does not fit 64 bits");
  }
}

Result<int64_t> Reader::Sleb() {
  uint64_t result = 0;
  size_t p = pos_;
  uint8_t prev = 0;
  for (int shift = 0;; shift += 7) {
    if (p >= data_.size()) return Status::Incomplete("LEB128 runs past the end of the input");
    uint8_t byte = data_[p++];
    uint64_t low = byte & 0x7f;
    if (shift == 63) {
      // The tenth byte holds bit 63 only; the rest must be its sign extension.
      if (byte & 0x80) return Status::Corruption("sLEB128 value does not fit 64 bits");
      if (low != 0 && low != 0x7f) return Status::Corruption("sLEB128 value does not fit 64 bits");
    }
    result |= low << shift;
    if (!(byte & 0x80)) {
      if (shift > 0) {
        bool prev_sign = prev & 0x40;
        if ((byte == 0x00 && !prev_sign) || (byte == 0x7f && prev_sign))
          return Status::Corruption("overlong sLEB128");
      }
      int bits = shift + 7;
      if (bits < 64 && (byte & 0x40)) result |= ~uint64_t{0} << bits;
      pos_ = p;
      return static_cast<int64_t>(result);
    }
    prev = byte;
  }
}

Result<uint32_t> Reader::Uleb32() {
  size_t start = pos_;
  auto v = Uleb();
  if (!v.ok()) return v.status();
  if (*v > UINT32_MAX) {
    pos_ = start;
    return Status::Corruption("value does not fit 32 bits");
  }
  return static_cast<uint32_t>(*v);
}

Result<uint8_t> Reader::Byte() {
  if (pos_ >= data_.size()) return Status::Incomplete("input ends early");
  return data_[pos_++];
}

Result<ByteView> Reader::Take(size_t n) {
  if (n > remaining()) return Status::Incomplete("input ends early");
  ByteView v = data_.subspan(pos_, n);
  pos_ += n;
  return v;
}

Result<ByteView> Reader::LengthPrefixed() {
  size_t start = pos_;
  auto n = Uleb();
  if (!n.ok()) return n.status();
  if (*n > remaining()) {
    pos_ = start;
    return Status::Incomplete("length-prefixed field runs past the end of the input");
  }
  return Take(static_cast<size_t>(*n));
}

Result<uint64_t> DecodeUlebExact(ByteView b) {
  Reader r(b);
  auto v = r.Uleb();
  if (!v.ok()) return v.status();
  if (!r.empty()) return Status::Corruption("bytes after uLEB128 value");
  return v;
}

Result<int64_t> DecodeSlebExact(ByteView b) {
  Reader r(b);
  auto v = r.Sleb();
  if (!v.ok()) return v.status();
  if (!r.empty()) return Status::Corruption("bytes after sLEB128 value");
  return v;
}

}  // namespace etherply
