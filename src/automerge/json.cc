#include "automerge/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "automerge/document.h"
#include "base/hex.h"

namespace etherply::automerge {

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          AppendHex(out, c);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

std::string FormatJsNumber(double d) {
  if (d == 0) return "0";
  std::string out;
  if (d < 0) {
    out.push_back('-');
    d = -d;
  }
  // Shortest round-trip digits, as ECMAScript requires.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, r.ptr - buf);
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits.push_back(c);
  int exp10 = std::atoi(std::string(sci.substr(e + 1)).c_str());
  int k = static_cast<int>(digits.size());
  int n = exp10 + 1;  // value = 0.digits × 10^n
  if (k <= n && n <= 21) {
    out += digits;
    out.append(n - k, '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, n);
    out.push_back('.');
    out += digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(-n, '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

std::optional<std::string> FormatIsoTime(int64_t millis) {
  constexpr int64_t kMaxDate = 8'640'000'000'000'000;
  if (millis > kMaxDate || millis < -kMaxDate) return std::nullopt;
  int64_t days = millis / 86'400'000;
  int64_t ms = millis % 86'400'000;
  if (ms < 0) {
    ms += 86'400'000;
    --days;
  }
  // Civil from days (H. Hinnant's algorithm).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t dd = doy - (153 * mp + 2) / 5 + 1;
  int64_t mm = mp < 10 ? mp + 3 : mp - 9;
  if (mm <= 2) ++y;
  char buf[64];
  char year[16];
  if (y >= 0 && y <= 9999) {
    std::snprintf(year, sizeof year, "%04lld", static_cast<long long>(y));
  } else {
    std::snprintf(year, sizeof year, "%c%06lld", y < 0 ? '-' : '+',
                  static_cast<long long>(y < 0 ? -y : y));
  }
  std::snprintf(buf, sizeof buf, "%s-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", year,
                static_cast<long long>(mm), static_cast<long long>(dd),
                static_cast<long long>(ms / 3'600'000), static_cast<long long>(ms / 60'000 % 60),
                static_cast<long long>(ms / 1000 % 60), static_cast<long long>(ms % 1000));
  return std::string(buf);
}

std::string Base64(ByteView b) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    uint32_t v = b[i] << 16 | b[i + 1] << 8 | b[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[v >> s & 63]);
  }
  if (i + 1 == b.size()) {
    uint32_t v = b[i] << 16;
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out += "==";
  } else if (i + 2 == b.size()) {
    uint32_t v = b[i] << 16 | b[i + 1] << 8;
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out.push_back(kAlphabet[v >> 6 & 63]);
    out.push_back('=');
  }
  return out;
}

void AppendJsonScalar(std::string& out, const ScalarValue& v) {
  switch (v.index()) {
    case 0: out += "null"; break;
    case 1: out += std::get<bool>(v) ? "true" : "false"; break;
    case 2: out += std::to_string(std::get<Uint>(v).value); break;
    case 3: out += std::to_string(std::get<int64_t>(v)); break;
    case 4: {
      double d = std::get<double>(v);
      out += std::isfinite(d) ? FormatJsNumber(d) : "null";
      break;
    }
    case 5: AppendJsonString(out, std::get<std::string>(v)); break;
    case 6: AppendJsonString(out, Base64(std::get<Bytes>(v))); break;
    case 7: out += std::to_string(std::get<Counter>(v).value); break;
    case 8: {
      auto iso = FormatIsoTime(std::get<Timestamp>(v).millis);
      if (iso) {
        AppendJsonString(out, *iso);
      } else {
        out += "null";
      }
      break;
    }
    default: out += "null"; break;
  }
}

namespace {
// An ECMAScript array index: canonical decimal below 2^32 - 1.
bool IsArrayIndex(std::string_view k) {
  if (k.empty() || k.size() > 10 || (k.size() > 1 && k[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : k) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  return v < 4294967295u;
}
}  // namespace

// Reads a document, now or at a clock, as JSON text or as ValueTrees.
class DocReader {
 public:
  DocReader(const Document& doc, const Clock* at) : doc_(doc), at_(at) {}

  void Object(const ObjId& id, std::string& out) const {
    const Document::Object& o = doc_.objects_.at(id);
    switch (o.type) {
      case ObjType::kMap:
      case ObjType::kTable: return Map(o, out);
      case ObjType::kList: return List(o, out);
      case ObjType::kText: return Text(o, out);
    }
  }

  void Value(const automerge::Value& v, std::string& out) const {
    if (v.is_object()) return Object(std::get<ObjId>(v.v), out);
    AppendJsonScalar(out, std::get<ScalarValue>(v.v));
  }

  // The keys of a map that have a value, in JavaScript's order, with it.
  std::vector<std::pair<const std::string*, automerge::Value>> Entries(
      const Document::Object& o) const {
    std::vector<std::pair<uint64_t, std::pair<const std::string*, automerge::Value>>> indices;
    std::vector<std::pair<const std::string*, automerge::Value>> out;
    for (const auto& [k, slot] : o.map().keys) {
      auto v = doc_.ValueAt(slot, at_);
      if (!v) continue;
      if (IsArrayIndex(k)) {
        indices.emplace_back(std::stoull(k), std::make_pair(&k, std::move(*v)));
      } else {
        out.emplace_back(&k, std::move(*v));
      }
    }
    std::stable_sort(indices.begin(), indices.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<const std::string*, automerge::Value>> all;
    for (auto& [n, kv] : indices) all.push_back(std::move(kv));
    for (auto& kv : out) all.push_back(std::move(kv));
    return all;
  }

  // Recursive: a document nests at most Document::kMaxDepth objects.
  ValueTree Tree(const automerge::Value& v) const {
    ValueTree t;
    if (!v.is_object()) {
      t.scalar = std::get<ScalarValue>(v.v);
      return t;
    }
    const Document::Object& o = doc_.objects_.at(std::get<ObjId>(v.v));
    t.obj_type = o.type;
    switch (o.type) {
      case ObjType::kMap:
      case ObjType::kTable:
        for (const auto& [k, value] : Entries(o)) t.fields.emplace_back(*k, Tree(value));
        break;
      case ObjType::kList:
        o.seq().ForEach([&](const Element& e) {
          if (!Shown(e)) return;
          if (auto value = doc_.ValueAt(e.slot, at_)) t.items.push_back(Tree(*value));
        });
        break;
      case ObjType::kText:
        t.text = TextOf(o);
        break;
    }
    return t;
  }

 private:
  bool Shown(const Element& e) const {
    return !e.mark && (at_ == nullptr ? e.visible() : at_->Includes(e.id));
  }

  void Map(const Document::Object& o, std::string& out) const {
    out.push_back('{');
    bool first = true;
    for (const auto& [k, v] : Entries(o)) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(out, *k);
      out.push_back(':');
      Value(v, out);
    }
    out.push_back('}');
  }

  void List(const Document::Object& o, std::string& out) const {
    out.push_back('[');
    bool first = true;
    o.seq().ForEach([&](const Element& e) {
      if (!Shown(e)) return;
      auto v = doc_.ValueAt(e.slot, at_);
      if (!v) return;
      if (!first) out.push_back(',');
      first = false;
      Value(*v, out);
    });
    out.push_back(']');
  }

  void Text(const Document::Object& o, std::string& out) const { AppendJsonString(out, TextOf(o)); }

  std::string TextOf(const Document::Object& o) const {
    std::string text;
    o.seq().ForEach([&](const Element& e) {
      if (!Shown(e)) return;
      const Op* w = doc_.WinnerAt(e.slot, at_, nullptr);
      if (!w) return;
      if (w->value.is_str() && w->action == Action::kSet) {
        text += w->value.str();
      } else {
        text += "\xEF\xBF\xBC";  // U+FFFC, as the reference shows non-characters
      }
    });
    return text;
  }

  const Document& doc_;
  const Clock* at_;
};

std::string Document::ToJson(const Clock* at) const {
  std::string out;
  DocReader(*this, at).Object(kRoot, out);
  return out;
}

std::optional<std::string> Document::RootValueJson(std::string_view key, const Clock* at) const {
  auto it = objects_.at(kRoot).map().keys.find(key);
  if (it == objects_.at(kRoot).map().keys.end()) return std::nullopt;
  auto v = ValueAt(it->second, at);
  if (!v) return std::nullopt;
  std::string out;
  DocReader(*this, at).Value(*v, out);
  return out;
}

std::optional<ValueTree> Document::RootValueTree(std::string_view key, const Clock* at) const {
  auto it = objects_.at(kRoot).map().keys.find(key);
  if (it == objects_.at(kRoot).map().keys.end()) return std::nullopt;
  auto v = ValueAt(it->second, at);
  if (!v) return std::nullopt;
  return DocReader(*this, at).Tree(*v);
}

namespace {
bool SameScalar(const ScalarValue& a, const ScalarValue& b) {
  if (a.index() != b.index()) return false;
  if (const double* x = std::get_if<double>(&a)) {
    double y = std::get<double>(b);
    return std::memcmp(x, &y, sizeof y) == 0;  // -0 is not 0; a NaN is itself
  }
  return a == b;
}
}  // namespace

bool ValueTree::Same(const ValueTree& o) const {
  if (obj_type != o.obj_type || text != o.text || fields.size() != o.fields.size() ||
      items.size() != o.items.size() || !SameScalar(scalar, o.scalar))
    return false;
  for (size_t i = 0; i < fields.size(); ++i)
    if (fields[i].first != o.fields[i].first || !fields[i].second.Same(o.fields[i].second))
      return false;
  for (size_t i = 0; i < items.size(); ++i)
    if (!items[i].Same(o.items[i])) return false;
  return true;
}

std::vector<std::string> Document::RootKeys(const Clock* at) const {
  std::vector<std::string> keys;
  for (const auto& [k, v] : DocReader(*this, at).Entries(objects_.at(kRoot))) keys.push_back(*k);
  return keys;
}

}  // namespace etherply::automerge
