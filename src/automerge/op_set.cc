#include "automerge/op_set.h"

#include <algorithm>
#include <cassert>
#include <new>

namespace etherply::automerge {

// --- Op ------------------------------------------------------------------------

Op::Extra& Op::extra() {
  if (!extra_) extra_ = std::make_unique<Extra>();
  return *extra_;
}

bool Op::HasSucc(const OpId& s) const {
  if (succ0_.is_root()) return false;
  if (succ0_ == s) return true;
  return extra_ && std::find(extra_->more.begin(), extra_->more.end(), s) != extra_->more.end();
}

void Op::AddSucc(const OpId& s) {
  if (succ0_.is_root()) {
    succ0_ = s;
  } else {
    extra().more.push_back(s);
  }
}

void Op::RemoveSucc(const OpId& s) {
  if (extra_) {
    auto& more = extra_->more;
    auto it = std::find(more.rbegin(), more.rend(), s);
    if (it != more.rend()) {
      more.erase(std::next(it).base());
      return;
    }
  }
  if (succ0_ != s) return;
  if (extra_ && !extra_->more.empty()) {
    succ0_ = extra_->more.front();
    extra_->more.erase(extra_->more.begin());
  } else {
    succ0_ = OpId{};
  }
}

void Op::AddToIncTotal(int64_t amount) { extra().inc_total += amount; }

// --- Slot ----------------------------------------------------------------------

void Slot::FreeHeap() {
  std::destroy_n(heap_.ops, size_);
  ::operator delete(heap_.ops);
}

Op* Slot::Find(const OpId& id, const OpOrder& less) {
  std::span<Op> l = live();
  auto it = std::lower_bound(l.begin(), l.end(), id,
                             [&](const Op& o, const OpId& x) { return less(o.id, x); });
  if (it != l.end() && it->id == id) return &*it;
  std::span<Op> h = hidden();
  for (size_t i = h.size(); i-- > 0;)
    if (h[i].id == id) return &h[i];
  return nullptr;
}

void Slot::InsertAt(size_t i, Op op) {
  assert(i <= size_);
  if (size_ == 0) {
    new (&one_) Op(std::move(op));
    size_ = 1;
    return;
  }
  if (size_ == 1 || size_ == heap_.cap) {
    // Grow into a new array, leaving a gap at i.
    uint32_t cap = size_ == 1 ? 2 : heap_.cap * 2;
    Op* fresh = static_cast<Op*>(::operator new(sizeof(Op) * cap));
    Op* old = data();
    std::uninitialized_move_n(old, i, fresh);
    new (fresh + i) Op(std::move(op));
    std::uninitialized_move_n(old + i, size_ - i, fresh + i + 1);
    std::destroy_n(old, size_);
    if (size_ > 1) ::operator delete(old);
    heap_.ops = fresh;
    heap_.cap = cap;
    ++size_;
    return;
  }
  Op* d = heap_.ops;
  if (i == size_) {
    new (d + size_) Op(std::move(op));
  } else {
    new (d + size_) Op(std::move(d[size_ - 1]));
    std::move_backward(d + i, d + size_ - 1, d + size_);
    d[i] = std::move(op);
  }
  ++size_;
}

void Slot::InsertLive(Op op, const OpOrder& less) {
  std::span<Op> l = live();
  size_t at = std::upper_bound(l.begin(), l.end(), op.id,
                               [&](const OpId& id, const Op& o) { return less(id, o.id); }) -
              l.begin();
  InsertAt(size_ - live_ + at, std::move(op));
  ++live_;
}

void Slot::AddHidden(Op op) { InsertAt(size_ - live_, std::move(op)); }

void Slot::Hide(Op* op) {
  assert(IsLive(op));
  Op* first_live = data() + (size_ - live_);
  std::rotate(first_live, op, op + 1);  // op becomes the first live one
  --live_;                              // and so the last hidden one
}

void Slot::Unhide(Op* op, const OpOrder& less) {
  assert(!IsLive(op));
  Op* d = data();
  Op* last_hidden = d + (size_ - live_) - 1;
  std::rotate(op, op + 1, last_hidden + 1);  // op becomes the last hidden one
  ++live_;                                   // and so the first live one
  Op* first = last_hidden;
  Op* end = d + size_;
  Op* at = std::upper_bound(first + 1, end, first->id,
                            [&](const OpId& id, const Op& o) { return less(id, o.id); });
  std::rotate(first, first + 1, at);
}

void Slot::Erase(Op* op) {
  Op* d = data();
  size_t i = op - d;
  assert(i < size_);
  if (IsLive(op)) --live_;
  if (size_ == 1) {
    one_.~Op();
    size_ = 0;
    return;
  }
  std::move(d + i + 1, d + size_, d + i);
  std::destroy_at(d + size_ - 1);
  if (--size_ == 1) {  // back inline
    Op last = std::move(d[0]);
    std::destroy_at(d);
    ::operator delete(d);
    new (&one_) Op(std::move(last));
  }
}

}  // namespace etherply::automerge
