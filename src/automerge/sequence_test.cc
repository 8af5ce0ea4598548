// The RGA sequence of list and text elements. Order: a new element goes right
// after the element it was inserted after, past any elements with greater IDs
// (so the children of one parent are sorted by ID descending and a tree walk
// gives document order, FORMAT.md §6.4). The block structure and the Fenwick
// tree over visible counts are checked against a plain vector model over
// thousands of random inserts, hides and removals.
#include "automerge/sequence.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

namespace etherply::automerge {
namespace {

// Actors 0..n-1 ranked in index order unless a test says otherwise.
struct Fixture {
  std::vector<uint32_t> rank = {0, 1, 2, 3, 4, 5, 6, 7};
  OpOrder less{&rank};
};

Element Visible(OpId id) {
  Element e{.id = id};
  std::vector<uint32_t> rank(8);
  e.slot.InsertLive(Op(id, Action::kSet, PackedValue(int64_t{1})), OpOrder{&rank});
  return e;
}

Element Mark(OpId id) {
  Element e{.id = id, .mark = true};
  std::vector<uint32_t> rank(8);
  e.slot.InsertLive(Op(id, Action::kMark, PackedValue()), OpOrder{&rank});
  return e;
}

std::vector<OpId> Order(const Sequence& s) {
  std::vector<OpId> out;
  s.ForEach([&](const Element& e) { out.push_back(e.id); });
  return out;
}

std::vector<OpId> VisibleOrder(const Sequence& s) {
  std::vector<OpId> out;
  s.ForEach([&](const Element& e) {
    if (e.visible()) out.push_back(e.id);
  });
  return out;
}

// Hides (or shows again) the element: moves its op between live and hidden,
// then tells the sequence, as the document does.
void SetVisible(Sequence& s, const OpId& id, bool visible) {
  auto p = s.Find(id);
  ASSERT_TRUE(p.has_value());
  Element& e = s.At(*p);
  bool was = e.visible();
  std::vector<uint32_t> rank(8);
  if (visible && e.slot.live().empty()) {
    e.slot.Unhide(&e.slot.hidden().back(), OpOrder{&rank});
  } else if (!visible && !e.slot.live().empty()) {
    e.slot.Hide(&e.slot.live().back());
  }
  s.Refresh(*p, was);
}

// Checks every position query against the expected visible order.
void ExpectPositions(const Sequence& s, const std::vector<OpId>& visible) {
  ASSERT_EQ(s.visible(), visible.size());
  for (size_t n = 0; n < visible.size(); ++n) {
    Sequence::Pos p = s.NthVisible(n);
    ASSERT_EQ(s.At(p).id, visible[n]) << "NthVisible(" << n << ")";
    ASSERT_EQ(s.VisibleBefore(p), n) << "VisibleBefore of the " << n << "th visible";
    auto f = s.Find(visible[n]);
    ASSERT_TRUE(f.has_value());
    ASSERT_EQ(f->block, p.block);
    ASSERT_EQ(f->offset, p.offset);
  }
}

// ---------------------------------------------------------------------------
// RGA order.

TEST(Sequence, StartsEmpty) {
  Sequence s;
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.visible(), 0u);
  EXPECT_FALSE(s.Find({1, 0}).has_value());
  EXPECT_TRUE(Order(s).empty());
}

TEST(Sequence, TypingInsertsAfterThePreviousElement) {
  Fixture f;
  Sequence s;
  OpId after{};
  std::vector<OpId> expected;
  for (uint32_t c = 1; c <= 10; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 0}), f.less).ok());
    after = {c, 0};
    expected.push_back(after);
  }
  EXPECT_EQ(Order(s), expected);
}

TEST(Sequence, InsertsAtHeadGoFirst) {
  Fixture f;
  Sequence s;
  for (uint32_t c = 1; c <= 5; ++c) ASSERT_TRUE(s.Insert({}, Visible({c, 0}), f.less).ok());
  // Each later insert at HEAD has a greater ID, so it sorts first.
  EXPECT_EQ(Order(s), (std::vector<OpId>{{5, 0}, {4, 0}, {3, 0}, {2, 0}, {1, 0}}));
}

