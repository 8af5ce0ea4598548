// The elements of a list or text object in document (RGA) order.
//
// Elements live in blocks of at most kMaxBlock; a Fenwick tree over the
// blocks' visible counts finds the n-th visible element in O(log blocks +
// kMaxBlock), and a hash index finds an element by ID in O(kMaxBlock).
// Positions (Pos) are valid until the next Insert or Remove.
//
// Thread-safety: none; owned by one Document.
#pragma once

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "automerge/op_set.h"
#include "base/status.h"

namespace etherply::automerge {

class Sequence {
 public:
  static constexpr size_t kMaxBlock = 64;

  struct Pos {
    uint32_t block;
    uint32_t offset;
  };

  Sequence();
  Sequence(Sequence&&) = default;
  Sequence& operator=(Sequence&&) = default;

  size_t visible() const { return visible_; }
  size_t size() const { return where_.size(); }

  std::optional<Pos> Find(const OpId& id) const;
  // The n-th visible element; n < visible().
  Pos NthVisible(size_t n) const;
  // How many visible elements come before p.
  size_t VisibleBefore(Pos p) const;
  Element& At(Pos p) { return blocks_[p.block]->elems[p.offset]; }
  const Element& At(Pos p) const { return blocks_[p.block]->elems[p.offset]; }

  // Inserts e as a child of `after` (HEAD when after.counter is 0): right
  // after it, past any elements with greater IDs (the RGA rule). Fails with
  // kCorruption when `after` is not an element of this sequence.
  Status Insert(const OpId& after, Element e, const OpOrder& less);
  // Removes the element with this ID (used to roll back an insert).
  void Remove(const OpId& id);
  // Call after an element's slot changed; keeps the visible counts right.
  void Refresh(Pos p, bool was_visible);

  // Calls f(const Element&) for every element in document order.
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& b : blocks_)
      for (const Element& e : b->elems) f(e);
  }

 private:
  struct Block {
    std::vector<Element> elems;
    uint32_t visible = 0;
    uint32_t index = 0;
  };

  void FenwickAdd(size_t block, int64_t delta);
  void RebuildFenwick();
  void Split(size_t block);

  std::vector<std::unique_ptr<Block>> blocks_;  // never empty
  std::vector<int64_t> fenwick_;                // 1-based, over blocks_[i]->visible
  std::unordered_map<OpId, Block*, OpIdHash> where_;
  size_t visible_ = 0;
};

}  // namespace etherply::automerge
