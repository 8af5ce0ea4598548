#include "replication/message.h"

#include <gtest/gtest.h>

#include "automerge/change.h"
#include "automerge/document.h"
#include "automerge/transaction.h"
#include "base/sha256.h"

namespace etherply::replication {
namespace {

// `n` changes of one document, as outbox records of `workspace`, their
// timestamps 1000, 1001, ...
std::vector<Outbox::Item> Records(const std::string& workspace, int n, size_t value_bytes = 1) {
  automerge::Document doc;
  std::vector<Outbox::Item> out;
  for (int i = 0; i < n; ++i) {
    automerge::Transaction tx(doc, automerge::ActorId(16, 7));
    EXPECT_TRUE(
        tx.Put(automerge::kRoot, "k", automerge::ScalarValue(std::string(value_bytes, 'x'))).ok());
    automerge::CommitOptions o;
    o.time = 1'700'000'000;  // fixed, so that equal ops hash alike
    auto c = tx.Commit(o);
    EXPECT_TRUE(c.ok());
    const automerge::StoredChange& sc = doc.changes().back();
    out.push_back({0, workspace, 1000 + i, sc.hash, std::string(AsChars(sc.bytes))});
  }
  return out;
}

std::vector<Outbox::Item> Interleave(const std::vector<Outbox::Item>& a,
                                     const std::vector<Outbox::Item>& b) {
  std::vector<Outbox::Item> out;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size()) out.push_back(a[i]);
    if (i < b.size()) out.push_back(b[i]);
  }
  return out;
}

// The message ID as message.h writes it down.
Sha256Digest IdOf(const std::string& workspace, const std::vector<Outbox::Item>& recs) {
  Sha256 sha;
  sha.Update(AsBytes(std::string_view("etherply.changes/1\0", 19)));
  sha.Update(AsBytes(workspace));
  sha.Update(AsBytes(std::string_view("\0", 1)));
  for (const auto& r : recs) sha.Update(r.hash);
  return sha.Finish();
}

TEST(ChangeMessage, OneChange) {
  auto r = Records("ws", 1);
  auto m = PackChanges(r, 64 << 10);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].workspace, "ws");
  EXPECT_EQ(m[0].data, r[0].chunk);
  EXPECT_EQ(m[0].timestamps, "1000");
  EXPECT_EQ(m[0].id, IdOf("ws", r));
  EXPECT_EQ(m[0].changes, 1u);
}

TEST(ChangeMessage, TheSameChangesInTwoWorkspacesAreTwoMessageIds) {
  // One author's equal first op in two workspaces within a second: one hash.
  auto a = Records("a", 1), b = Records("b", 1);
  ASSERT_EQ(a[0].hash, b[0].hash);
  auto m = PackChanges({a[0], b[0]}, 64 << 10);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_NE(m[0].id, m[1].id);
}

TEST(ChangeMessage, EachWorkspaceGetsItsRecordsInOrderAndTheyDecodeBack) {
  auto a = Records("a", 3), b = Records("b", 2);
  auto m = PackChanges(Interleave(a, b), 64 << 10);
  ASSERT_EQ(m.size(), 2u);
  for (const auto& [msg, recs] : {std::pair{m[0], a}, std::pair{m[1], b}}) {
    EXPECT_EQ(msg.workspace, recs[0].workspace);
    auto changes = automerge::DecodeChangeChunks(AsBytes(std::string_view(msg.data)));
    ASSERT_TRUE(changes.ok()) << changes.status().ToString();
    ASSERT_EQ(changes->size(), recs.size());
    auto times = ParseTimestamps(msg.timestamps, recs.size());
    ASSERT_TRUE(times.ok()) << times.status().ToString();
    for (size_t i = 0; i < recs.size(); ++i) {
      EXPECT_EQ((*changes)[i].hash, recs[i].hash);
      EXPECT_EQ((*times)[i], recs[i].timestamp);
    }
    EXPECT_EQ(msg.id, IdOf(recs[0].workspace, recs));
  }
}

TEST(ChangeMessage, TheIdNamesTheSetSoARepublishOfMoreIsNotADuplicate) {
  auto r = Records("ws", 3);
  auto two = PackChanges({r[0], r[1]}, 64 << 10);
  auto three = PackChanges(r, 64 << 10);
  ASSERT_EQ(two.size(), 1u);
  ASSERT_EQ(three.size(), 1u);
  EXPECT_NE(two[0].id, three[0].id);
  EXPECT_EQ(PackChanges({r[0], r[1]}, 64 << 10)[0].id, two[0].id);
}

TEST(ChangeMessage, AWorkspaceSplitsAtTheSizeLimitAndABigChangeGoesAlone) {
  auto r = Records("ws", 5, 300);  // each chunk a little over 300 bytes
  size_t one = r[0].chunk.size();
  auto m = PackChanges(r, 2 * one + one / 2);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].changes, 2u);
  EXPECT_EQ(m[1].changes, 2u);
  EXPECT_EQ(m[2].changes, 1u);
  EXPECT_EQ(m[2].id, IdOf("ws", {r[4]}));
  EXPECT_EQ(m[0].timestamps, "1000 1001");
  auto alone = PackChanges(r, 10);
  ASSERT_EQ(alone.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(alone[i].data, r[i].chunk);
}

TEST(ChangeMessage, NothingToPackIsNoMessage) { EXPECT_TRUE(PackChanges({}, 1024).empty()); }

TEST(ChangeMessage, TimestampsParse) {
  auto t = ParseTimestamps("1 -2 1700000000000000", 3);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, (std::vector<int64_t>{1, -2, 1700000000000000}));
}

TEST(ChangeMessage, TimestampHeadersThatDoNotMatchAreRejected) {
  for (auto [header, n] : std::vector<std::pair<std::string, size_t>>{{"", 1},
                                                                      {"1", 2},
                                                                      {"1 2", 1},
                                                                      {"1 ", 1},
                                                                      {" 1", 1},
                                                                      {"1  2", 2},
                                                                      {"1,2", 2},
                                                                      {"x", 1},
                                                                      {"+1", 1},
                                                                      {"1.5", 1},
                                                                      {"99999999999999999999", 1},
                                                                      {"1\t2", 2}}) {
    auto t = ParseTimestamps(header, n);
    ASSERT_FALSE(t.ok()) << '"' << header << "\" for " << n;
    EXPECT_EQ(t.status().code(), Status::Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace etherply::replication