TEST(Sequence, ChildrenOfOneParentAreSortedByIdDescending) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  // Children of (1,0) arriving in an arbitrary order.
  for (OpId c : {OpId{3, 1}, OpId{5, 0}, OpId{3, 0}, OpId{4, 2}, OpId{9, 1}})
    ASSERT_TRUE(s.Insert({1, 0}, Visible(c), f.less).ok());
  EXPECT_EQ(Order(s), (std::vector<OpId>{{1, 0}, {9, 1}, {5, 0}, {4, 2}, {3, 1}, {3, 0}}));
  // Each element remembers its parent (a saved document needs it).
  s.ForEach([](const Element& e) {
    OpId parent = e.id == OpId{1, 0} ? OpId{} : OpId{1, 0};
    EXPECT_EQ(e.origin(), parent) << e.id.counter;
  });
}

TEST(Sequence, OriginsSurviveBlockSplits) {
  Fixture f;
  Sequence s;
  OpId after{};
  for (uint32_t c = 1; c <= 3 * Sequence::kMaxBlock; ++c) {
    OpId id{c, c % 3 == 0 ? 0x7fffffffu : 1u};  // the greatest actor index an origin holds
    ASSERT_TRUE(s.Insert(after, Visible(id), f.less).ok());
    after = id;
  }
  OpId prev{};
  s.ForEach([&](const Element& e) {
    EXPECT_EQ(e.origin(), prev);
    prev = e.id;
  });
}

TEST(Sequence, ConcurrentInsertByAGreaterActorGoesFirst) {
  Fixture f;
  // Both actors insert after (1,0) with counter 2; actor 1 is greater.
  for (bool greater_first : {false, true}) {
    Sequence s;
    ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
    ASSERT_TRUE(s.Insert({1, 0}, Visible({5, 0}), f.less).ok());  // an older sibling
    OpId a{6, 0}, b{6, 1};
    if (greater_first) std::swap(a, b);
    ASSERT_TRUE(s.Insert({1, 0}, Visible(a), f.less).ok());
    ASSERT_TRUE(s.Insert({1, 0}, Visible(b), f.less).ok());
    EXPECT_EQ(Order(s), (std::vector<OpId>{{1, 0}, {6, 1}, {6, 0}, {5, 0}}));
  }
}

TEST(Sequence, ActorOrderComesFromTheRank) {
  // The same IDs, with actor 1 ranked below actor 0 (its bytes are smaller).
  std::vector<uint32_t> rank = {1, 0};
  OpOrder less{&rank};
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({3, 0}), less).ok());
  ASSERT_TRUE(s.Insert({}, Visible({3, 1}), less).ok());
  EXPECT_EQ(Order(s), (std::vector<OpId>{{3, 0}, {3, 1}}));
}

TEST(Sequence, InsertSkipsTheSubtreesOfGreaterSiblings) {
  Fixture f;
  Sequence s;
  // a(1) at HEAD; b(5) after a with a child c(6); then d(3) after a,
  // concurrent with b: d goes after b's whole subtree.
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  ASSERT_TRUE(s.Insert({1, 0}, Visible({5, 1}), f.less).ok());
  ASSERT_TRUE(s.Insert({5, 1}, Visible({6, 1}), f.less).ok());
  ASSERT_TRUE(s.Insert({1, 0}, Visible({3, 0}), f.less).ok());
  EXPECT_EQ(Order(s), (std::vector<OpId>{{1, 0}, {5, 1}, {6, 1}, {3, 0}}));
}

TEST(Sequence, InsertAfterAHiddenElementStillAnchors) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  ASSERT_TRUE(s.Insert({1, 0}, Visible({2, 0}), f.less).ok());
  SetVisible(s, {1, 0}, false);
  ASSERT_TRUE(s.Insert({1, 0}, Visible({3, 0}), f.less).ok());
  EXPECT_EQ(Order(s), (std::vector<OpId>{{1, 0}, {3, 0}, {2, 0}}));
  EXPECT_EQ(VisibleOrder(s), (std::vector<OpId>{{3, 0}, {2, 0}}));
}

TEST(Sequence, InsertAfterAMissingElementFails) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  Status st = s.Insert({7, 0}, Visible({8, 0}), f.less);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  // Nothing changed.
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.visible(), 1u);
  EXPECT_FALSE(s.Find({8, 0}).has_value());
  EXPECT_EQ(Order(s), (std::vector<OpId>{{1, 0}}));
}

