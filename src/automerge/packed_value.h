// A ScalarValue in 16 bytes, as the op set keeps one per op.
//
// Numbers, booleans, null and strings or bytes of at most 14 bytes (a typed
// character, a short key's value) are held inline; anything longer, and
// values of unknown type, are boxed: one heap ScalarValue. A ScalarValue is a
// 40-byte variant; a document keeps a value for every op it ever applied, so
// the difference is most of an op's size.
//
// Thread-safety: a plain value type.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "automerge/types.h"

namespace etherply::automerge {

class PackedValue {
 public:
  PackedValue() = default;  // null
  explicit PackedValue(const ScalarValue& v);
  PackedValue(const PackedValue& other);
  PackedValue& operator=(const PackedValue& other);
  // Moves are a copy of the 16 bytes (ops are moved often: keep them inline).
  PackedValue(PackedValue&& other) noexcept { Take(other); }
  PackedValue& operator=(PackedValue&& other) noexcept {
    if (this != &other) {
      Release();
      Take(other);
    }
    return *this;
  }
  ~PackedValue() { Release(); }

  ScalarValue Get() const;
  bool operator==(const ScalarValue& v) const;

  bool is_counter() const { return kind_ == Kind::kCounter; }
  // The counter's initial value; is_counter() must hold.
  int64_t counter() const { return Int(); }
  bool is_str() const;
  // The text of a str value; "" for any other type.
  std::string_view str() const;
  // What an increment op with this value adds: an int or a uint's value,
  // else 0.
  int64_t IncrementAmount() const;

 private:
  enum class Kind : uint8_t {
    kNull, kFalse, kTrue, kUint, kInt, kF64, kStr, kBytes, kCounter, kTimestamp,
    kBoxed,  // data_ holds a ScalarValue*
  };
  static constexpr size_t kInline = 14;

  int64_t Int() const {
    int64_t v;
    std::memcpy(&v, data_, sizeof v);
    return v;
  }
  void SetInt(int64_t v) { std::memcpy(data_, &v, sizeof v); }
  const ScalarValue* Boxed() const {
    const ScalarValue* p;
    std::memcpy(&p, data_, sizeof p);
    return p;
  }
  void Release() {
    if (kind_ == Kind::kBoxed) FreeBox();
    kind_ = Kind::kNull;
  }
  void FreeBox();
  void Take(PackedValue& other) {
    std::memcpy(data_, other.data_, sizeof data_);
    len_ = other.len_;
    kind_ = other.kind_;
    other.kind_ = Kind::kNull;
  }

  alignas(8) unsigned char data_[kInline] = {};
  uint8_t len_ = 0;  // of an inline str or bytes
  Kind kind_ = Kind::kNull;
};
static_assert(sizeof(PackedValue) == 16);

}  // namespace etherply::automerge
