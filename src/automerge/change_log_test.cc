// The change log keeps changes as rows and rebuilds their chunks on demand.
// What must never happen: a rebuilt chunk that differs from the one admitted
// (its hash is its identity), a lookup that finds a row after it was taken
// back, or one that misses a row still there.
#include "automerge/change_log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "automerge/chunk.h"
#include "base/coding.h"
#include "base/testutil.h"

namespace etherply::automerge {
namespace {

using testutil::B;

const std::vector<ActorId> kActors = {B("aaaaaaaaaaaaaaaa"), B("bbbbbbbb")};

// Change n of a chain by actor 0 (deps: the previous change), one map put,
// with other fields varied so that every header field is exercised.
StoredChange Chained(uint64_t n, const std::vector<ChangeHash>& deps) {
  Change c;
  c.deps = deps;
  c.actor = kActors[0];
  c.seq = n;
  c.start_op = n;
  c.time = n % 3 == 0 ? -static_cast<int64_t>(n) * 1000 : static_cast<int64_t>(n);
  c.message = n % 5 == 0 ? "message " + std::to_string(n) : "";
  if (n % 7 == 0) c.extra = B("0103414243");
  ChangeOp op;
  op.key = Key::Map("key" + std::to_string(n % 10));
  op.value = static_cast<int64_t>(n);
  c.ops.push_back(op);
  return EncodeChange(std::move(c));
}

// A chunk whose seq is written as the two bytes 81 00: valid LEB128 but not
// the shortest form, so rebuilding from the row would give other bytes.
Bytes NonCanonicalSeq() {
  Bytes body;
  AppendUleb(body, 0);  // no deps
  AppendUleb(body, kActors[1].size());
  Append(body, kActors[1]);
  body.push_back(0x81);
  body.push_back(0x00);  // seq 1, padded
  AppendUleb(body, 1);   // start_op
  AppendSleb(body, 0);   // time
  AppendUleb(body, 0);   // no message
  AppendUleb(body, 0);   // no other actors
  AppendUleb(body, 0);   // no columns
  return WriteChunk(ChunkType::kChange, body).bytes;
}

TEST(ChangeLog, EmptyLogFindsNothing) {
  ChangeLog log(&kActors);
  EXPECT_TRUE(log.empty());
  EXPECT_FALSE(log.Find(ChangeHash{}).has_value());
  EXPECT_FALSE(log.Contains(Chained(1, {}).hash));
}

TEST(ChangeLog, UnknownHashIsNotFound) {
  ChangeLog log(&kActors);
  StoredChange a = Chained(1, {});
  log.Append(a, 0);
  ChangeHash other = a.hash;
  other[31] ^= 1;
  EXPECT_FALSE(log.Find(other).has_value());
  // Same first eight bytes (the table's home slot), different hash.
  EXPECT_EQ(log.Find(a.hash), 0u);
}

TEST(ChangeLog, NonCanonicalHeaderIsKeptWholeAndExact) {
  ChangeLog log(&kActors);
  Bytes chunk = NonCanonicalSeq();
  Reader r(chunk);
  auto parsed = ReadChunk(r);
  ASSERT_TRUE(parsed.ok());
  log.Append(chunk, parsed->hash, 1, 1, 1, 0, 0, false, {});
  EXPECT_EQ(log.bytes(0), chunk);
  StoredChange sc = log.Get(0);
  EXPECT_EQ(sc.bytes, chunk);
  EXPECT_EQ(sc.hash, parsed->hash);
  EXPECT_EQ(sc.change.seq, 1u);
  EXPECT_EQ(sc.change.actor, kActors[1]);
  EXPECT_EQ(sc.change.num_ops, 0u);
  EXPECT_EQ(log.start_op(0), 1u);
  EXPECT_EQ(log.max_op(0), 0u);
}

TEST(ChangeLog, UnsortedDepsAreKeptExact) {
  ChangeLog log(&kActors);
  StoredChange a = Chained(1, {});
  Change other;
  other.actor = kActors[1];
  other.seq = 1;
  other.start_op = 1;
  StoredChange b = EncodeChange(other);
  log.Append(a, 0);
  log.Append(b, 1);
  // Deps in descending order: not what EncodeChange writes.
  std::vector<ChangeHash> deps = {a.hash, b.hash};
  std::sort(deps.rbegin(), deps.rend());
  Bytes body;
  AppendUleb(body, 2);
  for (const ChangeHash& d : deps) body.insert(body.end(), d.begin(), d.end());
  AppendUleb(body, kActors[0].size());
  Append(body, kActors[0]);
  for (int field : {2, 2, 0, 0, 0, 0}) AppendUleb(body, field);  // seq start time msg others cols
  Chunk c = WriteChunk(ChunkType::kChange, body);
  std::vector<uint32_t> rows = {*log.Find(deps[0]), *log.Find(deps[1])};
  log.Append(c.bytes, c.hash, 0, 2, 2, 0, 0, false, rows);
  EXPECT_EQ(log.bytes(2), c.bytes);
  EXPECT_EQ(log.Get(2).change.deps, deps);
}

TEST(ChangeLog, RowsGiveBackEveryFieldAndTheExactBytes) {
  ChangeLog log(&kActors);
  std::vector<StoredChange> in;
  for (uint64_t n = 1; n <= 300; ++n) {
    in.push_back(Chained(n, n == 1 ? std::vector<ChangeHash>{} : std::vector{in.back().hash}));
    EXPECT_EQ(log.Append(in.back(), 0), n - 1);
  }
  ASSERT_EQ(log.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    SCOPED_TRACE(i);
    StoredChange got = log.Get(i);
    EXPECT_EQ(got.bytes, in[i].bytes);
    EXPECT_EQ(got.hash, in[i].hash);
    EXPECT_EQ(got.change.deps, in[i].change.deps);
    EXPECT_EQ(got.change.actor, in[i].change.actor);
    EXPECT_EQ(got.change.seq, in[i].change.seq);
    EXPECT_EQ(got.change.start_op, in[i].change.start_op);
    EXPECT_EQ(got.change.time, in[i].change.time);
    EXPECT_EQ(got.change.message, in[i].change.message);
    EXPECT_EQ(got.change.extra, in[i].change.extra);
    EXPECT_EQ(got.change.num_ops, 1u);
    EXPECT_EQ(log.Find(in[i].hash), i);
    if (i > 0) {
      ASSERT_EQ(log.deps(i).size(), 1u);
      EXPECT_EQ(log.deps(i)[0], i - 1);
    }
  }
  std::vector<StoredChange> iterated(log.begin(), log.end());
  ASSERT_EQ(iterated.size(), in.size());
  EXPECT_EQ(iterated.back().bytes, in.back().bytes);
}

TEST(ChangeLog, TruncateForgetsTheRowsTakenBackAndKeepsTheRest) {
  ChangeLog log(&kActors);
  std::vector<StoredChange> in;
  for (uint64_t n = 1; n <= 5000; ++n) {
    in.push_back(Chained(n, n == 1 ? std::vector<ChangeHash>{} : std::vector{in.back().hash}));
    log.Append(in.back(), 0);
  }
  log.Truncate(1234);
  ASSERT_EQ(log.size(), 1234u);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(log.Find(in[i].hash).has_value(), i < 1234) << i;
  // Appending again after a truncate reuses the space and gives back the bytes.
  for (size_t i = 1234; i < in.size(); ++i) log.Append(in[i], 0);
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(log.Find(in[i].hash), i);
    ASSERT_EQ(log.bytes(i), in[i].bytes);
  }
  log.Truncate(0);
  EXPECT_TRUE(log.empty());
  EXPECT_FALSE(log.Contains(in[0].hash));
}

TEST(ChangeLog, ARowCostsFarLessThanItsChunk) {
  ChangeLog log(&kActors);
  std::vector<ChangeHash> prev;
  size_t chunk_bytes = 0;
  const size_t n = 100000;  // past the first blocks, whose doubling leaves room
  for (uint64_t i = 1; i <= n; ++i) {
    StoredChange sc = Chained(i, prev);
    chunk_bytes += sc.bytes.size();
    log.Append(sc, 0);
    prev = {sc.hash};
  }
  // Rows, hash, table, deps and the tail, with the room reserved ahead in
  // whole huge pages (base/block_array.h): under 200 bytes a change, against
  // a chunk of about 90 and a StoredChange of several hundred.
  EXPECT_LT(log.MemoryUsage() / n, 200u) << "chunks average " << chunk_bytes / n;
}

}  // namespace
}  // namespace etherply::automerge
