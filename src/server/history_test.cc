#include "server/history.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <optional>
#include <set>
#include <string>

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

}  // namespace
}  // namespace etherply::server
