#include "storage/layout.h"

namespace etherply::storage {

std::string ChangePrefix(std::string_view workspace) {
  std::string k = "c/";
  k += workspace;
  k += '/';
  return k;
}

std::string ChangeKey(std::string_view workspace, uint64_t index) {
  std::string k = ChangePrefix(workspace);
  for (int shift = 56; shift >= 0; shift -= 8) k.push_back(static_cast<char>(index >> shift));
  return k;
}

std::string HeadsKey(std::string_view workspace) {
  std::string k(kHeadsPrefix);
  k += workspace;
  return k;
}

Result<std::vector<std::string>> LoadChanges(Store& store, std::string_view workspace) {
  std::vector<std::string> out;
  std::string prefix = ChangePrefix(workspace);
  Status s = store.Scan(prefix, [&](std::string_view key, std::string_view value) {
    // Workspace IDs cannot contain '/', so the prefix names one workspace only.
    out.emplace_back(value);
    return true;
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace etherply::storage
