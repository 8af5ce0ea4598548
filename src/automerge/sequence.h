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

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "automerge/op_set.h"
#include "base/huge_pages.h"
#include "base/status.h"

namespace etherply::automerge {

// Where each element is: an open-addressing hash table from element ID to
// its block (16 bytes a slot, at most 3/4 full), with backward-shift
// deletion. An element ID's counter is never 0, so key 0 marks a free slot.
// A large table lives in huge pages (base/huge_pages.h).
class BlockIndex {
 public:
  template <typename Block>
  Block* Find(const OpId& id) const {
    return static_cast<Block*>(Get(Key(id)));
  }
  void Set(const OpId& id, void* block);
  void Erase(const OpId& id);
  // Makes room for n entries in all: adding up to n does not grow the table.
  void Reserve(size_t n);
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }  // slots, used and free

 private:
  struct Slot {
    uint64_t key;
    void* value;
  };
  static uint64_t Key(const OpId& id) { return uint64_t{id.counter} << 32 | id.actor; }
  // IDs that differ only in the counter's low 3 bits share a group of 8
  // adjacent slots (two cache lines): a typed run of characters, and the
  // elements a split moves, are mostly consecutive counters of one actor.
  size_t Home(uint64_t key) const {
    uint64_t group = (key & ~(uint64_t{7} << 32)) * 0x9E3779B97F4A7C15ull;
    return ((group >> shift_) & ~size_t{7}) | ((key >> 32) & 7);
  }
  void* Get(uint64_t key) const;
  void Rehash(size_t slots);  // a power of two, more than size_ * 4 / 3

  std::vector<Slot, HugePageAllocator<Slot>> slots_;  // a power of two, or empty
  size_t size_ = 0;
  int shift_ = 64;
};

class Sequence {
 private:
  // Where the blocks of a sequence built by Append keep their elements:
  // room for kMaxBlock elements at a time, carved from slabs that double up
  // to 2 MiB, so that a large loaded sequence lies in huge pages (page
  // faults were a fifth of loading a large text) while a small one takes a
  // few kilobytes. Room given back is taken again first; the slabs are
  // freed with the sequence.
  class Slabs {
   public:
    Slabs() = default;
    Slabs(const Slabs&) = delete;
    Slabs& operator=(const Slabs&) = delete;
    ~Slabs();
    Element* Take();
    // Takes back room from Take; false (doing nothing) for other memory.
    bool GiveBack(Element* p);

   private:
    struct Slab {
      Element* data;
      size_t blocks;
    };
    std::vector<Slab> slabs_;
    size_t used_ = 0;             // blocks taken from the last slab
    std::vector<Element*> free_;  // room given back
  };
  // A block's allocator: allocations of kMaxBlock elements from the slabs
  // when the block has them, anything else from the heap.
  struct ElementAllocator {
    using value_type = Element;
    template <typename U>
    struct rebind {  // only ever to Element
      using other = ElementAllocator;
    };
    Slabs* slabs = nullptr;
    Element* allocate(size_t n);
    void deallocate(Element* p, size_t n);
    bool operator==(const ElementAllocator& o) const { return slabs == o.slabs; }
  };

  struct Chunk;
  struct Block {
    Block() = default;
    explicit Block(Slabs* slabs) : elems(ElementAllocator{slabs}) {}
    std::vector<Element, ElementAllocator> elems;
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
  Sequence& operator=(Sequence&& other) noexcept;

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
  // Building a sequence in document order (loading a document): Append puts
  // e, its origin set, after the last element, and IndexAppended indexes
  // every element at once, sized for them. Until then the appended elements
  // cannot be found by ID: nothing but Append and ForEach may be used.
  void Append(Element e);
  void IndexAppended();
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
  // Puts nb right after b (in b's chunk, which may then split); returns it.
  Block* AddBlockAfter(Block* b, std::unique_ptr<Block> nb);
  void SplitChunk(Chunk* c);

  // Destroyed after the blocks, whose elements may live in them.
  std::unique_ptr<Slabs> slabs_;
  std::vector<std::unique_ptr<Chunk>> chunks_;  // never empty
  BlockIndex where_;
  size_t visible_ = 0;
};

}  // namespace etherply::automerge
