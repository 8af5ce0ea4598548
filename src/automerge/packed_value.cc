#include "automerge/packed_value.h"


namespace etherply::automerge {

PackedValue::PackedValue(const ScalarValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          kind_ = Kind::kNull;
        } else if constexpr (std::is_same_v<T, bool>) {
          kind_ = x ? Kind::kTrue : Kind::kFalse;
        } else if constexpr (std::is_same_v<T, Uint>) {
          kind_ = Kind::kUint;
          std::memcpy(data_, &x.value, sizeof x.value);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          kind_ = Kind::kInt;
          SetInt(x);
        } else if constexpr (std::is_same_v<T, double>) {
          kind_ = Kind::kF64;
          std::memcpy(data_, &x, sizeof x);
        } else if constexpr (std::is_same_v<T, Counter>) {
          kind_ = Kind::kCounter;
          SetInt(x.value);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          kind_ = Kind::kTimestamp;
          SetInt(x.millis);
        } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Bytes>) {
          if (x.size() <= kInline) {
            kind_ = std::is_same_v<T, std::string> ? Kind::kStr : Kind::kBytes;
            len_ = static_cast<uint8_t>(x.size());
            if (!x.empty()) std::memcpy(data_, x.data(), x.size());
          } else {
            kind_ = Kind::kBoxed;
            const ScalarValue* p = new ScalarValue(x);
            std::memcpy(data_, &p, sizeof p);
          }
        } else {  // UnknownValue
          kind_ = Kind::kBoxed;
          const ScalarValue* p = new ScalarValue(x);
          std::memcpy(data_, &p, sizeof p);
        }
      },
      v);
}

PackedValue::PackedValue(const PackedValue& other) { *this = other; }

PackedValue& PackedValue::operator=(const PackedValue& other) {
  if (this == &other) return *this;
  Release();
  std::memcpy(data_, other.data_, sizeof data_);
  len_ = other.len_;
  kind_ = other.kind_;
  if (kind_ == Kind::kBoxed) {
    const ScalarValue* p = new ScalarValue(*other.Boxed());
    std::memcpy(data_, &p, sizeof p);
  }
  return *this;
}

void PackedValue::FreeBox() { delete Boxed(); }

ScalarValue PackedValue::Get() const {
  switch (kind_) {
    case Kind::kNull:
      return std::monostate{};
    case Kind::kFalse:
      return false;
    case Kind::kTrue:
      return true;
    case Kind::kUint: {
      uint64_t u;
      std::memcpy(&u, data_, sizeof u);
      return Uint{u};
    }
    case Kind::kInt:
      return Int();
    case Kind::kF64: {
      double d;
      std::memcpy(&d, data_, sizeof d);
      return d;
    }
    case Kind::kStr:
      return std::string(reinterpret_cast<const char*>(data_), len_);
    case Kind::kBytes:
      return Bytes(data_, data_ + len_);
    case Kind::kCounter:
      return Counter{Int()};
    case Kind::kTimestamp:
      return Timestamp{Int()};
    case Kind::kBoxed:
      return *Boxed();
  }
  return std::monostate{};
}

bool PackedValue::operator==(const ScalarValue& v) const {
  if (kind_ == Kind::kBoxed) return *Boxed() == v;
  return Get() == v;
}

bool PackedValue::is_str() const {
  return kind_ == Kind::kStr ||
         (kind_ == Kind::kBoxed && std::holds_alternative<std::string>(*Boxed()));
}

std::string_view PackedValue::str() const {
  if (kind_ == Kind::kStr) return {reinterpret_cast<const char*>(data_), len_};
  if (kind_ == Kind::kBoxed)
    if (auto* s = std::get_if<std::string>(Boxed())) return *s;
  return {};
}

int64_t PackedValue::IncrementAmount() const {
  if (kind_ == Kind::kInt || kind_ == Kind::kUint) return Int();
  return 0;
}

}  // namespace etherply::automerge
