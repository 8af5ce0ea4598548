#include "automerge/op_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>

#include "automerge/packed_value.h"

namespace etherply::automerge {
namespace {

// --- PackedValue -----------------------------------------------------------------

TEST(PackedValue, EveryTypeRoundTrips) {
  const std::vector<ScalarValue> values = {
      std::monostate{},
      false,
      true,
      Uint{0},
      Uint{UINT64_MAX},
      int64_t{0},
      int64_t{INT64_MIN},
      int64_t{INT64_MAX},
      0.5,
      -0.0,
      std::numeric_limits<double>::quiet_NaN(),
      std::string(),
      std::string("a"),
      std::string(14, 'x'),   // the longest inline string
      std::string(15, 'y'),   // the shortest boxed one
      std::string(1000, 'z'),
      std::string("\0\0", 2),
      Bytes(),
      Bytes(14, 0xff),
      Bytes(15, 0x00),
      Counter{-5},
      Counter{INT64_MAX},
      Timestamp{-1},
      UnknownValue{12, {}},
      UnknownValue{15, Bytes(40, 7)},
  };
  for (const ScalarValue& v : values) {
    SCOPED_TRACE(ValueTypeName(v));
    PackedValue p(v);
    ScalarValue back = p.Get();
    if (auto* d = std::get_if<double>(&v); d && *d != *d) {
      ASSERT_TRUE(std::holds_alternative<double>(back));
      EXPECT_NE(std::get<double>(back), std::get<double>(back));
      continue;
    }
    EXPECT_EQ(back, v);
    EXPECT_TRUE(p == v);
    EXPECT_EQ(back.index(), v.index());
  }
}

TEST(PackedValue, CopiesAndMovesOwnTheirBoxes) {
  PackedValue a(ScalarValue(std::string(100, 'a')));
  PackedValue b(a);  // a deep copy: both stay valid after either goes
  PackedValue c(std::move(a));
  EXPECT_EQ(a.Get(), ScalarValue());  // moved from: null
  EXPECT_EQ(b.Get(), ScalarValue(std::string(100, 'a')));
  EXPECT_EQ(c.Get(), ScalarValue(std::string(100, 'a')));
  b = c;
  c = PackedValue(ScalarValue(int64_t{3}));
  c = std::move(c);
  EXPECT_EQ(c.Get(), ScalarValue(int64_t{3}));
  b = b;
  EXPECT_EQ(b.str(), std::string(100, 'a'));
}

TEST(PackedValue, AccessorsAnswerOnlyForTheirType) {
  EXPECT_TRUE(PackedValue(ScalarValue(std::string("hé"))).is_str());
  EXPECT_EQ(PackedValue(ScalarValue(std::string("hé"))).str(), "hé");
  EXPECT_TRUE(PackedValue(ScalarValue(std::string(20, 'q'))).is_str());
  EXPECT_FALSE(PackedValue(ScalarValue(Bytes{'h'})).is_str());
  EXPECT_EQ(PackedValue(ScalarValue(Bytes{'h'})).str(), "");
  EXPECT_FALSE(PackedValue(ScalarValue(UnknownValue{10, Bytes(20, 1)})).is_str());
  EXPECT_TRUE(PackedValue(ScalarValue(Counter{4})).is_counter());
  EXPECT_EQ(PackedValue(ScalarValue(Counter{4})).counter(), 4);
  EXPECT_FALSE(PackedValue(ScalarValue(int64_t{4})).is_counter());
  EXPECT_EQ(PackedValue(ScalarValue(int64_t{-4})).IncrementAmount(), -4);
  EXPECT_EQ(PackedValue(ScalarValue(Uint{9})).IncrementAmount(), 9);
  EXPECT_EQ(PackedValue(ScalarValue(0.5)).IncrementAmount(), 0);
  EXPECT_FALSE(PackedValue(ScalarValue(int64_t{1})) == ScalarValue(Uint{1}));
}

// --- Op --------------------------------------------------------------------------

TEST(Op, SuccessorsBeyondTheFirstAndIncrementTotals) {
  Op op(OpId{1, 0}, Action::kSet, PackedValue(ScalarValue(Counter{0})));
  EXPECT_EQ(op.succ_count(), 0u);
  EXPECT_FALSE(op.HasSucc(OpId{2, 0}));
  for (uint32_t c = 2; c < 6; ++c) op.AddSucc(OpId{c, 0});
  EXPECT_EQ(op.succ_count(), 4u);
  EXPECT_TRUE(op.HasSucc(OpId{5, 0}));
  op.RemoveSucc(OpId{2, 0});  // the inline one: the next takes its place
  op.RemoveSucc(OpId{9, 0});  // not there: nothing
  std::vector<OpId> seen;
  op.ForEachSucc([&](const OpId& s) { seen.push_back(s); });
  EXPECT_EQ(seen, (std::vector<OpId>{{3, 0}, {4, 0}, {5, 0}}));
  op.AddToIncTotal(7);
  op.AddToIncTotal(-2);
  EXPECT_EQ(op.inc_total(), 5);
  Op moved(std::move(op));
  EXPECT_EQ(moved.succ_count(), 3u);
  EXPECT_EQ(moved.inc_total(), 5);
}

// --- Slot ------------------------------------------------------------------------

// A slot against a plain model: live ops sorted, hidden ones as a multiset,
// after every step of a random mix of inserts, hides, unhides and erases.
TEST(Slot, RandomOperationsMatchAModel) {
  std::vector<uint32_t> rank = {2, 0, 1};  // actor 1 sorts first, then 2, then 0
  OpOrder less{&rank};
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    Slot slot;
    std::vector<OpId> live, hidden;
    uint32_t next = 1;
    for (int step = 0; step < 40; ++step) {
      switch (rng() % 5) {
        case 0:
        case 1: {
          OpId id{next++, static_cast<uint32_t>(rng() % 3)};
          // Values long enough to be boxed, so that a lost or doubled move shows.
          slot.InsertLive(Op(id, Action::kSet, PackedValue(ScalarValue(std::string(20, 'a' + id.counter % 26)))),
                          less);
          live.push_back(id);
          break;
        }
        case 2: {
          OpId id{next++, 0};
          slot.AddHidden(Op(id, Action::kIncrement, PackedValue(ScalarValue(int64_t{1}))));
          hidden.push_back(id);
          break;
        }
        case 3:
          if (!live.empty()) {
            OpId id = live[rng() % live.size()];
            slot.Hide(slot.Find(id, less));
            live.erase(std::find(live.begin(), live.end(), id));
            hidden.push_back(id);
          } else if (!hidden.empty()) {
            OpId id = hidden[rng() % hidden.size()];
            slot.Unhide(slot.Find(id, less), less);
            hidden.erase(std::find(hidden.begin(), hidden.end(), id));
            live.push_back(id);
          }
          break;
        case 4: {
          std::vector<OpId> all = live;
          all.insert(all.end(), hidden.begin(), hidden.end());
          if (all.empty()) break;
          OpId id = all[rng() % all.size()];
          slot.Erase(slot.Find(id, less));
          auto& from = std::find(live.begin(), live.end(), id) != live.end() ? live : hidden;
          from.erase(std::find(from.begin(), from.end(), id));
          break;
        }
      }
      std::sort(live.begin(), live.end(), less);
      std::vector<OpId> got_live, got_hidden, want_hidden = hidden;
      auto check_value = [](const Op& op) {
        if (op.action == Action::kSet)
          ASSERT_EQ(op.value.str(), std::string(20, 'a' + op.id.counter % 26));
        else
          ASSERT_EQ(op.value.IncrementAmount(), 1);
      };
      for (const Op& op : slot.live()) {
        got_live.push_back(op.id);
        check_value(op);
      }
      for (const Op& op : slot.hidden()) {
        got_hidden.push_back(op.id);
        check_value(op);
      }
      auto by_counter = [](const OpId& a, const OpId& b) { return a.counter < b.counter; };
      std::sort(got_hidden.begin(), got_hidden.end(), by_counter);
      std::sort(want_hidden.begin(), want_hidden.end(), by_counter);
      ASSERT_EQ(got_live, live);
      ASSERT_EQ(got_hidden, want_hidden);
      ASSERT_EQ(slot.size(), live.size() + hidden.size());
      ASSERT_EQ(slot.Winner() ? slot.Winner()->id : OpId{}, live.empty() ? OpId{} : live.back());
      for (const OpId& id : live) ASSERT_TRUE(slot.IsLive(slot.Find(id, less)));
      for (const OpId& id : hidden) ASSERT_FALSE(slot.IsLive(slot.Find(id, less)));
      ASSERT_EQ(slot.Find(OpId{next, 0}, less), nullptr);
    }
    // Moving the slot keeps every op.
    Slot moved(std::move(slot));
    EXPECT_TRUE(slot.empty());
    EXPECT_EQ(moved.size(), live.size() + hidden.size());
    Slot assigned;
    assigned = std::move(moved);
    EXPECT_EQ(assigned.size(), live.size() + hidden.size());
  }
}

}  // namespace
}  // namespace etherply::automerge
