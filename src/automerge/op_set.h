// The stored form of ops inside a document: slots of ops per map key or list
// element. Internal to src/automerge/.
#pragma once

#include <memory>
#include <new>
#include <span>
#include <vector>

#include "automerge/packed_value.h"
#include "automerge/types.h"

namespace etherply::automerge {

// One op as the document keeps it. Its object and key are where it is stored.
// OpIds here carry indices into the document's actor table.
//
// 48 bytes: the value packed into 16 (packed_value.h); the first successor
// held inline, since nearly every op has at most one (the op that deleted or
// overwrote it); further successors and a counter's increment total in a
// heap block only ops that need them have.
struct Op {
  OpId id;
  PackedValue value;       // the value of a set or mark; the amount of an increment
  uint32_t blockers = 0;   // successors that hide it: every successor but increments
  Action action = Action::kSet;

  Op() = default;
  Op(OpId id, Action action, PackedValue value)
      : id(id), value(std::move(value)), action(action) {}
  Op(Op&&) noexcept = default;
  Op& operator=(Op&&) noexcept = default;

  // The later ops that named this one as pred, in the order added.
  size_t succ_count() const { return succ0_.is_root() ? 0 : 1 + (extra_ ? extra_->more.size() : 0); }
  template <typename F>
  void ForEachSucc(F&& f) const {
    if (succ0_.is_root()) return;
    f(succ0_);
    if (extra_)
      for (const OpId& s : extra_->more) f(s);
  }
  bool HasSucc(const OpId& s) const;
  void AddSucc(const OpId& s);
  // Removes the last occurrence of s (undoing the last AddSucc(s)).
  void RemoveSucc(const OpId& s);

  // The sum of the increments in succ (counters).
  int64_t inc_total() const { return extra_ ? extra_->inc_total : 0; }
  void AddToIncTotal(int64_t amount);

 private:
  struct Extra {
    std::vector<OpId> more;  // successors after the first
    int64_t inc_total = 0;
  };
  Extra& extra();

  OpId succ0_;  // the first successor; counter 0: none
  std::unique_ptr<Extra> extra_;
};
static_assert(sizeof(Op) == 48);

// Whether a successor with this action adds to `target` rather than hiding
// it: an increment of a counter does (as the reference's), every other
// successor hides its pred.
inline bool AddsTo(const Op& target, Action successor) {
  return successor == Action::kIncrement && target.action == Action::kSet &&
         target.value.is_counter();
}

// Lamport order of op IDs: counter, then actor bytes. The document keeps the
// rank of each actor in byte order so that comparing is two integer compares.
struct OpOrder {
  const std::vector<uint32_t>* rank;
  bool operator()(const OpId& a, const OpId& b) const {
    if (a.counter != b.counter) return a.counter < b.counter;
    return (*rank)[a.actor] < (*rank)[b.actor];
  }
};

// All ops at one map key or one list element: the ones hidden by a later op
// (overwritten ops and increments, in no particular order), then the live
// ones, not hidden by any, in Lamport order (the last one wins).
//
// One op (a list element's insert, a key set once) is held inline; two or
// more live in a heap array. Op pointers are valid until the next change to
// the slot.
class Slot {
 public:
  Slot() {}
  // Inline: sequences move elements, and so slots, on every insert.
  ~Slot() {
    if (size_ == 1) {
      one_.~Op();
    } else if (size_ > 1) {
      FreeHeap();
    }
  }
  Slot(Slot&& other) noexcept : size_(other.size_), live_(other.live_) {
    if (size_ == 1) {
      new (&one_) Op(std::move(other.one_));
      other.one_.~Op();
    } else if (size_ > 1) {
      heap_ = other.heap_;
    }
    other.size_ = other.live_ = 0;
  }
  Slot& operator=(Slot&& other) noexcept {
    if (this != &other) {
      this->~Slot();
      new (this) Slot(std::move(other));
    }
    return *this;
  }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  std::span<Op> live() { return {data() + (size_ - live_), live_}; }
  std::span<const Op> live() const { return {data() + (size_ - live_), live_}; }
  std::span<Op> hidden() { return {data(), size_ - live_}; }
  std::span<const Op> hidden() const { return {data(), size_ - live_}; }
  std::span<const Op> all() const { return {data(), size_}; }
  const Op* Winner() const { return live_ == 0 ? nullptr : data() + size_ - 1; }

  // The op with this ID, if here: a binary search among the live ones (an
  // op with many preds, as a delete of many conflicting values, finds each
  // in log time), then the hidden ones, newest hidden first.
  Op* Find(const OpId& id, const OpOrder& less);
  bool IsLive(const Op* op) const { return op >= data() + (size_ - live_); }

  void InsertLive(Op op, const OpOrder& less);
  void AddHidden(Op op);
  // Moves a live op to the hidden ones, or a hidden one back among the live.
  void Hide(Op* live_op);
  void Unhide(Op* hidden_op, const OpOrder& less);
  void Erase(Op* op);

 private:
  bool inline_storage() const { return size_ <= 1; }
  Op* data() { return inline_storage() ? &one_ : heap_.ops; }
  const Op* data() const { return inline_storage() ? &one_ : heap_.ops; }
  // Inserts op at index i of the array (shifting the rest right).
  void InsertAt(size_t i, Op op);
  void FreeHeap();

  // Inline while size_ <= 1 (one_ constructed iff size_ == 1), else a heap
  // array of heap_.cap ops of which size_ are constructed.
  union {
    Op one_;
    struct {
      Op* ops;
      uint32_t cap;
    } heap_;
  };
  uint32_t size_ = 0;
  uint32_t live_ = 0;
};
static_assert(sizeof(Slot) == 56);

// A list or text element: its insert op's ID, the element it was inserted
// after (its RGA parent, which a saved document records as the insert op's
// key), and the ops stored at it (the insert op itself and later sets and
// increments). The parent and the mark flag share 8 bytes: sequences hold an
// element per character, 72 bytes with its insert op inline.
struct Element {
  OpId id;
  uint32_t origin_counter = 0;   // counter 0: inserted at the head
  uint32_t origin_actor : 31 = 0;
  bool mark : 1 = false;  // a rich-text mark boundary: never visible
  Slot slot;

  OpId origin() const { return OpId{origin_counter, origin_actor}; }
  bool visible() const { return !mark && !slot.live().empty(); }
};
static_assert(sizeof(Element) == 72);

}  // namespace etherply::automerge