TEST(Sequence, InsertAfterAnElementOfAnotherActorWithTheSameCounterFails) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  EXPECT_FALSE(s.Insert({1, 1}, Visible({2, 0}), f.less).ok());
  EXPECT_EQ(s.size(), 1u);
}

TEST(Sequence, InsertAfterARemovedElementFails) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  s.Remove({1, 0});
  EXPECT_FALSE(s.Insert({1, 0}, Visible({2, 0}), f.less).ok());
  EXPECT_EQ(s.size(), 0u);
}

TEST(Sequence, MarksAreNeverVisible) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  ASSERT_TRUE(s.Insert({1, 0}, Mark({2, 0}), f.less).ok());
  ASSERT_TRUE(s.Insert({2, 0}, Visible({3, 0}), f.less).ok());
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.visible(), 2u);
  ExpectPositions(s, {{1, 0}, {3, 0}});
  // A mark anchors inserts like any element.
  ASSERT_TRUE(s.Insert({2, 0}, Visible({4, 0}), f.less).ok());
  EXPECT_EQ(Order(s), (std::vector<OpId>{{1, 0}, {2, 0}, {4, 0}, {3, 0}}));
}

// ---------------------------------------------------------------------------
// Blocks.

TEST(Sequence, SplitsBlocksAndKeepsPositions) {
  Fixture f;
  Sequence s;
  std::vector<OpId> expected;
  OpId after{};
  const uint32_t n = Sequence::kMaxBlock * 10 + 7;
  for (uint32_t c = 1; c <= n; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 0}), f.less).ok());
    after = {c, 0};
    expected.push_back(after);
  }
  EXPECT_EQ(s.size(), n);
  EXPECT_EQ(Order(s), expected);
  ExpectPositions(s, expected);
  // More than one block is in use.
  EXPECT_NE(s.NthVisible(n - 1).block, s.NthVisible(0).block);
  // Offsets stay inside the block bound.
  for (size_t i = 0; i < n; ++i) EXPECT_LE(s.NthVisible(i).offset, Sequence::kMaxBlock);
}

TEST(Sequence, SplitsWhenInsertingInTheMiddleOfAFullBlock) {
  Fixture f;
  Sequence s;
  std::vector<OpId> expected;
  // Everything inserted at HEAD (each new element goes first), then a run
  // typed in the middle.
  for (uint32_t c = 1; c <= 100; ++c) {
    ASSERT_TRUE(s.Insert({}, Visible({c, 0}), f.less).ok());
    expected.insert(expected.begin(), OpId{c, 0});
  }
  OpId after{50, 0};
  auto at = std::find(expected.begin(), expected.end(), after) - expected.begin();
  for (uint32_t c = 101; c <= 300; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 1}), f.less).ok());
    expected.insert(expected.begin() + ++at, OpId{c, 1});
    after = {c, 1};
  }
  EXPECT_EQ(Order(s), expected);
  ExpectPositions(s, expected);
}

// ---------------------------------------------------------------------------
// Visibility and removal.

TEST(Sequence, RefreshKeepsVisibleCounts) {
  Fixture f;
  Sequence s;
  std::vector<OpId> all;
  OpId after{};
  for (uint32_t c = 1; c <= 200; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 0}), f.less).ok());
    after = {c, 0};
    all.push_back(after);
  }
  std::vector<OpId> visible;
  for (const OpId& id : all) {
    if (id.counter % 3 == 0) {
      SetVisible(s, id, false);
    } else {
      visible.push_back(id);
    }
  }
  EXPECT_EQ(s.size(), 200u);
  ExpectPositions(s, visible);
  // Refresh with no change in visibility changes nothing.
  auto p = s.Find({1, 0});
  s.Refresh(*p, true);
  ExpectPositions(s, visible);
  // Hidden elements come back.
  for (const OpId& id : all)
    if (id.counter % 3 == 0) SetVisible(s, id, true);
  ExpectPositions(s, all);
}

TEST(Sequence, VisibleBeforeAHiddenElement) {
  Fixture f;
  Sequence s;
  OpId after{};
  for (uint32_t c = 1; c <= 5; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 0}), f.less).ok());
    after = {c, 0};
  }
  SetVisible(s, {2, 0}, false);
  SetVisible(s, {3, 0}, false);
  EXPECT_EQ(s.VisibleBefore(*s.Find({1, 0})), 0u);
  EXPECT_EQ(s.VisibleBefore(*s.Find({3, 0})), 1u);
  EXPECT_EQ(s.VisibleBefore(*s.Find({4, 0})), 1u);
  EXPECT_EQ(s.VisibleBefore(*s.Find({5, 0})), 2u);
}

