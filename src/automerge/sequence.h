// The elements of a list or text object in document (RGA) order.
//
// Two levels: elements live in blocks of at most kMaxBlock, blocks in chunks
// of at most kMaxChunk, and each block and chunk keeps its count of visible
// elements. Finding the n-th visible element walks the chunks, then one
// chunk's blocks, then one block: O(n / (kMaxBlock·kMaxChunk) + kMaxChunk +
// kMaxBlock). A hash index finds an element's block by ID. Splitting a full
// block costs O(kMaxChunk), a full chunk O(chunks): neither grows with the
// sequence the way renumbering every block would.
//
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
 private:
  struct Chunk;
  struct Block {
    std::vector<Element> elems;
    uint32_t visible = 0;
    Chunk* chunk = nullptr;
    uint32_t index = 0;  // in chunk->blocks
  };
  struct Chunk {
    std::vector<std::unique_ptr<Block>> blocks;  // never empty
    size_t visible = 0;
    uint32_t index = 0;  // in chunks_
  };

 public:
  static constexpr size_t kMaxBlock = 64;
  static constexpr size_t kMaxChunk = 128;

  struct Pos {
    Block* block;
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
  Element& At(Pos p) { return p.block->elems[p.offset]; }
  const Element& At(Pos p) const { return p.block->elems[p.offset]; }

  // Inserts e as a child of `after` (HEAD when after.counter is 0): right
  // after it, past any elements with greater IDs (the RGA rule), and records
  // `after` as e's origin. Fails with kCorruption when `after` is not an
  // element of this sequence.
  Status Insert(const OpId& after, Element e, const OpOrder& less);
  // Removes the element with this ID (used to roll back an insert).
  void Remove(const OpId& id);
  // Call after an element's slot changed; keeps the visible counts right.
  void Refresh(Pos p, bool was_visible);

  // Calls f(const Element&) for every element in document order.
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& c : chunks_)
      for (const auto& b : c->blocks)
        for (const Element& e : b->elems) f(e);
  }

 private:
  Block* Next(const Block* b) const;  // the block after b, or null
  void AddVisible(Block* b, int delta);
  void Split(Block* b);
  void SplitChunk(Chunk* c);

  std::vector<std::unique_ptr<Chunk>> chunks_;  // never empty
  std::unordered_map<OpId, Block*, OpIdHash> where_;
  size_t visible_ = 0;
};

}  // namespace etherply::automerge
