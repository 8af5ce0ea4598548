#include "replication/message.h"

#include <charconv>
#include <unordered_map>

#include "base/sha256.h"

namespace etherply::replication {

namespace {

constexpr std::string_view kIdTag{"etherply.changes/1\0", 19};

// The ID of a message of `hashes` in `workspace`: see message.h.
Sha256Digest MessageId(std::string_view workspace,
                       const std::vector<automerge::ChangeHash>& hashes) {
  Sha256 sha;
  sha.Update(AsBytes(kIdTag));
  sha.Update(AsBytes(workspace));
  const uint8_t zero = 0;
  sha.Update(ByteView(&zero, 1));
  for (const auto& h : hashes) sha.Update(h);
  return sha.Finish();
}

}  // namespace

std::vector<ChangeMessage> PackChanges(const std::vector<Outbox::Item>& items, size_t max_bytes) {
  std::vector<ChangeMessage> out;
  std::vector<std::vector<automerge::ChangeHash>> hashes;  // per message in `out`
  std::unordered_map<std::string_view, size_t> open;       // workspace → its message in `out`
  for (const Outbox::Item& item : items) {
    auto [it, fresh] = open.try_emplace(item.workspace, out.size());
    if (!fresh && out[it->second].data.size() + item.chunk.size() > max_bytes) {
      it->second = out.size();
      fresh = true;
    }
    if (fresh) {
      out.emplace_back().workspace = item.workspace;
      hashes.emplace_back();
    }
    ChangeMessage& m = out[it->second];
    m.data += item.chunk;
    if (m.changes++ > 0) m.timestamps += ' ';
    m.timestamps += std::to_string(item.timestamp);
    hashes[it->second].push_back(item.hash);
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].id = MessageId(out[i].workspace, hashes[i]);
  return out;
}

Result<std::vector<int64_t>> ParseTimestamps(std::string_view header, size_t n) {
  std::vector<int64_t> out;
  const char* p = header.data();
  const char* end = p + header.size();
  bool ok = true;
  while (ok) {
    int64_t v;
    auto [next, ec] = std::from_chars(p, end, v);
    ok = ec == std::errc();
    if (!ok) break;
    out.push_back(v);
    p = next;
    if (p == end) break;
    ok = *p++ == ' ';
  }
  if (!ok || out.size() != n)
    return Status::InvalidArgument("Etherply-Timestamp \"" + std::string(header.substr(0, 64)) +
                                   "\" does not hold " + std::to_string(n) + " timestamps");
  return out;
}

}  // namespace etherply::replication