TEST(Sequence, InsertingAnInvisibleElement) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Element{.id = {1, 0}}, f.less).ok());  // no live op
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.visible(), 0u);
}

TEST(Sequence, RemoveTakesAnElementOut) {
  Fixture f;
  Sequence s;
  std::vector<OpId> expected;
  OpId after{};
  for (uint32_t c = 1; c <= 150; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 0}), f.less).ok());
    after = {c, 0};
    expected.push_back(after);
  }
  SetVisible(s, {10, 0}, false);
  // Remove from the front, the middle, the back, and a hidden one.
  for (uint32_t c : {1u, 75u, 150u, 10u, 64u, 65u}) {
    s.Remove({c, 0});
    expected.erase(std::find(expected.begin(), expected.end(), OpId{c, 0}));
    EXPECT_FALSE(s.Find({c, 0}).has_value());
  }
  EXPECT_EQ(s.size(), expected.size());
  EXPECT_EQ(Order(s), expected);
  ExpectPositions(s, expected);
}

TEST(Sequence, RemoveOfAMissingElementDoesNothing) {
  Fixture f;
  Sequence s;
  ASSERT_TRUE(s.Insert({}, Visible({1, 0}), f.less).ok());
  s.Remove({2, 0});
  s.Remove({});
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.visible(), 1u);
}

TEST(Sequence, RemoveEverythingThenInsertAgain) {
  Fixture f;
  Sequence s;
  OpId after{};
  for (uint32_t c = 1; c <= 300; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 0}), f.less).ok());
    after = {c, 0};
  }
  for (uint32_t c = 1; c <= 300; ++c) s.Remove({c, 0});
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.visible(), 0u);
  // Empty blocks may remain; inserting and finding must still work.
  std::vector<OpId> expected;
  after = {};
  for (uint32_t c = 301; c <= 400; ++c) {
    ASSERT_TRUE(s.Insert(after, Visible({c, 0}), f.less).ok());
    after = {c, 0};
    expected.push_back(after);
  }
  EXPECT_EQ(Order(s), expected);
  ExpectPositions(s, expected);
}

TEST(Sequence, RemoveUndoesAnInsert) {
  Fixture f;
  Sequence s;
  for (uint32_t c = 1; c <= 3; ++c) ASSERT_TRUE(s.Insert({}, Visible({c, 0}), f.less).ok());
  std::vector<OpId> before = Order(s);
  ASSERT_TRUE(s.Insert({2, 0}, Visible({4, 1}), f.less).ok());
  s.Remove({4, 1});
  EXPECT_EQ(Order(s), before);
  ExpectPositions(s, before);
}

// ---------------------------------------------------------------------------
// Against a model: thousands of random inserts, hides and removals.

// Document order by walking the tree of inserts: children of each parent
// sorted by ID descending, depth first (FORMAT.md §6.4).
std::vector<OpId> TreeOrder(const std::map<uint64_t, std::vector<OpId>>& children,
                            const OpOrder& less) {
  auto key = [](const OpId& id) { return uint64_t{id.counter} << 32 | id.actor; };
  std::vector<OpId> out;
  std::vector<OpId> stack;
  auto push_children = [&](const OpId& parent) {
    auto it = children.find(key(parent));
    if (it == children.end()) return;
    std::vector<OpId> kids = it->second;
    std::sort(kids.begin(), kids.end(), less);  // ascending: the greatest is popped first
    for (const OpId& k : kids) stack.push_back(k);
  };
  push_children(OpId{});
  while (!stack.empty()) {
    OpId id = stack.back();
    stack.pop_back();
    out.push_back(id);
    push_children(id);
  }
  return out;
}

