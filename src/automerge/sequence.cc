#include "automerge/sequence.h"

#include <cassert>

namespace etherply::automerge {

Sequence::Sequence() {
  blocks_.push_back(std::make_unique<Block>());
  RebuildFenwick();
}

std::optional<Sequence::Pos> Sequence::Find(const OpId& id) const {
  auto it = where_.find(id);
  if (it == where_.end()) return std::nullopt;
  const Block* b = it->second;
  for (uint32_t i = 0; i < b->elems.size(); ++i)
    if (b->elems[i].id == id) return Pos{b->index, i};
  assert(false && "index out of step with blocks");
  return std::nullopt;
}

Sequence::Pos Sequence::NthVisible(size_t n) const {
  assert(n < visible_);
  // Fenwick descent: the last block whose prefix sum is <= n.
  size_t pos = 0;
  size_t step = 1;
  while (step * 2 <= blocks_.size()) step *= 2;
  int64_t rest = static_cast<int64_t>(n);
  for (; step > 0; step /= 2) {
    if (pos + step <= blocks_.size() && fenwick_[pos + step] <= rest) {
      pos += step;
      rest -= fenwick_[pos];
    }
  }
  const Block& b = *blocks_[pos];
  for (uint32_t i = 0; i < b.elems.size(); ++i) {
    if (b.elems[i].visible()) {
      if (rest == 0) return Pos{static_cast<uint32_t>(pos), i};
      --rest;
    }
  }
  assert(false && "visible counts out of step");
  return Pos{0, 0};
}

size_t Sequence::VisibleBefore(Pos p) const {
  int64_t sum = 0;
  for (size_t i = p.block; i > 0; i -= i & (~i + 1)) sum += fenwick_[i];
  const Block& b = *blocks_[p.block];
  for (uint32_t i = 0; i < p.offset; ++i) sum += b.elems[i].visible();
  return static_cast<size_t>(sum);
}

Status Sequence::Insert(const OpId& after, Element e, const OpOrder& less) {
  Pos p{0, 0};
  if (after.counter != 0) {
    auto at = Find(after);
    if (!at) return Status::Corruption("insert after an element that does not exist");
    p = {at->block, at->offset + 1};
  }
  // Skip the elements that sort before the new one: those with greater IDs.
  while (true) {
    while (p.offset == blocks_[p.block]->elems.size() && p.block + 1 < blocks_.size())
      p = {p.block + 1, 0};
    const Block& b = *blocks_[p.block];
    if (p.offset == b.elems.size() || less(b.elems[p.offset].id, e.id)) break;
    ++p.offset;
  }
  Block& b = *blocks_[p.block];
  bool vis = e.visible();
  where_[e.id] = &b;
  b.elems.insert(b.elems.begin() + p.offset, std::move(e));
  if (vis) {
    ++b.visible;
    ++visible_;
    FenwickAdd(p.block, 1);
  }
  if (b.elems.size() > kMaxBlock) Split(p.block);
  return Status::Ok();
}

void Sequence::Remove(const OpId& id) {
  auto p = Find(id);
  if (!p) return;
  Block& b = *blocks_[p->block];
  if (b.elems[p->offset].visible()) {
    --b.visible;
    --visible_;
    FenwickAdd(p->block, -1);
  }
  b.elems.erase(b.elems.begin() + p->offset);
  where_.erase(id);
}

void Sequence::Refresh(Pos p, bool was_visible) {
  bool now = At(p).visible();
  if (now == was_visible) return;
  int delta = now ? 1 : -1;
  blocks_[p.block]->visible += delta;
  visible_ += delta;
  FenwickAdd(p.block, delta);
}

void Sequence::FenwickAdd(size_t block, int64_t delta) {
  for (size_t i = block + 1; i < fenwick_.size(); i += i & (~i + 1)) fenwick_[i] += delta;
}

void Sequence::RebuildFenwick() {
  fenwick_.assign(blocks_.size() + 1, 0);
  for (size_t i = 1; i <= blocks_.size(); ++i) {
    fenwick_[i] += blocks_[i - 1]->visible;
    size_t parent = i + (i & (~i + 1));
    if (parent <= blocks_.size()) fenwick_[parent] += fenwick_[i];
  }
}

void Sequence::Split(size_t block) {
  Block& b = *blocks_[block];
  auto nb = std::make_unique<Block>();
  size_t half = b.elems.size() / 2;
  nb->elems.assign(std::make_move_iterator(b.elems.begin() + half),
                   std::make_move_iterator(b.elems.end()));
  b.elems.resize(half);
  for (const Element& e : nb->elems) {
    where_[e.id] = nb.get();
    nb->visible += e.visible();
  }
  b.visible -= nb->visible;
  blocks_.insert(blocks_.begin() + block + 1, std::move(nb));
  for (size_t i = block + 1; i < blocks_.size(); ++i) blocks_[i]->index = static_cast<uint32_t>(i);
  RebuildFenwick();
}

}  // namespace etherply::automerge
