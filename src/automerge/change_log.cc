#include "automerge/change_log.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "automerge/chunk.h"
#include "base/coding.h"

namespace etherply::automerge {

namespace {

// The arena's first block; later ones grow by NextBlock (base/huge_pages.h)
// up to 2 MiB, and a stored chunk larger than that gets a block of its own.
constexpr size_t kFirstBlock = size_t{4} << 10;

// Where the tail (the body from the message on) starts in a change chunk;
// nullopt if the chunk does not parse that far.
std::optional<size_t> TailOf(ByteView chunk) {
  Reader r(chunk);
  if (!r.Take(9).ok() || !r.Uleb().ok()) return std::nullopt;
  auto ndeps = r.Uleb();
  if (!ndeps.ok() || *ndeps > r.remaining() / 32 || !r.Take(*ndeps * 32).ok()) return std::nullopt;
  if (!r.LengthPrefixed().ok() || !r.Uleb().ok() || !r.Uleb().ok() || !r.Sleb().ok())
    return std::nullopt;
  return r.position();
}

// A table entry is (tag << 32) | (row + 1), the tag being the hash's first
// 32 bits, which also pick its home slot: growing the table and deleting
// move entries without reading their hashes.
uint64_t TagOf(const ChangeHash& h) {
  uint32_t v;
  std::memcpy(&v, h.data(), sizeof(v));
  return uint64_t{v} << 32;
}
uint64_t HomeOfEntry(uint64_t entry) { return entry >> 32; }
constexpr uint64_t kRowMask = 0xffffffffu;

}  // namespace

ChangeLog::ChangeLog(const std::vector<ActorId>* actors) : actors_(actors) {}

std::span<const uint32_t> ChangeLog::deps(size_t i) const {
  size_t end = i + 1 < rows_.size() ? rows_[i + 1].deps : deps_.size();
  return std::span<const uint32_t>(deps_.data() + rows_[i].deps, end - rows_[i].deps);
}

ByteView ChangeLog::Stored(const Row& row) const {
  return ByteView(blocks_[row.block]).subspan(row.offset, row.length);
}

void ChangeLog::WriteHeader(size_t i, size_t tail_size, Bytes& out) const {
  const Row& row = rows_[i];
  const ChangeHash& hash = hashes_[i];
  const ActorId& actor = (*actors_)[row.actor];
  std::span<const uint32_t> dep_rows = deps(i);
  const uint64_t start = start_op(i);
  size_t body = UlebSize(dep_rows.size()) + 32 * dep_rows.size() + UlebSize(actor.size()) +
                actor.size() + UlebSize(row.seq) + UlebSize(start) + SlebSize(row.time) + tail_size;
  out.clear();
  out.reserve(9 + UlebSize(body) + body);
  out.insert(out.end(), std::begin(kMagic), std::end(kMagic));
  out.insert(out.end(), hash.begin(), hash.begin() + 4);
  out.push_back(static_cast<uint8_t>(ChunkType::kChange));
  AppendUleb(out, body);
  AppendUleb(out, dep_rows.size());
  for (uint32_t d : dep_rows) out.insert(out.end(), hashes_[d].begin(), hashes_[d].end());
  AppendUleb(out, actor.size());
  etherply::Append(out, actor);
  AppendUleb(out, row.seq);
  AppendUleb(out, start);
  AppendSleb(out, row.time);
}

void ChangeLog::Rebuild(size_t i, ByteView tail, Bytes& out) const {
  WriteHeader(i, tail.size(), out);
  etherply::Append(out, tail);
}

Bytes ChangeLog::bytes(size_t i) const {
  const Row& row = rows_[i];
  ByteView stored = Stored(row);
  if (row.whole) return Bytes(stored.begin(), stored.end());
  Bytes out;
  Rebuild(i, stored, out);
  return out;
}

StoredChange ChangeLog::Get(size_t i) const {
  const Row& row = rows_[i];
  StoredChange sc;
  sc.bytes = bytes(i);
  sc.hash = hashes_[i];
  Change& c = sc.change;
  for (uint32_t d : deps(i)) c.deps.push_back(hashes_[d]);
  c.actor = (*actors_)[row.actor];
  c.seq = row.seq;
  c.start_op = start_op(i);
  c.time = row.time;
  c.num_ops = row.num_ops;
  c.empty_message = row.empty_message;
  // The rest from the tail; it was validated when the change was admitted.
  auto tail = TailOf(sc.bytes);
  if (!tail) return sc;
  Reader r(ByteView(sc.bytes).subspan(*tail));
  auto msg = r.LengthPrefixed();
  if (!msg.ok()) return sc;
  c.message.assign(AsChars(*msg));
  auto nothers = r.Uleb();
  if (!nothers.ok()) return sc;
  for (uint64_t k = 0; k < *nothers; ++k) {
    auto a = r.LengthPrefixed();
    if (!a.ok()) return sc;
    c.other_actors.emplace_back(a->begin(), a->end());
  }
  auto ncols = r.Uleb();
  if (!ncols.ok()) return sc;
  uint64_t data = 0;
  for (uint64_t k = 0; k < *ncols; ++k) {
    auto spec = r.Uleb();
    auto len = r.Uleb();
    if (!spec.ok() || !len.ok()) return sc;
    data += *len;
  }
  if (!r.Take(data).ok()) return sc;
  ByteView extra = r.rest();
  c.extra.assign(extra.begin(), extra.end());
  return sc;
}

std::optional<uint32_t> ChangeLog::Find(const ChangeHash& h) const {
  if (table_.empty()) return std::nullopt;
  const size_t mask = table_.size() - 1;
  const uint64_t tag = TagOf(h);
  for (size_t s = HomeOfEntry(tag) & mask;; s = (s + 1) & mask) {
    uint64_t v = table_[s];
    if (v == 0) return std::nullopt;
    uint32_t row = static_cast<uint32_t>((v & kRowMask) - 1);
    if ((v & ~kRowMask) == tag && hashes_[row] == h) return row;
  }
}

void ChangeLog::Place(uint64_t entry) {
  const size_t mask = table_.size() - 1;
  size_t s = HomeOfEntry(entry) & mask;
  while (table_[s] != 0) s = (s + 1) & mask;
  table_[s] = entry;
}

void ChangeLog::Insert(uint32_t row) {
  if ((rows_.size() + 1) * 4 > table_.size() * 3) {
    Table old = std::move(table_);
    table_.assign(std::max<size_t>(16, old.size() * 2), 0);
    for (uint64_t v : old)
      if (v != 0) Place(v);
  }
  Place(TagOf(hashes_[row]) | (uint64_t{row} + 1));
}

void ChangeLog::Erase(uint32_t row) {
  const size_t mask = table_.size() - 1;
  size_t i = HomeOfEntry(TagOf(hashes_[row])) & mask;
  while ((table_[i] & kRowMask) != uint64_t{row} + 1) i = (i + 1) & mask;
  // Backward-shift deletion: move later entries of the probe run into the gap
  // when their home slot does not lie (cyclically) between the gap and them.
  for (size_t j = (i + 1) & mask; table_[j] != 0; j = (j + 1) & mask) {
    size_t home = HomeOfEntry(table_[j]) & mask;
    bool home_in_gap_to_j = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (home_in_gap_to_j) continue;
    table_[i] = table_[j];
    i = j;
  }
  table_[i] = 0;
}

std::pair<uint32_t, uint32_t> ChangeLog::Store(ByteView b) {
  if (blocks_.empty() || blocks_.back().capacity() - blocks_.back().size() < b.size()) {
    // A small document holds little, a large one takes whole huge pages.
    size_t size = blocks_.empty() ? kFirstBlock : NextBlock(blocks_.back().capacity(), 1);
    blocks_.emplace_back();
    blocks_.back().reserve(std::max(size, b.size()));
  }
  Block& block = blocks_.back();
  uint32_t offset = static_cast<uint32_t>(block.size());
  block.insert(block.end(), b.begin(), b.end());
  return {static_cast<uint32_t>(blocks_.size() - 1), offset};
}

uint32_t ChangeLog::Append(const StoredChange& sc, uint32_t actor) {
  dep_scratch_.clear();
  for (const ChangeHash& d : sc.change.deps) dep_scratch_.push_back(*Find(d));
  const Change& c = sc.change;
  return Append(sc.bytes, sc.hash, actor, c.seq, c.start_op, c.num_ops, c.time, c.empty_message,
                dep_scratch_);
}

uint32_t ChangeLog::Append(ByteView chunk, const ChangeHash& hash, uint32_t actor, uint64_t seq,
                           uint64_t start_op, uint64_t num_ops, int64_t time, bool empty_message,
                           std::span<const uint32_t> dep_rows) {
  const uint32_t i = static_cast<uint32_t>(rows_.size());
  Row row{};
  row.actor = actor;
  row.seq = static_cast<uint32_t>(seq);
  row.max_op = static_cast<uint32_t>(start_op + num_ops - 1);
  row.num_ops = static_cast<uint32_t>(num_ops);
  row.deps = static_cast<uint32_t>(deps_.size());
  row.time = time;
  row.empty_message = empty_message;
  deps_.insert(deps_.end(), dep_rows.begin(), dep_rows.end());
  rows_.push_back(row);
  hashes_.push_back(hash);

  // Keep only the tail if the chunk is exactly what the row rebuilds.
  constexpr uint64_t k32 = std::numeric_limits<uint32_t>::max();
  bool fits = seq <= k32 && num_ops <= k32 && start_op + num_ops - 1 <= k32 && start_op >= 1;
  std::optional<size_t> tail = fits ? TailOf(chunk) : std::nullopt;
  ByteView keep = chunk;
  if (tail) {
    // The tail would be copied as it is: comparing the header is enough.
    WriteHeader(i, chunk.size() - *tail, scratch_);
    if (scratch_.size() == *tail && std::equal(scratch_.begin(), scratch_.end(), chunk.begin()))
      keep = chunk.subspan(*tail);
  }
  Row& stored = rows_.back();
  stored.whole = keep.size() == chunk.size();
  stored.length = static_cast<uint32_t>(keep.size());
  std::tie(stored.block, stored.offset) = Store(keep);
  Insert(i);
  return i;
}

void ChangeLog::Truncate(size_t n) {
  if (n >= rows_.size()) return;
  for (size_t i = rows_.size(); i > n; --i) Erase(static_cast<uint32_t>(i - 1));
  const Row& first = rows_[n];
  blocks_.resize(first.block + 1);
  blocks_[first.block].resize(first.offset);
  deps_.resize(first.deps);
  rows_.Truncate(n);
  hashes_.Truncate(n);
}

size_t ChangeLog::MemoryUsage() const {
  size_t n =
      rows_.MemoryUsage() + hashes_.MemoryUsage() + deps_.capacity() * 4 + table_.capacity() * 8;
  for (const Block& b : blocks_) n += b.capacity();
  return n;
}

}  // namespace etherply::automerge