TEST(Sequence, MatchesAModelOverRandomEdits) {
  std::vector<uint32_t> rank = {2, 0, 3, 1};  // actor bytes order differs from index order
  OpOrder less{&rank};
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    Sequence s;
    std::vector<OpId> model;  // document order
    std::vector<bool> shown;  // parallel to model
    std::map<uint64_t, std::vector<OpId>> children;
    std::set<uint64_t> used;
    std::map<uint64_t, uint32_t> counter_of;  // element -> counter, for causality
    auto key = [](const OpId& id) { return uint64_t{id.counter} << 32 | id.actor; };
    uint32_t max_counter = 0;
    std::vector<OpId> removed;

    for (int step = 0; step < 4000; ++step) {
      int what = rng() % 10;
      if (what < 6 || model.empty()) {
        // Insert after HEAD or a random element (hidden ones included). The
        // new counter is above the parent's, as causality requires, but
        // not always above everything: that models concurrent inserts.
        OpId parent{};
        if (!model.empty() && rng() % 8 != 0) parent = model[rng() % model.size()];
        OpId id;
        do {
          uint32_t lo = parent.counter + 1;
          uint32_t c = rng() % 3 == 0 ? max_counter + 1 : lo + rng() % (max_counter + 2 - lo + 1);
          id = OpId{c, static_cast<uint32_t>(rng() % 4)};
        } while (used.count(key(id)));
        used.insert(key(id));
        max_counter = std::max(max_counter, id.counter);
        ASSERT_TRUE(s.Insert(parent, Visible(id), less).ok());
        children[key(parent)].push_back(id);
        // The model's place: right after the parent, past greater IDs.
        size_t at = 0;
        if (parent.counter != 0)
          at = std::find(model.begin(), model.end(), parent) - model.begin() + 1;
        while (at < model.size() && less(id, model[at])) ++at;
        model.insert(model.begin() + at, id);
        shown.insert(shown.begin() + at, true);
      } else if (what < 9) {
        size_t i = rng() % model.size();
        SetVisible(s, model[i], !shown[i]);
        shown[i] = !shown[i];
      } else {
        // Remove a leaf (as rolling back the newest insert does).
        size_t i = rng() % model.size();
        OpId id = model[i];
        if (children.count(key(id)) && !children[key(id)].empty()) continue;
        s.Remove(id);
        model.erase(model.begin() + i);
        shown.erase(shown.begin() + i);
        for (auto& [p, kids] : children) std::erase(kids, id);
        removed.push_back(id);
      }

      if (step % 97 == 0 || step == 3999) {
        ASSERT_EQ(s.size(), model.size());
        ASSERT_EQ(Order(s), model) << "step " << step;
        ASSERT_EQ(TreeOrder(children, less), model) << "the model disagrees with the tree walk";
        std::vector<OpId> vis;
        for (size_t i = 0; i < model.size(); ++i)
          if (shown[i]) vis.push_back(model[i]);
        ExpectPositions(s, vis);
        // VisibleBefore of every element, hidden ones included.
        size_t before = 0;
        for (size_t i = 0; i < model.size(); ++i) {
          ASSERT_EQ(s.VisibleBefore(*s.Find(model[i])), before) << "element " << i;
          before += shown[i];
        }
        for (const OpId& id : removed) ASSERT_FALSE(s.Find(id).has_value());
      }
    }
    EXPECT_GT(model.size(), Sequence::kMaxBlock * 4);
  }
}

// A sequence built by Append (a document loading: elements in document
// order, full blocks carved from slabs) is the same as one built by inserts:
// counted, found by ID, and edited afterwards, its blocks leaving the slabs
// as they grow and split; replaced by another, it frees its blocks first.
TEST(Sequence, AppendedSequenceIsCountedFoundAndEditable) {
  Fixture f;
  auto appended = [](uint32_t n, uint32_t actor, std::vector<OpId>& order, std::vector<OpId>& vis) {
    Sequence s;
    for (uint32_t c = 1; c <= n; ++c) {
      OpId id{c, actor};
      Element e = c % 3 == 0 ? Mark(id) : Visible(id);
      e.origin_counter = c - 1;
      e.origin_actor = c == 1 ? 0 : actor;
      s.Append(std::move(e));
      order.push_back(id);
      if (c % 3 != 0) vis.push_back(id);
    }
    s.IndexAppended();
    return s;
  };
  std::vector<OpId> model, visible;
  const uint32_t n = 40000;  // up to a slab of the largest size (2 MiB: 455 blocks)
  Sequence s = appended(n, 0, model, visible);
  EXPECT_EQ(s.size(), n);
  EXPECT_EQ(s.visible(), visible.size());
  EXPECT_EQ(Order(s), model);
  ExpectPositions(s, visible);

  std::mt19937 rng(7);
  uint32_t next = n + 1;
  for (int i = 0; i < 3000; ++i) {
    size_t at = rng() % model.size();
    OpId id{next++, 1};  // greater than every ID: right after its parent
    ASSERT_TRUE(s.Insert(model[at], Visible(id), f.less).ok());
    model.insert(model.begin() + at + 1, id);
  }
  EXPECT_EQ(Order(s), model);
  for (const OpId& id : model) ASSERT_TRUE(s.Find(id).has_value()) << id.counter;

  std::vector<OpId> other, other_visible;
  s = appended(200, 2, other, other_visible);
  EXPECT_EQ(Order(s), other);
  ExpectPositions(s, other_visible);
  EXPECT_FALSE(s.Find(model[0]).has_value());
}

}  // namespace
}  // namespace etherply::automerge

