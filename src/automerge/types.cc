#include "automerge/types.h"

#include <cstring>

#include "base/hex.h"

namespace etherply::automerge {

std::optional<ObjType> CreatedObjType(Action a) {
  switch (a) {
    case Action::kMakeMap: return ObjType::kMap;
    case Action::kMakeTable: return ObjType::kTable;
    case Action::kMakeList: return ObjType::kList;
    case Action::kMakeText: return ObjType::kText;
    default: return std::nullopt;
  }
}

bool IsSequence(ObjType t) { return t == ObjType::kList || t == ObjType::kText; }

const char* ValueTypeName(const ScalarValue& v) {
  static constexpr const char* kNames[] = {"null", "boolean", "uint",  "int",       "f64",
                                           "str",  "bytes",   "counter", "timestamp", "unknown"};
  return kNames[v.index()];
}

std::string HashToHex(const ChangeHash& h) { return ToHex(h); }

Result<ChangeHash> HashFromHex(std::string_view hex) {
  auto bytes = FromHex(hex);
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() != 32) return Status::InvalidArgument("a change hash has 64 hex digits");
  ChangeHash h;
  std::memcpy(h.data(), bytes->data(), 32);
  return h;
}

Result<std::vector<ChangeHash>> HashesFromHexList(std::string_view s) {
  std::vector<ChangeHash> heads;
  for (;;) {
    size_t comma = s.find(',');
    auto h = HashFromHex(s.substr(0, comma));
    if (!h.ok()) return Status::InvalidArgument("heads must be 64-digit hex change hashes");
    heads.push_back(*h);
    if (comma == std::string_view::npos) return heads;
    s.remove_prefix(comma + 1);
  }
}

}  // namespace etherply::automerge
