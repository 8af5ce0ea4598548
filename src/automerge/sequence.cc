#include "automerge/sequence.h"

#include <bit>
#include <cassert>

namespace etherply::automerge {

void* BlockIndex::Get(uint64_t key) const {
  if (slots_.empty()) return nullptr;
  const size_t mask = slots_.size() - 1;
  for (size_t i = Home(key);; i = (i + 1) & mask) {
    if (slots_[i].key == key) return slots_[i].value;
    if (slots_[i].key == 0) return nullptr;
  }
}

void BlockIndex::Rehash(size_t slots) {
  std::vector<Slot, HugePageAllocator<Slot>> old = std::move(slots_);
  slots_.assign(slots, Slot{0, nullptr});
  shift_ = 64 - std::countr_zero(slots);
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != 0)
      Set(OpId{static_cast<uint32_t>(s.key >> 32), static_cast<uint32_t>(s.key)}, s.value);
}
void BlockIndex::Reserve(size_t n) {
  size_t slots = std::max<size_t>(slots_.size(), 8);
  while (n * 4 > slots * 3) slots *= 2;
  if (slots != slots_.size()) Rehash(slots);
}

void BlockIndex::Set(const OpId& id, void* block) {
  const uint64_t key = Key(id);
  if ((size_ + 1) * 4 > slots_.size() * 3) Rehash(slots_.empty() ? 8 : slots_.size() * 2);
  const size_t mask = slots_.size() - 1;
  size_t i = Home(key);
  while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask;
  if (slots_[i].key == 0) ++size_;
  slots_[i] = Slot{key, block};
}

