// The stored form of ops inside a document: slots of ops per map key or list
// element. Internal to src/automerge/.
#pragma once

#include <algorithm>
#include <vector>

#include "automerge/types.h"

namespace etherply::automerge {

// One op as the document keeps it. Its object and key are where it is stored.
// OpIds here carry indices into the document's actor table.
// The fields are ordered for size (88 bytes): slots hold one Op per value.
struct Op {
  OpId id;
  uint32_t blockers = 0;   // successors that hide it: every successor but increments
  Action action = Action::kSet;
  ScalarValue value;       // the value of a set or mark; the amount of an increment
  std::vector<OpId> succ;  // later ops that named this one as pred
  int64_t inc_total = 0;   // the sum of the increments in succ (counters)
};
static_assert(sizeof(Op) <= 88, "an op fits a 96-byte heap chunk");

// Lamport order of op IDs: counter, then actor bytes. The document keeps the
// rank of each actor in byte order so that comparing is two integer compares.
struct OpOrder {
  const std::vector<uint32_t>* rank;
  bool operator()(const OpId& a, const OpId& b) const {
    if (a.counter != b.counter) return a.counter < b.counter;
    return (*rank)[a.actor] < (*rank)[b.actor];
  }
};

// All ops at one map key or one list element. `live` holds the ops that are
// not hidden by a later op, in Lamport order (the last one wins); `hidden`
// holds overwritten ops and increments, in no particular order.
struct Slot {
  std::vector<Op> live;
  std::vector<Op> hidden;

  bool empty() const { return live.empty() && hidden.empty(); }
  const Op* Winner() const { return live.empty() ? nullptr : &live.back(); }
  Op* Find(const OpId& id) {
    for (Op& op : live)
      if (op.id == id) return &op;
    for (Op& op : hidden)
      if (op.id == id) return &op;
    return nullptr;
  }
  void InsertLive(Op op, const OpOrder& less) {
    auto at = std::upper_bound(live.begin(), live.end(), op.id,
                               [&](const OpId& id, const Op& o) { return less(id, o.id); });
    live.insert(at, std::move(op));
  }
};

// A list or text element: its insert op's ID, the element it was inserted
// after (its RGA parent, which a saved document records as the insert op's
// key), and the ops stored at it (the insert op itself and later sets and
// increments). The parent and the mark flag share 8 bytes so that an element
// stays 64 bytes: sequences hold one per character.
struct Element {
  OpId id;
  uint32_t origin_counter = 0;   // counter 0: inserted at the head
  uint32_t origin_actor : 31 = 0;
  bool mark : 1 = false;  // a rich-text mark boundary: never visible
  Slot slot;

  OpId origin() const { return OpId{origin_counter, origin_actor}; }
  bool visible() const { return !mark && !slot.live.empty(); }
};
static_assert(sizeof(Element) == 64, "an element is one cache line");

}  // namespace etherply::automerge