namespace etherply::automerge {
namespace {

// The element index: every lookup must agree with a plain map through any
// mix of inserts, overwrites and erases (backward-shift deletion must never
// cut a probe run so that a later member is lost).
TEST(BlockIndex, EmptyAndAbsentIdsFindNothing) {
  BlockIndex index;
  EXPECT_EQ(index.Find<int>(OpId{1, 0}), nullptr);
  index.Erase(OpId{1, 0});  // erasing what is not there changes nothing
  EXPECT_EQ(index.size(), 0u);
  int block = 0;
  index.Set(OpId{1, 0}, &block);
  EXPECT_EQ(index.Find<int>(OpId{1, 1}), nullptr);
  EXPECT_EQ(index.Find<int>(OpId{2, 0}), nullptr);
  index.Erase(OpId{1, 1});
  EXPECT_EQ(index.Find<int>(OpId{1, 0}), &block);
  EXPECT_EQ(index.size(), 1u);
}

// Reserve(n) makes room for n entries in all: the n-th Set does not grow
// the table, entries already there survive, and a smaller n changes nothing.
TEST(BlockIndex, ReserveMakesRoomAndKeepsEntries) {
  BlockIndex index;
  std::vector<int> blocks(2);
  index.Set(OpId{1, 0}, &blocks[0]);
  index.Set(OpId{2, 1}, &blocks[1]);
  index.Reserve(1000);
  const size_t capacity = index.capacity();
  EXPECT_GE(capacity * 3, 1000u * 4);
  EXPECT_EQ(index.Find<int>(OpId{1, 0}), &blocks[0]);
  EXPECT_EQ(index.Find<int>(OpId{2, 1}), &blocks[1]);
  for (uint32_t c = 3; index.size() < 1000; ++c) index.Set(OpId{c, 0}, &blocks[c % 2]);
  EXPECT_EQ(index.capacity(), capacity) << "grew before the reserved size";
  index.Reserve(10);
  EXPECT_EQ(index.capacity(), capacity);
  for (uint32_t c = 3; c < 1001; ++c) ASSERT_EQ(index.Find<int>(OpId{c, 0}), &blocks[c % 2]) << c;
  for (uint32_t c = 1; index.size() * 4 <= capacity * 3; ++c) index.Set(OpId{c, 2}, &blocks[0]);
  EXPECT_GT(index.capacity(), capacity) << "past 3/4 full, it grows";
  EXPECT_EQ(index.Find<int>(OpId{1, 0}), &blocks[0]);
}

TEST(BlockIndex, AgreesWithAMapThroughRandomSetsAndErases) {
  BlockIndex index;
  std::unordered_map<OpId, int*, OpIdHash> model;
  std::vector<int> blocks(16);
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; ++step) {
    // Few actors and a narrow counter range: many collisions and long runs.
    OpId id{1 + static_cast<uint32_t>(rng() % 3000), static_cast<uint32_t>(rng() % 3)};
    if (rng() % 3 == 0) {
      index.Erase(id);
      model.erase(id);
    } else {
      int* b = &blocks[rng() % blocks.size()];
      index.Set(id, b);
      model[id] = b;
    }
    if (step % 1000 == 0) {
      ASSERT_EQ(index.size(), model.size()) << "step " << step;
      for (uint32_t c = 1; c <= 3000; ++c)
        for (uint32_t a = 0; a < 3; ++a) {
          auto it = model.find(OpId{c, a});
          ASSERT_EQ(index.Find<int>(OpId{c, a}), it == model.end() ? nullptr : it->second)
              << "step " << step << " id " << c << "@" << a;
        }
    }
  }
}

}  // namespace
}  // namespace etherply::automerge
