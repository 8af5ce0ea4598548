#include "automerge/columns.h"

#include <cstring>

namespace etherply::automerge {

// --- values ------------------------------------------------------------------

void StringValue::Write(Bytes& out, const T& v) {
  AppendUleb(out, v.size());
  Append(out, AsBytes(v));
}

Result<std::string> StringValue::Read(Reader& r) {
  auto b = r.LengthPrefixed();
  if (!b.ok()) return b.status();
  std::string s(AsChars(*b));
  if (!IsValidUtf8(s)) return Status::Corruption("string is not valid UTF-8");
  return s;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      uint8_t cc = s[i + k];
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

// --- RLE ---------------------------------------------------------------------

namespace {
// A column's view holds all of its bytes, so running out inside it is
// malformed input, not a reason to wait for more.
Status Malformed(const Status& s, std::string_view context) {
  return Status::Corruption(std::string(context) + ": " + s.message());
}
}  // namespace

template <typename V>
void RleEncoder<V>::FlushLiteral() {
  AppendSleb(Out(), -static_cast<int64_t>(literal_.size() + 1));
  for (const T& v : literal_) V::Write(Out(), v);
  V::Write(Out(), value_);
  literal_.clear();
}

template <typename V>
void RleEncoder<V>::FlushValues() {
  switch (state_) {
    case State::kLone:
      AppendSleb(Out(), -1);
      V::Write(Out(), value_);
      break;
    case State::kRun:
      AppendSleb(Out(), static_cast<int64_t>(count_));
      V::Write(Out(), value_);
      break;
    case State::kLiteral:
      FlushLiteral();
      break;
    case State::kEmpty:
    case State::kInitialNull:  // nulls that begin a column are not written
    case State::kNull:
      break;
  }
}

template <typename V>
void RleEncoder<V>::FlushNulls() {
  AppendSleb(Out(), 0);
  AppendUleb(Out(), count_);
}

template <typename V>
void RleEncoder<V>::AppendNull() {
  switch (state_) {
    case State::kEmpty:
      state_ = State::kInitialNull, count_ = 1;
      return;
    case State::kInitialNull:
    case State::kNull:
      ++count_;
      return;
    default:
      FlushValues();
      state_ = State::kNull, count_ = 1;
  }
}

template <typename V>
void RleEncoder<V>::Append(const T& x) {
  switch (state_) {
    case State::kEmpty:
      break;
    case State::kInitialNull:
    case State::kNull:
      FlushNulls();
      break;
    case State::kLone:
      if (x == value_) {
        state_ = State::kRun, count_ = 2;
      } else {
        literal_.push_back(std::move(value_));
        value_ = x;
        state_ = State::kLiteral;
      }
      return;
    case State::kRun:
      if (x == value_) {
        ++count_;
        return;
      }
      FlushValues();
      break;
    case State::kLiteral:
      if (x == value_) {
        AppendSleb(Out(), -static_cast<int64_t>(literal_.size()));
        for (const T& v : literal_) V::Write(Out(), v);
        literal_.clear();
        state_ = State::kRun, count_ = 2;
      } else {
        literal_.push_back(std::move(value_));
        value_ = x;
      }
      return;
  }
  state_ = State::kLone, value_ = x;
}

template <typename V>
ByteView RleEncoder<V>::FinishInPlace() {
  if (state_ == State::kNull) {
    FlushNulls();
  } else {
    FlushValues();
  }
  state_ = State::kEmpty;
  count_ = 0;
  return out_;
}

template <typename V>
Bytes RleEncoder<V>::Finish() {
  FinishInPlace();
  return std::move(out_);
}

template <typename V>
void RleEncoder<V>::Reset() {
  state_ = State::kEmpty;
  count_ = 0;
  literal_.clear();
  out_.clear();
}

template <typename V>
Result<std::optional<typename V::T>> RleDecoder<V>::Next() {
  // A null run of length zero is skipped, as the reference's decoder does.
  while (remaining_ == 0) {
    if (r_.empty()) return std::optional<T>();
    auto n = r_.Sleb();
    if (!n.ok()) return Malformed(n.status(), "RLE column");
    if (*n > 0) {
      auto v = V::Read(r_);
      if (!v.ok()) return Malformed(v.status(), "RLE column");
      kind_ = Kind::kRun, remaining_ = static_cast<uint64_t>(*n), value_ = std::move(*v);
    } else if (*n < 0) {
      kind_ = Kind::kLiteral, remaining_ = -static_cast<uint64_t>(*n);
    } else {
      auto k = r_.Uleb();
      if (!k.ok()) return Malformed(k.status(), "RLE column");
      kind_ = Kind::kNull, remaining_ = *k;
    }
  }
  --remaining_;
  switch (kind_) {
    case Kind::kRun:
      return std::optional<T>(value_);
    case Kind::kNull:
      return std::optional<T>();
    case Kind::kLiteral: {
      auto v = V::Read(r_);
      if (!v.ok()) return Malformed(v.status(), "RLE column");
      return std::optional<T>(std::move(*v));
    }
  }
  return std::optional<T>();
}

template class RleEncoder<UlebValue>;
template class RleEncoder<SlebValue>;
template class RleEncoder<StringValue>;
template class RleDecoder<UlebValue>;
template class RleDecoder<SlebValue>;
template class RleDecoder<StringValue>;

Result<std::optional<int64_t>> DeltaDecoder::Next() {
  auto d = rle_.Next();
  if (!d.ok()) return d.status();
  if (!d->has_value()) return std::optional<int64_t>();
  // Wrapping arithmetic: a malicious column must not be undefined behaviour.
  prev_ = static_cast<int64_t>(static_cast<uint64_t>(prev_) + static_cast<uint64_t>(**d));
  return std::optional<int64_t>(prev_);
}

// --- booleans ------------------------------------------------------------------

void BooleanEncoder::Append(bool v) {
  ++total_;
  any_true_ |= v;
  if (v == last_) {
    ++count_;
  } else {
    AppendUleb(Out(), count_);
    last_ = v;
    count_ = 1;
  }
}

ByteView BooleanEncoder::FinishInPlace() {
  if (total_ > 0) AppendUleb(Out(), count_);
  return out_;
}

ByteView BooleanEncoder::FinishMaybeInPlace() {
  if (!any_true_) return {};
  return FinishInPlace();
}

Bytes BooleanEncoder::Finish() {
  FinishInPlace();
  return std::move(out_);
}

Bytes BooleanEncoder::FinishMaybe() {
  if (!any_true_) return {};
  return Finish();
}

void BooleanEncoder::Reset() {
  last_ = false;
  any_true_ = false;
  count_ = 0;
  total_ = 0;
  out_.clear();
}

Result<bool> BooleanDecoder::Next() {
  while (remaining_ == 0) {
    if (r_.empty()) return false;
    auto n = r_.Uleb();
    if (!n.ok()) return Malformed(n.status(), "boolean column");
    // An empty run just flips the value (the first one when a column starts
    // with true; others are not written by the reference but are accepted).
    value_ = !value_;
    remaining_ = *n;
  }
  --remaining_;
  return value_;
}

// --- scalar values --------------------------------------------------------------

uint8_t ValueTypeCode(const ScalarValue& v) {
  switch (v.index()) {
    case 0: return 0;
    case 1: return std::get<bool>(v) ? 2 : 1;
    case 2: return 3;
    case 3: return 4;
    case 4: return 5;
    case 5: return 6;
    case 6: return 7;
    case 7: return 8;
    case 8: return 9;
    default: return std::get<UnknownValue>(v).type_code;
  }
}

void AppendRawValue(Bytes& out, const ScalarValue& v) {
  switch (v.index()) {
    case 2: AppendUleb(out, std::get<Uint>(v).value); break;
    case 3: AppendSleb(out, std::get<int64_t>(v)); break;
    case 4: {
      double d = std::get<double>(v);
      uint8_t b[8];
      std::memcpy(b, &d, 8);  // little-endian host (x86-64, aarch64)
      out.insert(out.end(), b, b + 8);
      break;
    }
    case 5: Append(out, AsBytes(std::get<std::string>(v))); break;
    case 6: Append(out, std::get<Bytes>(v)); break;
    case 7: AppendSleb(out, std::get<Counter>(v).value); break;
    case 8: AppendSleb(out, std::get<Timestamp>(v).millis); break;
    case 9: Append(out, std::get<UnknownValue>(v).raw); break;
    default: break;  // null and booleans have no raw bytes
  }
}

Result<ScalarValue> DecodeRawValue(uint8_t type_code, ByteView raw) {
  auto need_empty = [&](ScalarValue v) -> Result<ScalarValue> {
    if (!raw.empty()) return Status::Corruption("value of this type has no bytes");
    return v;
  };
  switch (type_code) {
    case 0: return need_empty(std::monostate{});
    case 1: return need_empty(false);
    case 2: return need_empty(true);
    case 3: {
      auto u = DecodeUlebExact(raw);
      if (!u.ok()) return Malformed(u.status(), "uint value");
      return ScalarValue(Uint{*u});
    }
    case 4:
    case 8:
    case 9: {
      auto i = DecodeSlebExact(raw);
      if (!i.ok()) return Malformed(i.status(), "integer value");
      if (type_code == 4) return ScalarValue(*i);
      if (type_code == 8) return ScalarValue(Counter{*i});
      return ScalarValue(Timestamp{*i});
    }
    case 5: {
      if (raw.size() != 8) return Status::Corruption("f64 value is not 8 bytes");
      double d;
      std::memcpy(&d, raw.data(), 8);
      return ScalarValue(d);
    }
    case 6: {
      std::string s(AsChars(raw));
      if (!IsValidUtf8(s)) return Status::Corruption("string value is not valid UTF-8");
      return ScalarValue(std::move(s));
    }
    case 7: return ScalarValue(Bytes(raw.begin(), raw.end()));
    default: return ScalarValue(UnknownValue{type_code, Bytes(raw.begin(), raw.end())});
  }
}

void ValueEncoder::Append(const ScalarValue& v) {
  size_t before = raw_.size();
  if (raw_.capacity() == 0) raw_.reserve(kFirstCapacity);
  AppendRawValue(raw_, v);
  meta_.Append(uint64_t{raw_.size() - before} << 4 | ValueTypeCode(v));
}

Result<ScalarValue> ValueDecoder::Next() {
  auto m = meta_.Next();
  if (!m.ok()) return Malformed(m.status(), "value metadata");
  if (!m->has_value()) return ScalarValue(std::monostate{});
  uint64_t meta = **m;
  auto raw = raw_.Take(meta >> 4);
  if (!raw.ok()) return Status::Corruption("raw value column is shorter than its metadata");
  return DecodeRawValue(static_cast<uint8_t>(meta & 15), *raw);
}

}  // namespace etherply::automerge
