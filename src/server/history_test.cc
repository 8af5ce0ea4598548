#include "server/history.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "automerge/transaction.h"

namespace etherply::server {
namespace {

namespace json = boost::json;
using automerge::kRoot;

const automerge::ActorId kActor(16, 1);

// A change under root key `key` of maps nested `depth` deep, each under a
// key of `key_bytes`, with `leaves` values at the bottom: every leaf's op
// shows a path of depth x key_bytes.
void AddDeepChange(automerge::Document& doc, const std::string& key, int depth, size_t key_bytes,
                   int leaves) {
  automerge::Transaction tx(doc, kActor);
  auto obj = tx.PutObject(kRoot, key, automerge::ObjType::kMap);
  ASSERT_TRUE(obj.ok());
  for (int d = 1; d < depth; ++d) {
    obj = tx.PutObject(*obj, std::string(key_bytes, static_cast<char>('a' + d % 26)),
                       automerge::ObjType::kMap);
    ASSERT_TRUE(obj.ok());
  }
  for (int i = 0; i < leaves; ++i)
    ASSERT_TRUE(tx.Put(*obj, "leaf" + std::to_string(i), int64_t{i}).ok());
  ASSERT_TRUE(tx.Commit().ok());
}

TEST(HistoryPage, AChangeShowsItsOpsUpToABoundAndCountsTheRest) {
  automerge::Document doc;
  // 16 levels of 2,000-byte keys, 600 leaves: about 19 MB of ops as JSON.
  AddDeepChange(doc, "deep", 16, 2000, 600);
  auto page = HistoryPage(doc, 100, std::nullopt);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_LT(page->size(), kMaxChangeOpsBytes + 64 * 1024);
  json::value v = json::parse(*page);
  const json::object& change = v.at("changes").at(0).as_object();
  size_t shown = change.at("ops").as_array().size();
  ASSERT_TRUE(change.contains("omitted_ops"));
  EXPECT_EQ(shown + change.at("omitted_ops").as_int64(), 16u + 600u);
  EXPECT_GT(shown, 16u);  // the maps, then leaves while they fit
  EXPECT_TRUE(v.at("next").is_null());
}

TEST(HistoryPage, APageEndsEarlyOnceItIsFullAndTheWalkGoesOn) {
  automerge::Document doc;
  // Each change about 3 MB of ops: under the change bound, over the page's
  // after three.
  for (int i = 0; i < 6; ++i) AddDeepChange(doc, "k" + std::to_string(i), 8, 2000, 180);
  std::set<std::string> seen;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    auto page = HistoryPage(doc, 1000, cursor);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LT(page->size(), kMaxPageBytes + kMaxChangeOpsBytes + 64 * 1024);
    json::value v = json::parse(*page);
    const json::array& changes = v.at("changes").as_array();
    ASSERT_FALSE(changes.empty());
    for (const json::value& c : changes) {
      EXPECT_FALSE(c.as_object().contains("omitted_ops"));
      EXPECT_TRUE(seen.insert(std::string(c.at("hash").as_string())).second);
    }
    if (!v.at("next").is_null()) {
      EXPECT_EQ(v.at("next").as_string(), changes.back().at("hash").as_string());
    }
    cursor = v.at("next").is_null() ? std::nullopt
                                    : std::optional<std::string>(v.at("next").as_string());
    ++pages;
  } while (cursor);
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_GT(pages, 1);
}

// A root key's value, which must be there.
automerge::ValueTree TreeOf(const automerge::Document& doc, const std::string& key,
                            const automerge::Clock* at = nullptr) {
  std::optional<automerge::ValueTree> tree = doc.RootValueTree(key, at);
  EXPECT_TRUE(tree.has_value()) << key;
  return tree.value_or(automerge::ValueTree{});
}

// Every kind of value a document can hold, under its own root key.
void PutEveryKind(automerge::Document& doc) {
  automerge::Transaction tx(doc, kActor);
  ASSERT_TRUE(tx.Put(kRoot, "f64-whole", 2.0).ok());
  ASSERT_TRUE(tx.Put(kRoot, "f64-negative-zero", -0.0).ok());
  ASSERT_TRUE(tx.Put(kRoot, "f64-beyond-2^53", 72057594037927936.0).ok());
  ASSERT_TRUE(tx.Put(kRoot, "uint", automerge::Uint{18446744073709551615u}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "int", int64_t{-5}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "counter", automerge::Counter{10}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "timestamp", automerge::Timestamp{1764905400123}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "bytes", Bytes{0, 1, 255}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "null", std::monostate{}).ok());
  auto text = tx.PutObject(kRoot, "text", automerge::ObjType::kText);
  ASSERT_TRUE(text.ok());
  ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "héllo 😀").ok());
  auto list = tx.PutObject(kRoot, "list", automerge::ObjType::kList);
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(tx.Insert(*list, 0, 1.0).ok());
  auto inner = tx.InsertObject(*list, 1, automerge::ObjType::kMap);
  ASSERT_TRUE(inner.ok());
  ASSERT_TRUE(tx.Put(*inner, "z", -0.0).ok());
  ASSERT_TRUE(tx.Put(*inner, "a", automerge::Counter{3}).ok());
  ASSERT_TRUE(tx.Commit().ok());
  automerge::Transaction inc(doc, kActor);
  ASSERT_TRUE(inc.Increment(kRoot, "counter", 5).ok());
  ASSERT_TRUE(inc.Commit().ok());
}

