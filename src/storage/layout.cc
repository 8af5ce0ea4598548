#include "storage/layout.h"

namespace etherply::storage {

namespace {
constexpr std::string_view kChangesPrefix = "c/";
constexpr size_t kIndexBytes = 8;
}  // namespace

std::string ChangePrefix(std::string_view workspace) {
  std::string k(kChangesPrefix);
  k += workspace;
  k += '/';
  return k;
}

std::string ChangeKey(std::string_view workspace, uint64_t index) {
  std::string k = ChangePrefix(workspace);
  for (int shift = 8 * (kIndexBytes - 1); shift >= 0; shift -= 8)
    k.push_back(static_cast<char>(index >> shift));
  return k;
}

std::string HeadsKey(std::string_view workspace) {
  std::string k(kHeadsPrefix);
  k += workspace;
  return k;
}

std::string_view SequencePrefix(std::string_view key) {
  // c/ + a workspace ID of at least one byte + / + the index.
  if (key.starts_with(kChangesPrefix) && key.size() >= kChangesPrefix.size() + 2 + kIndexBytes &&
      key[key.size() - kIndexBytes - 1] == '/')
    return key.substr(0, key.size() - kIndexBytes);
  if (key.starts_with(kHeadsPrefix) && key.size() > kHeadsPrefix.size()) return key;
  return {};
}

Status ForEachChange(Store& store, std::string_view workspace,
                     const std::function<Status(std::string_view)>& f) {
  Status failed = Status::Ok();
  // Workspace IDs cannot contain '/', so the prefix names one workspace only.
  Status s = store.Scan(ChangePrefix(workspace), [&](std::string_view, std::string_view value) {
    failed = f(value);
    return failed.ok();
  });
  return failed.ok() ? s : failed;
}

}  // namespace etherply::storage