void BlockIndex::Erase(const OpId& id) {
  if (slots_.empty()) return;
  const uint64_t key = Key(id);
  const size_t mask = slots_.size() - 1;
  size_t i = Home(key);
  while (slots_[i].key != key) {
    if (slots_[i].key == 0) return;
    i = (i + 1) & mask;
  }
  // Move later members of the probe run into the gap unless their home lies
  // cyclically in (gap, them].
  for (size_t j = (i + 1) & mask; slots_[j].key != 0; j = (j + 1) & mask) {
    size_t home = Home(slots_[j].key);
    bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = Slot{0, nullptr};
  --size_;
}

Sequence::Slabs::~Slabs() {
  for (const Slab& s : slabs_) FreeLarge(s.data, s.blocks * Sequence::kMaxBlock * sizeof(Element));
}

Element* Sequence::Slabs::Take() {
  if (!free_.empty()) {
    Element* p = free_.back();
    free_.pop_back();
    return p;
  }
  constexpr size_t kBlockBytes = kMaxBlock * sizeof(Element);
  if (slabs_.empty() || used_ == slabs_.back().blocks) {
    // Doubling, but from 1 MiB on straight to a whole huge page's worth
    // (base/huge_pages.h).
    size_t blocks = slabs_.empty() ? 1 : NextBlock(slabs_.back().blocks, kBlockBytes);
    void* p = AllocateLarge(blocks * kBlockBytes);
    if (!p) throw std::bad_alloc();
    slabs_.push_back(Slab{static_cast<Element*>(p), blocks});
    used_ = 0;
  }
  return slabs_.back().data + kMaxBlock * used_++;
}

bool Sequence::Slabs::GiveBack(Element* p) {
  for (const Slab& s : slabs_) {
    if (p >= s.data && p < s.data + s.blocks * kMaxBlock) {
      free_.push_back(p);
      return true;
    }
  }
  return false;
}

Element* Sequence::ElementAllocator::allocate(size_t n) {
  if (slabs && n == kMaxBlock) return slabs->Take();
  return std::allocator<Element>().allocate(n);
}

void Sequence::ElementAllocator::deallocate(Element* p, size_t n) {
  if (slabs && slabs->GiveBack(p)) return;
  std::allocator<Element>().deallocate(p, n);
}

Sequence& Sequence::operator=(Sequence&& other) noexcept {
  chunks_ = std::move(other.chunks_);  // the old blocks go before their slabs
  where_ = std::move(other.where_);
  visible_ = other.visible_;
  slabs_ = std::move(other.slabs_);
  return *this;
}

Sequence::Sequence() {
  auto c = std::make_unique<Chunk>();
  auto b = std::make_unique<Block>();
  b->chunk = c.get();
  c->blocks.push_back(std::move(b));
  chunks_.push_back(std::move(c));
}

std::optional<Sequence::Pos> Sequence::Find(const OpId& id) const {
  Block* b = where_.Find<Block>(id);
  if (!b) return std::nullopt;
  for (uint32_t i = 0; i < b->elems.size(); ++i)
    if (b->elems[i].id == id) return Pos{b, i};
  assert(false && "index out of step with blocks");
  return std::nullopt;
}

Sequence::Pos Sequence::NthVisible(size_t n) const {
  assert(n < visible_);
  for (const auto& c : chunks_) {
    if (n >= c->visible) {
      n -= c->visible;
      continue;
    }
    for (const auto& b : c->blocks) {
      if (n >= b->visible) {
        n -= b->visible;
        continue;
      }
      for (uint32_t i = 0; i < b->elems.size(); ++i) {
        if (!b->elems[i].visible()) continue;
        if (n == 0) return Pos{b.get(), i};
        --n;
      }
    }
  }
  assert(false && "visible counts out of step");
  return Pos{chunks_[0]->blocks[0].get(), 0};
}

size_t Sequence::VisibleBefore(Pos p) const {
  size_t sum = 0;
  const Chunk* c = p.block->chunk;
  for (uint32_t i = 0; i < c->index; ++i) sum += chunks_[i]->visible;
  for (uint32_t i = 0; i < p.block->index; ++i) sum += c->blocks[i]->visible;
  for (uint32_t i = 0; i < p.offset; ++i) sum += p.block->elems[i].visible();
  return sum;
}

Sequence::Block* Sequence::Next(const Block* b) const {
  const Chunk* c = b->chunk;
  if (b->index + 1 < c->blocks.size()) return c->blocks[b->index + 1].get();
  if (c->index + 1 < chunks_.size()) return chunks_[c->index + 1]->blocks[0].get();
  return nullptr;
}

Status Sequence::Insert(const OpId& after, Element e, const OpOrder& less) {
  Pos p{chunks_[0]->blocks[0].get(), 0};
  if (after.counter != 0) {
    auto at = Find(after);
    if (!at) return Status::Corruption("insert after an element that does not exist");
    p = {at->block, at->offset + 1};
  }
  // Skip the elements that sort before the new one: those with greater IDs.
  while (true) {
    while (p.offset == p.block->elems.size()) {
      Block* next = Next(p.block);
      if (!next) break;
      p = {next, 0};
    }
    if (p.offset == p.block->elems.size() || less(p.block->elems[p.offset].id, e.id)) break;
    ++p.offset;
  }
  e.origin_counter = after.counter;
  e.origin_actor = after.actor;
  Block* b = p.block;
  if (b->elems.size() >= kMaxBlock && p.offset == b->elems.size()) {
    // Typing at the end of a full block: start the next block with it, and
    // leave this one full, rather than split it into two halves that both
    // have to grow again (the common case: text is typed in runs).
    auto nb = std::make_unique<Block>();
    nb->elems.reserve(kMaxBlock);
    b = AddBlockAfter(b, std::move(nb));
    p.offset = 0;
  }
  bool vis = e.visible();
  where_.Set(e.id, b);
  // A full block takes one more element and is split: never let it double
  // its capacity for that one.
  if (b->elems.size() == b->elems.capacity() && b->elems.size() >= kMaxBlock)
    b->elems.reserve(kMaxBlock + 1);
  b->elems.insert(b->elems.begin() + p.offset, std::move(e));
  if (vis) AddVisible(b, 1);
  if (b->elems.size() > kMaxBlock) Split(b);
  return Status::Ok();
}

void Sequence::Append(Element e) {
  Block* b = chunks_.back()->blocks.back().get();
  if (b->elems.size() >= kMaxBlock) {
    if (!slabs_) slabs_ = std::make_unique<Slabs>();
    b = AddBlockAfter(b, std::make_unique<Block>(slabs_.get()));
  }
  if (b->elems.empty()) b->elems.reserve(kMaxBlock);
  bool vis = e.visible();
  b->elems.push_back(std::move(e));
  if (vis) AddVisible(b, 1);
}

void Sequence::IndexAppended() {
  size_t n = 0;
  for (const auto& c : chunks_)
    for (const auto& b : c->blocks) n += b->elems.size();
  where_.Reserve(n);
  for (const auto& c : chunks_)
    for (const auto& b : c->blocks)
      for (const Element& e : b->elems) where_.Set(e.id, b.get());
}

void Sequence::Remove(const OpId& id) {
  auto p = Find(id);
  if (!p) return;
  if (At(*p).visible()) AddVisible(p->block, -1);
  p->block->elems.erase(p->block->elems.begin() + p->offset);
  where_.Erase(id);
}

void Sequence::Refresh(Pos p, bool was_visible) {
  bool now = At(p).visible();
  if (now != was_visible) AddVisible(p.block, now ? 1 : -1);
}

void Sequence::AddVisible(Block* b, int delta) {
  b->visible += delta;
  b->chunk->visible += delta;
  visible_ += delta;
}

void Sequence::Split(Block* b) {
  auto nb = std::make_unique<Block>();
  size_t half = b->elems.size() / 2;
  nb->elems.assign(std::make_move_iterator(b->elems.begin() + half),
                   std::make_move_iterator(b->elems.end()));
  b->elems.resize(half);
  b->elems.shrink_to_fit();  // half of it would stay empty until it fills again
  for (const Element& e : nb->elems) {
    where_.Set(e.id, nb.get());
    nb->visible += e.visible();
  }
  b->visible -= nb->visible;
  AddBlockAfter(b, std::move(nb));
}

Sequence::Block* Sequence::AddBlockAfter(Block* b, std::unique_ptr<Block> nb) {
  Chunk* c = b->chunk;
  Block* added = nb.get();
  added->chunk = c;
  c->blocks.insert(c->blocks.begin() + b->index + 1, std::move(nb));
  for (size_t i = b->index + 1; i < c->blocks.size(); ++i)
    c->blocks[i]->index = static_cast<uint32_t>(i);
  if (c->blocks.size() > kMaxChunk) SplitChunk(c);
  return added;
}

void Sequence::SplitChunk(Chunk* c) {
  auto nc = std::make_unique<Chunk>();
  size_t half = c->blocks.size() / 2;
  nc->blocks.assign(std::make_move_iterator(c->blocks.begin() + half),
                    std::make_move_iterator(c->blocks.end()));
  c->blocks.resize(half);
  for (uint32_t i = 0; i < nc->blocks.size(); ++i) {
    nc->blocks[i]->chunk = nc.get();
    nc->blocks[i]->index = i;
    nc->visible += nc->blocks[i]->visible;
  }
  c->visible -= nc->visible;
  chunks_.insert(chunks_.begin() + c->index + 1, std::move(nc));
  for (size_t i = c->index + 1; i < chunks_.size(); ++i)
    chunks_[i]->index = static_cast<uint32_t>(i);
}

}  // namespace etherply::automerge