// Restore puts back each value as it was, its type included: an f64 that
// JSON shows as an integer stays an f64 of the same value, -0 stays -0.
TEST(PlanRestore, PutsBackEveryValueWithItsType) {
  automerge::Document doc;
  PutEveryKind(doc);
  const std::vector<automerge::ChangeHash> then = doc.heads();
  const std::vector<std::string> keys = doc.RootKeys();
  ASSERT_EQ(keys.size(), 11u);
  {
    automerge::Transaction tx(doc, kActor);
    for (const std::string& key : keys) {
      if (key == "int") continue;
      ASSERT_TRUE(tx.Put(kRoot, key, std::string("changed")).ok());
    }
    ASSERT_TRUE(tx.Delete(kRoot, "int").ok());
    ASSERT_TRUE(tx.Put(kRoot, "new", true).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  auto plan = PlanRestore(doc, then);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->edits.size(), keys.size() + 1) << "every key put back, \"new\" deleted";
  automerge::Transaction tx(doc, kActor);
  ASSERT_TRUE(ApplyPlan(tx, *plan, 1).ok());
  ASSERT_TRUE(tx.Commit().ok());

  auto clock = doc.ClockAt(then);
  ASSERT_TRUE(clock.ok());
  EXPECT_EQ(doc.RootKeys(), keys);
  for (const std::string& key : keys) {
    auto was = TreeOf(doc, key, &*clock);
    auto is = TreeOf(doc, key);
    EXPECT_TRUE(is.Same(was)) << key << ": " << *doc.RootValueJson(key) << " was "
                              << *doc.RootValueJson(key, &*clock);
  }
  EXPECT_EQ(std::get<double>(TreeOf(doc, "f64-beyond-2^53").scalar), 72057594037927936.0);
  EXPECT_TRUE(std::signbit(std::get<double>(TreeOf(doc, "f64-negative-zero").scalar)));
  EXPECT_EQ(std::get<automerge::Counter>(TreeOf(doc, "counter").scalar).value, 15);
  EXPECT_EQ(TreeOf(doc, "text").text, "héllo 😀");
  EXPECT_EQ(*TreeOf(doc, "text").obj_type, automerge::ObjType::kText);

  auto again = PlanRestore(doc, then);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->edits.empty()) << "nothing differs any more";
}

// Values that JSON shows alike but that differ in type or sign differ.
TEST(PlanRestore, AValueOfAnotherTypeOrSignIsNotTheSame) {
  automerge::Document doc;
  {
    automerge::Transaction tx(doc, kActor);
    ASSERT_TRUE(tx.Put(kRoot, "a", 2.0).ok());
    ASSERT_TRUE(tx.Put(kRoot, "b", -0.0).ok());
    ASSERT_TRUE(tx.Put(kRoot, "c", int64_t{7}).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  const std::vector<automerge::ChangeHash> then = doc.heads();
  // A put of 0 over -0 records nothing, as the reference's does (its
  // values compare as numbers): through another value.
  for (const automerge::ScalarValue& b :
       {automerge::ScalarValue(1.0), automerge::ScalarValue(0.0)}) {
    automerge::Transaction tx(doc, kActor);
    ASSERT_TRUE(tx.Put(kRoot, "a", int64_t{2}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "b", b).ok());
    ASSERT_TRUE(tx.Put(kRoot, "c", int64_t{7}).ok());  // the same value again
    ASSERT_TRUE(tx.Commit().ok());
  }
  EXPECT_EQ(doc.RootValueJson("a"), "2");
  EXPECT_EQ(doc.RootValueJson("b"), "0");
  auto plan = PlanRestore(doc, then);
  ASSERT_TRUE(plan.ok());
  std::vector<std::string> edited;
  for (const KeyEdit& e : plan->edits) edited.push_back(e.key);
  EXPECT_EQ(edited, (std::vector<std::string>{"a", "b"}));
  automerge::Transaction tx(doc, kActor);
  ASSERT_TRUE(ApplyPlan(tx, *plan, 1).ok());
  EXPECT_EQ(tx.pending_ops(), 2u) << "-0 over 0 recorded too";
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_TRUE(std::signbit(std::get<double>(TreeOf(doc, "b").scalar)));
  EXPECT_TRUE(std::holds_alternative<double>(TreeOf(doc, "a").scalar));
}

// Undo and restore rebuild a value recursively: one as deep as a document
// holds (Document::kMaxDepth objects) is rebuilt.
TEST(PlanRestore, AValueNestedAsDeepAsADocumentHoldsIsRebuilt) {
  automerge::Document doc;
  {
    automerge::Transaction tx(doc, kActor);
    auto obj = tx.PutObject(kRoot, "deep", automerge::ObjType::kList);
    ASSERT_TRUE(obj.ok());
    for (size_t d = 1; d < automerge::Document::kMaxDepth; ++d) {
      obj = tx.InsertObject(*obj, 0, automerge::ObjType::kList);
      ASSERT_TRUE(obj.ok()) << d;
    }
    ASSERT_TRUE(tx.Commit().ok());
  }
  const std::vector<automerge::ChangeHash> then = doc.heads();
  const std::optional<std::string> json = doc.RootValueJson("deep");
  {
    automerge::Transaction tx(doc, kActor);
    ASSERT_TRUE(tx.Put(kRoot, "deep", int64_t{1}).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  auto plan = PlanRestore(doc, then);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->edits.size(), 1u);
  {
    automerge::Transaction tx(doc, kActor);
    ASSERT_TRUE(ApplyPlan(tx, *plan, 1).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  EXPECT_EQ(doc.RootValueJson("deep"), json);
}

}  // namespace
}  // namespace etherply::server
