// Documents: local edits through transactions, and changes applied from
// elsewhere. Most of what follows is about failure: an edit that fails
// changes nothing, a rollback restores the document exactly, and a batch of
// changes that fails leaves the document (queue included) as it was.
// Semantics follow FORMAT.md §6.6 and §7: the greatest op ID wins a conflict,
// counters add up their increments, heads are sorted.
#include "automerge/document.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/change.h"
#include "automerge/chunk.h"
#include "automerge/transaction.h"
#include "base/hex.h"
#include "base/sha256.h"

namespace etherply::automerge {
namespace {

using Code = Status::Code;

const ActorId kA(16, 0x01);
const ActorId kB(16, 0xfe);
const ActorId kC(16, 0x77);
const CommitOptions kAtZero{.time = 0};

std::string S(std::string_view s) { return std::string(s); }

// Everything a failed edit or batch must leave as it was.
struct Snapshot {
  std::string json;
  std::vector<ChangeHash> heads;
  size_t changes;
  size_t queued;
  std::vector<ChangeHash> missing;
  uint32_t max_op;
};

Snapshot Snap(const Document& d) {
  return {d.ToJson(), d.heads(), d.changes().size(), d.queued(), d.MissingDeps(), d.max_op()};
}

void ExpectSame(const Snapshot& before, const Document& d) {
  Snapshot now = Snap(d);
  EXPECT_EQ(now.json, before.json);
  EXPECT_EQ(now.heads, before.heads);
  EXPECT_EQ(now.changes, before.changes);
  EXPECT_EQ(now.queued, before.queued);
  EXPECT_EQ(now.missing, before.missing);
  EXPECT_EQ(now.max_op, before.max_op);
}

ChangeHash MustCommit(Transaction& tx, const CommitOptions& options = kAtZero) {
  auto r = tx.Commit(options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r.ok() && r->has_value()) << "nothing was committed";
  return r.ok() && r->has_value() ? **r : ChangeHash{};
}

std::vector<StoredChange> AllChanges(const Document& d) { return {d.changes().begin(), d.changes().end()}; }

// Applies every change of `from` to `to`.
void Merge(Document& to, const Document& from) {
  Status s = to.ApplyChanges(AllChanges(from));
  ASSERT_TRUE(s.ok()) << s.ToString();
}

ObjId ObjectAt(const Document& d, const ObjId& obj, std::string_view key) {
  auto v = d.Get(obj, key);
  EXPECT_TRUE(v.has_value() && v->is_object()) << key;
  return v && v->is_object() ? std::get<ObjId>(v->v) : ObjId{};
}

ScalarValue ScalarAt(const Document& d, const ObjId& obj, std::string_view key) {
  auto v = d.Get(obj, key);
  EXPECT_TRUE(v.has_value() && !v->is_object()) << key;
  return v && !v->is_object() ? std::get<ScalarValue>(v->v) : ScalarValue{};
}

// A change built by hand (for inputs a transaction would never make).
StoredChange HandMade(const ActorId& actor, uint64_t seq, uint64_t start_op,
                      std::vector<ChangeHash> deps, std::vector<ChangeOp> ops) {
  Change c;
  c.actor = actor;
  c.seq = seq;
  c.start_op = start_op;
  c.deps = std::move(deps);
  c.ops = std::move(ops);
  return EncodeChange(std::move(c));
}

ChangeOp PutOp(ObjId obj, std::string key, ScalarValue v, std::vector<OpId> pred = {}) {
  return ChangeOp{obj,          Key::Map(std::move(key)), false, Action::kSet,
                  std::move(v), std::move(pred)};
}

Bytes ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---------------------------------------------------------------------------
// Maps.

TEST(Document, StartsEmpty) {
  Document doc;
  EXPECT_EQ(doc.ToJson(), "{}");
  EXPECT_TRUE(doc.heads().empty());
  EXPECT_TRUE(doc.changes().empty());
  EXPECT_EQ(doc.queued(), 0u);
  EXPECT_EQ(doc.max_op(), 0u);
  EXPECT_EQ(doc.TypeOf(kRoot), ObjType::kMap);
  EXPECT_FALSE(doc.Get(kRoot, "x").has_value());
  EXPECT_TRUE(doc.Keys(kRoot).empty());
}

TEST(Document, PutThenGet) {
  Document doc;
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "n", int64_t{-4}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "s", S("héllo")).ok());
  // Reads see the transaction's edits at once.
  EXPECT_TRUE(ScalarAt(doc, kRoot, "n") == ScalarValue(int64_t{-4}));
  EXPECT_TRUE(ScalarAt(doc, kRoot, "s") == ScalarValue(S("héllo")));
  EXPECT_FALSE(doc.Get(kRoot, "missing").has_value());
  EXPECT_EQ(doc.Keys(kRoot), (std::vector<std::string>{"n", "s"}));
  EXPECT_EQ(doc.Length(kRoot), 2u);
  auto v = doc.Get(kRoot, "n");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->id.counter, 1u);
  EXPECT_EQ(doc.actor(v->id.actor), kA);
  MustCommit(tx);
  EXPECT_EQ(doc.ToJson(), "{\"n\":-4,\"s\":\"héllo\"}");
}

TEST(Document, EveryScalarTypeSurvivesACommitAndAMerge) {
  Document a;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "null", std::monostate{}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "bool", true).ok());
    ASSERT_TRUE(tx.Put(kRoot, "uint", Uint{UINT64_MAX}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "int", int64_t{-4}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "f64", 3.14159267).ok());
    ASSERT_TRUE(tx.Put(kRoot, "str", S("👩‍👩‍👧")).ok());
    ASSERT_TRUE(tx.Put(kRoot, "bytes", Bytes{0x85, 0x6f, 0x4a, 0x83}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "counter", Counter{5}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "time", Timestamp{-905182979877}).ok());
    MustCommit(tx);
  }
  Document b;
  Merge(b, a);
  const std::string expected =
      "{\"bool\":true,\"bytes\":\"hW9Kgw==\",\"counter\":5,\"f64\":3.14159267,\"int\":-4,"
      "\"null\":null,\"str\":\"👩‍👩‍👧\",\"time\":\"1941-04-26T08:17:00.123Z\","
      "\"uint\":18446744073709551615}";
  EXPECT_EQ(a.ToJson(), expected);
  EXPECT_EQ(b.ToJson(), expected);
  EXPECT_TRUE(ScalarAt(b, kRoot, "counter") == ScalarValue(Counter{5}));
  EXPECT_TRUE(ScalarAt(b, kRoot, "uint") == ScalarValue(Uint{UINT64_MAX}));
}

TEST(Document, OverwriteAndDelete) {
  Document doc;
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
  EXPECT_EQ(doc.GetAll(kRoot, "k").size(), 1u);
  EXPECT_TRUE(ScalarAt(doc, kRoot, "k") == ScalarValue(int64_t{2}));
  ASSERT_TRUE(tx.Delete(kRoot, "k").ok());
  EXPECT_FALSE(doc.Get(kRoot, "k").has_value());
  EXPECT_TRUE(doc.GetAll(kRoot, "k").empty());
  EXPECT_EQ(tx.pending_ops(), 3u);
  MustCommit(tx);
  EXPECT_EQ(doc.ToJson(), "{}");
  // The delete names the second put as its pred.
  const Change c = *ReadChange(doc.changes().back());
  ASSERT_EQ(c.ops.size(), 3u);
  EXPECT_EQ(c.ops[1].pred, (std::vector<OpId>{{1, 0}}));
  EXPECT_EQ(c.ops[2].action, Action::kDelete);
  EXPECT_EQ(c.ops[2].pred, (std::vector<OpId>{{2, 0}}));
}

// ---------------------------------------------------------------------------
// Conflicts.

TEST(Document, ConcurrentPutsConflictAndTheGreaterActorWins) {
  Document a, b;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", S("from a")).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Put(kRoot, "k", S("from b")).ok());
    MustCommit(tx);
  }
  Document a_only;
  Merge(a_only, a);
  Merge(a, b);
  Merge(b, a_only);
  for (Document* d : {&a, &b}) {
    EXPECT_EQ(d->ToJson(), "{\"k\":\"from b\"}");
    std::vector<Value> all = d->GetAll(kRoot, "k");
    ASSERT_EQ(all.size(), 2u);
    EXPECT_TRUE(std::get<ScalarValue>(all[0].v) == ScalarValue(S("from a")));
    EXPECT_TRUE(std::get<ScalarValue>(all[1].v) == ScalarValue(S("from b")));  // winner last
    EXPECT_EQ(d->heads().size(), 2u);
    EXPECT_TRUE(std::is_sorted(d->heads().begin(), d->heads().end()));
  }
  EXPECT_EQ(a.heads(), b.heads());
}

// Actors ranked in byte order as they come in any order, and after a batch
// that brought new actors is refused and rolled back: of many concurrent
// puts on one key, the greatest actor's wins, and a delete naming every one
// of them as a pred removes the key.
TEST(Document, ManyActorsInAnyOrderRankByTheirBytes) {
  std::mt19937 rng(7);
  std::vector<ActorId> actors;
  for (int i = 0; i < 300; ++i) {
    ActorId a(16);
    for (auto& byte : a) byte = static_cast<uint8_t>(rng());
    actors.push_back(a);
  }
  auto put = [](const ActorId& a) {
    return HandMade(a, 1, 1, {}, {PutOp(kRoot, "k", ScalarValue(ToHex(a)))});
  };
  Document doc;
  std::vector<StoredChange> first, second;
  for (size_t i = 0; i < actors.size(); ++i) (i % 2 ? first : second).push_back(put(actors[i]));
  ASSERT_TRUE(doc.ApplyChanges(first).ok());
  // New actors, then a change on an object that does not exist: all undone.
  std::vector<StoredChange> refused(second.begin(), second.begin() + 50);
  refused.push_back(HandMade(kA, 1, 1, {}, {PutOp(OpId{99, 0}, "x", ScalarValue(int64_t{1}))}));
  ASSERT_EQ(doc.ApplyChanges(refused).code(), Status::Code::kCorruption);
  ASSERT_TRUE(doc.ApplyChanges(second).ok());
  // Equal counters: the values come in the actors' byte order, the winner last.
  std::sort(actors.begin(), actors.end());
  std::vector<std::string> want, got;
  for (const ActorId& a : actors) want.push_back(ToHex(a));
  for (const Value& v : doc.GetAll(kRoot, "k"))
    got.push_back(std::get<std::string>(std::get<ScalarValue>(v.v)));
  EXPECT_EQ(got, want);
  EXPECT_EQ(ScalarAt(doc, kRoot, "k"), ScalarValue(want.back()));

  Transaction tx(doc, kB);
  ASSERT_TRUE(tx.Delete(kRoot, "k").ok());
  MustCommit(tx);
  EXPECT_FALSE(doc.Get(kRoot, "k").has_value());
  Document copy;
  Status loaded = copy.LoadIncremental(doc.Save());
  ASSERT_TRUE(loaded.ok()) << loaded.ToString();
  EXPECT_FALSE(copy.Get(kRoot, "k").has_value());
  EXPECT_EQ(copy.heads(), doc.heads());
}

TEST(Document, TheGreaterCounterWinsBeforeTheActor) {
  Document a, b;
  {
    Transaction tx(a, kB);  // the greater actor, but an earlier counter
    ASSERT_TRUE(tx.Put(kRoot, "k", S("b")).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kA);
    ASSERT_TRUE(tx.Put(kRoot, "x", int64_t{1}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "y", int64_t{1}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "k", S("a")).ok());  // counter 3
    MustCommit(tx);
  }
  Merge(a, b);
  Merge(b, a);
  EXPECT_TRUE(ScalarAt(a, kRoot, "k") == ScalarValue(S("a")));
  EXPECT_EQ(a.ToJson(), b.ToJson());
}

// A document whose root key "k" holds a conflict: 1 by kA, 2 by kB (the
// winner).
void MakeConflictOnK(Document& a) {
  Document b;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
    MustCommit(tx);
  }
  Merge(a, b);
  ASSERT_EQ(a.GetAll(kRoot, "k").size(), 2u);
}

TEST(Document, PuttingAValueResolvesAConflict) {
  Document a;
  MakeConflictOnK(a);
  if (HasFatalFailure()) return;
  Transaction tx(a, kA);
  // The winner's value, but with a conflict: as the reference does, this is
  // recorded as a delete of the losing op alone, which keeps the winner.
  ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
  EXPECT_EQ(tx.pending_ops(), 1u);
  EXPECT_EQ(a.GetAll(kRoot, "k").size(), 1u);
  MustCommit(tx);
  auto change = ReadChange(a.changes().back());
  ASSERT_TRUE(change.ok());
  const ChangeOp& op = change->ops[0];
  EXPECT_EQ(op.action, Action::kDelete);
  ASSERT_EQ(op.pred.size(), 1u);
  EXPECT_EQ(a.Get(kRoot, "k")->v, Value{ScalarValue(int64_t{2})}.v);
}

TEST(Document, PutAlwaysRecordsASetOverWhatShows) {
  Document a;
  MakeConflictOnK(a);
  if (HasFatalFailure()) return;
  auto last_op = [&] {
    auto change = ReadChange(a.changes().back());
    EXPECT_TRUE(change.ok());
    return change.ok() ? change->ops.at(0) : ChangeOp{};
  };
  {
    // The winner's value over a conflict: a set over both ops, not the
    // reference's delete of the loser.
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}, PutMode::kAlways).ok());
    EXPECT_EQ(tx.pending_ops(), 1u);
    MustCommit(tx);
    ChangeOp op = last_op();
    EXPECT_EQ(op.action, Action::kSet);
    EXPECT_EQ(op.pred.size(), 2u);
  }
  ASSERT_EQ(a.GetAll(kRoot, "k").size(), 1u);
  {
    // The value that shows alone: a set over it, where Put records nothing.
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
    EXPECT_EQ(tx.pending_ops(), 0u);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}, PutMode::kAlways).ok());
    EXPECT_EQ(tx.pending_ops(), 1u);
    MustCommit(tx);
    ChangeOp op = last_op();
    EXPECT_EQ(op.action, Action::kSet);
    EXPECT_EQ(op.pred.size(), 1u);
  }
  EXPECT_EQ(a.ToJson(), "{\"k\":2}");
  EXPECT_EQ(a.changes().size(), 4u);
}

TEST(Document, ConcurrentDeleteAndPut) {
  Document a;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
    MustCommit(tx);
  }
  Document b;
  Merge(b, a);
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Delete(kRoot, "k").ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
    MustCommit(tx);
  }
  Merge(a, b);
  Merge(b, a);
  // The delete hid only the op it saw; the concurrent put survives.
  EXPECT_EQ(a.ToJson(), "{\"k\":2}");
  EXPECT_EQ(b.ToJson(), "{\"k\":2}");
}

// ---------------------------------------------------------------------------
// Nested objects.

TEST(Document, NestedMapsListsAndText) {
  Document doc;
  Transaction tx(doc, kA);
  auto map = tx.PutObject(kRoot, "map", ObjType::kMap);
  ASSERT_TRUE(map.ok());
  auto list = tx.PutObject(*map, "list", ObjType::kList);
  ASSERT_TRUE(list.ok());
  auto inner = tx.InsertObject(*list, 0, ObjType::kMap);
  ASSERT_TRUE(inner.ok());
  ASSERT_TRUE(tx.Put(*inner, "deep", true).ok());
  auto text = tx.InsertObject(*list, 1, ObjType::kText);
  ASSERT_TRUE(text.ok());
  ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "hey").ok());

  EXPECT_EQ(doc.TypeOf(*map), ObjType::kMap);
  EXPECT_EQ(doc.TypeOf(*list), ObjType::kList);
  EXPECT_EQ(doc.TypeOf(*text), ObjType::kText);
  EXPECT_EQ(doc.Length(*list), 2u);
  EXPECT_EQ(doc.Length(*text), 3u);
  EXPECT_EQ(doc.Text(*text), "hey");
  auto first = doc.Get(*list, size_t{0});
  ASSERT_TRUE(first.has_value() && first->is_object());
  EXPECT_EQ(first->obj_type, ObjType::kMap);
  EXPECT_FALSE(doc.Get(*list, size_t{2}).has_value());
  EXPECT_EQ(doc.ToJson(), "{\"map\":{\"list\":[{\"deep\":true},\"hey\"]}}");
  MustCommit(tx);

  // Object IDs as the reference writes them, and back.
  EXPECT_EQ(doc.ExportObjId(kRoot), "_root");
  EXPECT_EQ(doc.ExportObjId(*map), "1@01010101010101010101010101010101");
  for (const ObjId& id : {kRoot, *map, *list, *inner, *text}) {
    auto back = doc.ImportObjId(doc.ExportObjId(id));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, id);
  }
}

// A change that makes a chain of `n` maps, each at key "a" of the one before.
StoredChange MapChain(size_t n) {
  std::vector<ChangeOp> ops;
  for (uint32_t i = 0; i < n; ++i)
    ops.push_back(ChangeOp{i == 0 ? kRoot : OpId{i, 0}, Key::Map("a"), false, Action::kMakeMap});
  return HandMade(kA, 1, 1, {}, std::move(ops));
}

std::string ChainJson(size_t n) {
  std::string json;
  for (size_t i = 0; i < n; ++i) json += "{\"a\":";
  json += "{}";
  return json + std::string(n, '}');
}

// Objects nest at most kMaxDepth deep, so that readers may recurse: a change
// that goes deeper is refused whole, the document left as it was; at
// kMaxDepth every reader works (recursion within the stack, ASan included).
TEST(Document, ObjectsNestAtMostMaxDepthDeep) {
  const size_t max = Document::kMaxDepth;
  Document too_deep;
  Status s = too_deep.ApplyChanges({MapChain(max + 1)});
  ASSERT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("an object nested more than 1024 objects deep"), std::string::npos)
      << s.message();
  EXPECT_TRUE(too_deep.heads().empty());
  EXPECT_EQ(too_deep.ToJson(), "{}");

  Document doc;
  s = doc.ApplyChanges({MapChain(max)});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(doc.ToJson(), ChainJson(max));
  EXPECT_EQ(doc.RootValueJson("a"), ChainJson(max - 1));
  std::optional<ValueTree> tree = doc.RootValueTree("a");
  ASSERT_TRUE(tree.has_value());
  EXPECT_TRUE(tree->Same(*doc.RootValueTree("a")));
  Document loaded;
  s = loaded.LoadIncremental(doc.Save());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(loaded.ToJson(), ChainJson(max));

  // The deepest map takes scalars, not objects: a transaction refuses the
  // op and records nothing.
  ObjId deepest = kRoot;
  for (size_t i = 0; i < max; ++i) deepest = ObjectAt(doc, deepest, "a");
  Transaction tx(doc, kB);
  auto refused = tx.PutObject(deepest, "b", ObjType::kList);
  ASSERT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "an object nested more than 1024 objects deep (the most this implementation holds)");
  ASSERT_TRUE(tx.Put(deepest, "b", int64_t{1}).ok());
  EXPECT_EQ(tx.pending_ops(), 1u);
  MustCommit(tx);
  EXPECT_EQ(ScalarAt(doc, deepest, "b"), ScalarValue(int64_t{1}));
}

TEST(Document, ImportObjIdRejectsBadIds) {
  Document doc;
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.PutObject(kRoot, "m", ObjType::kMap).ok());
    MustCommit(tx);
  }
  for (const char* bad :
       {"", "root", "@0101", "1@", "1@zz", "x@01010101010101010101010101010101",
        "0@01010101010101010101010101010101", "4294967296@01010101010101010101010101010101",
        "99999999999999999999999@01010101010101010101010101010101"}) {
    auto r = doc.ImportObjId(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  // Well-formed, but no such object or actor.
  auto r = doc.ImportObjId("2@01010101010101010101010101010101");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  r = doc.ImportObjId("1@02");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
}

TEST(Document, ReplacingAnObjectHidesIt) {
  Document doc;
  Transaction tx(doc, kA);
  auto list = tx.PutObject(kRoot, "x", ObjType::kList);
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(tx.Insert(*list, 0, int64_t{1}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "x", S("scalar")).ok());
  EXPECT_EQ(doc.ToJson(), "{\"x\":\"scalar\"}");
  MustCommit(tx);
}

// ---------------------------------------------------------------------------
// Counters.

TEST(Document, CountersAddTheirIncrements) {
  Document doc;
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "c", Counter{5}).ok());
  ASSERT_TRUE(tx.Increment(kRoot, "c", 3).ok());
  ASSERT_TRUE(tx.Increment(kRoot, "c", -10).ok());
  EXPECT_TRUE(ScalarAt(doc, kRoot, "c") == ScalarValue(Counter{-2}));
  EXPECT_EQ(doc.GetAll(kRoot, "c").size(), 1u);  // increments are not conflicts
  MustCommit(tx);
  EXPECT_EQ(doc.ToJson(), "{\"c\":-2}");
  const Change c = *ReadChange(doc.changes().back());
  ASSERT_EQ(c.ops.size(), 3u);
  EXPECT_EQ(c.ops[1].action, Action::kIncrement);
  EXPECT_TRUE(c.ops[1].value == ScalarValue(int64_t{3}));
  EXPECT_EQ(c.ops[1].pred, (std::vector<OpId>{{1, 0}}));
  EXPECT_EQ(c.ops[2].pred, (std::vector<OpId>{{1, 0}}));
}

TEST(Document, ConcurrentIncrementsSum) {
  Document a;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "c", Counter{0}).ok());
    MustCommit(tx);
  }
  Document b;
  Merge(b, a);
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Increment(kRoot, "c", 2).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Increment(kRoot, "c", 40).ok());
    MustCommit(tx);
  }
  Merge(a, b);
  Merge(b, a);
  EXPECT_EQ(a.ToJson(), "{\"c\":42}");
  EXPECT_EQ(b.ToJson(), "{\"c\":42}");
}

TEST(Document, IncrementOfANonCounterFailsAndRecordsNothing) {
  Document doc;
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "n", int64_t{5}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "s", S("x")).ok());
  auto m = tx.PutObject(kRoot, "m", ObjType::kMap);
  ASSERT_TRUE(m.ok());
  const std::string json = doc.ToJson();
  const size_t ops = tx.pending_ops();
  for (const char* key : {"n", "s", "m", "missing"}) {
    Status s = tx.Increment(kRoot, key, 1);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << key << ": " << s.ToString();
    EXPECT_EQ(tx.pending_ops(), ops) << key;
    EXPECT_EQ(doc.ToJson(), json) << key;
  }
  MustCommit(tx);
  EXPECT_EQ(ReadChange(doc.changes().back())->ops.size(), ops);
}

TEST(Document, IncrementOfAListElement) {
  Document doc;
  Transaction tx(doc, kA);
  auto list = tx.PutObject(kRoot, "l", ObjType::kList);
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(tx.Insert(*list, 0, Counter{1}).ok());
  ASSERT_TRUE(tx.Insert(*list, 1, int64_t{1}).ok());
  ASSERT_TRUE(tx.Increment(*list, 0, 9).ok());
  EXPECT_EQ(tx.Increment(*list, 1, 9).code(), Code::kInvalidArgument);
  EXPECT_EQ(tx.Increment(*list, 2, 9).code(), Code::kInvalidArgument);
  EXPECT_EQ(doc.ToJson(), "{\"l\":[10,1]}");
  EXPECT_EQ(tx.pending_ops(), 4u);
  MustCommit(tx);
}

TEST(Document, ASetHidesACounterButAnIncrementDoesNot) {
  Document a;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "c", Counter{1}).ok());
    MustCommit(tx);
  }
  Document b;
  Merge(b, a);
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "c", int64_t{100}).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Increment(kRoot, "c", 5).ok());
    MustCommit(tx);
  }
  Merge(a, b);
  Merge(b, a);
  EXPECT_EQ(a.ToJson(), "{\"c\":100}");
  EXPECT_EQ(b.ToJson(), "{\"c\":100}");
  EXPECT_EQ(a.GetAll(kRoot, "c").size(), 1u);
}

// ---------------------------------------------------------------------------
// Lists.

TEST(Document, ListInsertSetDeleteSplice) {
  Document doc;
  Transaction tx(doc, kA);
  auto list = tx.PutObject(kRoot, "l", ObjType::kList);
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(tx.Insert(*list, 0, int64_t{1}).ok());
  ASSERT_TRUE(tx.Insert(*list, 1, int64_t{3}).ok());
  ASSERT_TRUE(tx.Insert(*list, 1, int64_t{2}).ok());
  ASSERT_TRUE(tx.Insert(*list, 0, int64_t{0}).ok());
  EXPECT_EQ(doc.ToJson(), "{\"l\":[0,1,2,3]}");
  ASSERT_TRUE(tx.Set(*list, 3, S("three")).ok());
  EXPECT_EQ(doc.ToJson(), "{\"l\":[0,1,2,\"three\"]}");
  ASSERT_TRUE(tx.Delete(*list, 0).ok());
  EXPECT_EQ(doc.ToJson(), "{\"l\":[1,2,\"three\"]}");
  ASSERT_TRUE(tx.Splice(*list, 1, 1, {int64_t{7}, int64_t{8}, int64_t{9}}).ok());
  EXPECT_EQ(doc.ToJson(), "{\"l\":[1,7,8,9,\"three\"]}");
  ASSERT_TRUE(tx.Splice(*list, 3, 2, {}).ok());
  EXPECT_EQ(doc.ToJson(), "{\"l\":[1,7,8]}");
  ASSERT_TRUE(tx.Splice(*list, 3, 0, {true}).ok());  // at the end
  EXPECT_EQ(doc.ToJson(), "{\"l\":[1,7,8,true]}");
  EXPECT_EQ(doc.Length(*list), 4u);
  MustCommit(tx);

  Document other;
  Merge(other, doc);
  EXPECT_EQ(other.ToJson(), doc.ToJson());
}

TEST(Document, ListEditsOutOfBoundsFailAndChangeNothing) {
  Document doc;
  ObjId list, text;
  {
    Transaction tx(doc, kA);
    auto l = tx.PutObject(kRoot, "l", ObjType::kList);
    ASSERT_TRUE(l.ok());
    list = *l;
    ASSERT_TRUE(tx.Splice(list, 0, 0, {int64_t{1}, int64_t{2}, int64_t{3}}).ok());
    auto t = tx.PutObject(kRoot, "t", ObjType::kText);
    ASSERT_TRUE(t.ok());
    text = *t;
    ASSERT_TRUE(tx.SpliceText(text, 0, 0, "ab").ok());
    MustCommit(tx);
  }
  const Snapshot before = Snap(doc);
  Transaction tx(doc, kB);
  auto expect_invalid = [&](Status s, const char* what) {
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << what << ": " << s.ToString();
    EXPECT_EQ(tx.pending_ops(), 0u) << what;
    ExpectSame(before, doc);
  };
  expect_invalid(tx.Insert(list, 4, int64_t{9}), "insert at 4 of 3");
  expect_invalid(tx.InsertObject(list, 4, ObjType::kMap).status(), "insert object at 4 of 3");
  expect_invalid(tx.Set(list, 3, int64_t{9}), "set at 3 of 3");
  expect_invalid(tx.Delete(list, 3), "delete at 3 of 3");
  expect_invalid(tx.Delete(list, SIZE_MAX), "delete at SIZE_MAX");
  expect_invalid(tx.Increment(list, 3, 1), "increment at 3 of 3");
  expect_invalid(tx.Splice(list, 4, 0, {int64_t{9}}), "splice at 4 of 3");
  expect_invalid(tx.Splice(list, 2, 2, {int64_t{9}}), "splice deleting past the end");
  expect_invalid(tx.Splice(list, 1, SIZE_MAX, {}), "splice deleting SIZE_MAX");
  expect_invalid(tx.SpliceText(text, 3, 0, "x"), "text splice at 3 of 2");
  expect_invalid(tx.SpliceText(text, 1, 2, "x"), "text splice deleting past the end");
  // Wrong kinds of object, and objects that do not exist.
  expect_invalid(tx.Insert(kRoot, 0, int64_t{9}), "insert into a map");
  expect_invalid(tx.Splice(kRoot, 0, 0, {int64_t{9}}), "splice of a map");
  expect_invalid(tx.Put(list, "k", int64_t{9}), "put on a list");
  expect_invalid(tx.PutObject(list, "k", ObjType::kMap).status(), "put object on a list");
  expect_invalid(tx.Delete(list, "k"), "delete key of a list");
  expect_invalid(tx.Increment(list, "k", 1), "increment key of a list");
  expect_invalid(tx.Put(ObjId{99, 0}, "k", int64_t{9}), "put on a missing object");
  expect_invalid(tx.Insert(ObjId{99, 0}, 0, int64_t{9}), "insert into a missing object");
  expect_invalid(tx.Delete(ObjId{99, 0}, size_t{0}), "delete in a missing object");
  // After all that, the transaction still works and records only good edits.
  ASSERT_TRUE(tx.Insert(list, 3, int64_t{4}).ok());
  EXPECT_EQ(tx.pending_ops(), 1u);
  MustCommit(tx);
  EXPECT_EQ(doc.ToJson(), "{\"l\":[1,2,3,4],\"t\":\"ab\"}");
  EXPECT_EQ(ReadChange(doc.changes().back())->ops.size(), 1u);
}

TEST(Document, ConcurrentListInsertsKeepBothInAStableOrder) {
  Document a;
  ObjId list;
  {
    Transaction tx(a, kA);
    auto l = tx.PutObject(kRoot, "l", ObjType::kList);
    ASSERT_TRUE(l.ok());
    list = *l;
    ASSERT_TRUE(tx.Insert(list, 0, S("x")).ok());
    MustCommit(tx);
  }
  Document b;
  Merge(b, a);
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Insert(list, 1, S("from a")).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Insert(ObjectAt(b, kRoot, "l"), 1, S("from b")).ok());
    MustCommit(tx);
  }
  Merge(a, b);
  Merge(b, a);
  // Same counter; the greater actor's insert comes first.
  EXPECT_EQ(a.ToJson(), "{\"l\":[\"x\",\"from b\",\"from a\"]}");
  EXPECT_EQ(b.ToJson(), a.ToJson());
}

TEST(Document, InsertAfterAConcurrentlyDeletedElement) {
  Document a;
  {
    Transaction tx(a, kA);
    auto l = tx.PutObject(kRoot, "l", ObjType::kList);
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE(tx.Splice(*l, 0, 0, {S("a"), S("b"), S("c")}).ok());
    MustCommit(tx);
  }
  Document b;
  Merge(b, a);
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Delete(ObjectAt(a, kRoot, "l"), 1).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Insert(ObjectAt(b, kRoot, "l"), 2, S("x")).ok());
    MustCommit(tx);
  }
  Merge(a, b);
  Merge(b, a);
  // The tombstone of "b" still anchors "x" (fixture list_insert_after_deleted).
  EXPECT_EQ(a.ToJson(), "{\"l\":[\"a\",\"x\",\"c\"]}");
  EXPECT_EQ(b.ToJson(), a.ToJson());
}

// ---------------------------------------------------------------------------
// Text.

TEST(Document, SpliceTextCountsCodePoints) {
  Document doc;
  Transaction tx(doc, kA);
  auto text = tx.PutObject(kRoot, "t", ObjType::kText);
  ASSERT_TRUE(text.ok());
  // "a😀é\u0301": four code points (a, U+1F600, U+00E9, U+0301), 9 bytes.
  ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "a\xf0\x9f\x98\x80\xc3\xa9\xcc\x81").ok());
  EXPECT_EQ(tx.pending_ops(), 5u);
  EXPECT_EQ(doc.Length(*text), 4u);
  auto emoji = doc.Get(*text, size_t{1});
  ASSERT_TRUE(emoji.has_value());
  EXPECT_TRUE(std::get<ScalarValue>(emoji->v) == ScalarValue(S("\xf0\x9f\x98\x80")));
  // Delete the emoji: one element.
  ASSERT_TRUE(tx.SpliceText(*text, 1, 1, "").ok());
  EXPECT_EQ(doc.Text(*text), "a\xc3\xa9\xcc\x81");
  EXPECT_EQ(doc.Length(*text), 3u);
  // Insert at the end, by code point index.
  ASSERT_TRUE(tx.SpliceText(*text, 3, 0, "!").ok());
  EXPECT_EQ(doc.Text(*text), "a\xc3\xa9\xcc\x81!");
  EXPECT_EQ(tx.SpliceText(*text, 5, 0, "?").code(), Code::kInvalidArgument);
  // A ZWJ sequence is three code points.
  ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "👩‍👩").ok());
  EXPECT_EQ(doc.Length(*text), 7u);
  MustCommit(tx);
  EXPECT_EQ(doc.ToJson(), "{\"t\":\"👩‍👩aé\xcc\x81!\"}");
}

TEST(Document, SpliceTextRejectsInvalidUtf8) {
  Document doc;
  Transaction tx(doc, kA);
  auto text = tx.PutObject(kRoot, "t", ObjType::kText);
  ASSERT_TRUE(text.ok());
  const std::string json = doc.ToJson();
  for (const char* bad : {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf0\x9f\x98"}) {
    EXPECT_EQ(tx.SpliceText(*text, 0, 0, bad).code(), Code::kInvalidArgument);
    EXPECT_EQ(tx.pending_ops(), 1u);
    EXPECT_EQ(doc.ToJson(), json);
  }
}

TEST(Document, SpliceTextReplaces) {
  Document doc;
  Transaction tx(doc, kA);
  auto text = tx.PutObject(kRoot, "t", ObjType::kText);
  ASSERT_TRUE(text.ok());
  ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "hello world").ok());
  ASSERT_TRUE(tx.SpliceText(*text, 6, 5, "there").ok());
  EXPECT_EQ(doc.Text(*text), "hello there");
  ASSERT_TRUE(tx.SpliceText(*text, 0, 11, "").ok());
  EXPECT_EQ(doc.Text(*text), "");
  EXPECT_EQ(doc.ToJson(), "{\"t\":\"\"}");
  MustCommit(tx);
}

// ---------------------------------------------------------------------------
// Edits that record nothing.

TEST(Document, PutOfTheSameValueRecordsNothing) {
  Document doc;
  ObjId list;
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.Put(kRoot, "x", int64_t{1}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "s", S("v")).ok());
    auto l = tx.PutObject(kRoot, "l", ObjType::kList);
    ASSERT_TRUE(l.ok());
    list = *l;
    ASSERT_TRUE(tx.Insert(list, 0, 2.5).ok());
    MustCommit(tx);
  }
  const Snapshot before = Snap(doc);
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.Put(kRoot, "x", int64_t{1}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "s", S("v")).ok());
    ASSERT_TRUE(tx.Set(list, 0, 2.5).ok());
    EXPECT_EQ(tx.pending_ops(), 0u);
    auto r = tx.Commit(kAtZero);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(r->has_value());
  }
  ExpectSame(before, doc);
  // A different type with an equal-looking value is a change.
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "x", Uint{1}).ok());
  EXPECT_EQ(tx.pending_ops(), 1u);
}

TEST(Document, DeleteOfAMissingKeyRecordsNothing) {
  Document doc;
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.Put(kRoot, "gone", int64_t{1}).ok());
    ASSERT_TRUE(tx.Delete(kRoot, "gone").ok());
    MustCommit(tx);
  }
  const Snapshot before = Snap(doc);
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Delete(kRoot, "never").ok());
  ASSERT_TRUE(tx.Delete(kRoot, "gone").ok());  // deleted before: nothing left to hide
  EXPECT_EQ(tx.pending_ops(), 0u);
  auto r = tx.Commit(kAtZero);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  ExpectSame(before, doc);
}

TEST(Document, EmptyTransactionCommitsNothing) {
  Document doc;
  Transaction tx(doc, kA);
  auto r = tx.Commit(kAtZero);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(doc.changes().empty());
  EXPECT_TRUE(doc.heads().empty());
  // The document is free for the next transaction.
  Transaction next(doc, kB);
  ASSERT_TRUE(next.Put(kRoot, "k", true).ok());
  MustCommit(next);
}

TEST(Document, EditsAfterCommitOrRollbackFail) {
  Document doc;
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
  MustCommit(tx);
  EXPECT_EQ(tx.Put(kRoot, "k", int64_t{2}).code(), Code::kInvalidArgument);
  EXPECT_FALSE(tx.Commit(kAtZero).ok());
  tx.Rollback();  // a no-op once committed
  EXPECT_EQ(doc.ToJson(), "{\"k\":1}");
  EXPECT_EQ(doc.changes().size(), 1u);
}

// ---------------------------------------------------------------------------
// Rollback.

// Builds some content with actor A, committed.
void BuildBase(Document& doc) {
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "n", int64_t{1}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "c", Counter{10}).ok());
  auto m = tx.PutObject(kRoot, "m", ObjType::kMap);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(tx.Put(*m, "k", S("v")).ok());
  auto l = tx.PutObject(kRoot, "l", ObjType::kList);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE(tx.Splice(*l, 0, 0, {int64_t{1}, int64_t{2}, int64_t{3}, Counter{0}}).ok());
  auto t = tx.PutObject(kRoot, "t", ObjType::kText);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(tx.SpliceText(*t, 0, 0, "hello").ok());
  MustCommit(tx);
}

// Every kind of edit, on every kind of object.
void EditEverything(Document& doc, Transaction& tx) {
  ObjId m = ObjectAt(doc, kRoot, "m");
  ObjId l = ObjectAt(doc, kRoot, "l");
  ObjId t = ObjectAt(doc, kRoot, "t");
  ASSERT_TRUE(tx.Put(kRoot, "n", int64_t{2}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "new", S("x")).ok());
  ASSERT_TRUE(tx.Increment(kRoot, "c", 5).ok());
  ASSERT_TRUE(tx.Delete(m, "k").ok());
  ASSERT_TRUE(tx.Put(m, "k2", true).ok());
  auto nm = tx.PutObject(m, "child", ObjType::kMap);
  ASSERT_TRUE(nm.ok());
  ASSERT_TRUE(tx.Put(*nm, "deep", int64_t{1}).ok());
  auto nl = tx.PutObject(*nm, "list", ObjType::kList);
  ASSERT_TRUE(nl.ok());
  ASSERT_TRUE(tx.Insert(*nl, 0, int64_t{1}).ok());
  auto nt = tx.InsertObject(*nl, 1, ObjType::kText);
  ASSERT_TRUE(nt.ok());
  ASSERT_TRUE(tx.SpliceText(*nt, 0, 0, "inner").ok());
  ASSERT_TRUE(tx.Insert(l, 0, int64_t{0}).ok());
  ASSERT_TRUE(tx.Set(l, 1, S("one")).ok());
  ASSERT_TRUE(tx.Delete(l, 2).ok());
  ASSERT_TRUE(tx.Increment(l, 3, 7).ok());
  ASSERT_TRUE(tx.Splice(l, 1, 1, {int64_t{8}, int64_t{9}}).ok());
  ASSERT_TRUE(tx.SpliceText(t, 1, 3, "ipp😀").ok());
  ASSERT_TRUE(tx.PutObject(kRoot, "m", ObjType::kList).ok());  // replaces a map
  ASSERT_TRUE(tx.Delete(kRoot, "t").ok());
  // and a few failures along the way
  EXPECT_FALSE(tx.Insert(l, 100, int64_t{0}).ok());
  EXPECT_FALSE(tx.Increment(kRoot, "n", 1).ok());
}

TEST(Document, RollbackRestoresTheDocumentExactly) {
  Document doc;
  BuildBase(doc);
  const Snapshot before = Snap(doc);
  const std::vector<std::string> keys_before = doc.Keys(kRoot);
  {
    Transaction tx(doc, kC);  // a new actor, too
    EditEverything(doc, tx);
    EXPECT_NE(doc.ToJson(), before.json);
    EXPECT_GT(tx.pending_ops(), 20u);
    tx.Rollback();
    ExpectSame(before, doc);
    EXPECT_EQ(doc.Keys(kRoot), keys_before);
    tx.Rollback();  // twice is harmless
  }
  ExpectSame(before, doc);
  // The document works as before: a new transaction commits a change that
  // starts right after the last committed op, and others can apply it.
  {
    Transaction tx(doc, kB);
    EditEverything(doc, tx);
    MustCommit(tx);
  }
  const Change c = *ReadChange(doc.changes().back());
  EXPECT_EQ(c.start_op, before.max_op + 1);
  EXPECT_EQ(c.seq, 1u);
  EXPECT_EQ(c.deps, before.heads);
  // The rolled-back actor left no trace in the change.
  EXPECT_EQ(std::count(c.other_actors.begin(), c.other_actors.end(), kC), 0);
  Document other;
  Merge(other, doc);
  EXPECT_EQ(other.ToJson(), doc.ToJson());
  EXPECT_EQ(other.heads(), doc.heads());
}

TEST(Document, RollbackOfAFirstTransaction) {
  Document doc;
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
    auto l = tx.PutObject(kRoot, "l", ObjType::kList);
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE(tx.Insert(*l, 0, int64_t{1}).ok());
    tx.Rollback();
  }
  EXPECT_EQ(doc.ToJson(), "{}");
  EXPECT_TRUE(doc.Keys(kRoot).empty());
  EXPECT_EQ(doc.max_op(), 0u);
  // Applying a change from elsewhere still works (the actor table is sound).
  Document other;
  {
    Transaction tx(other, kB);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
    MustCommit(tx);
  }
  Merge(doc, other);
  EXPECT_EQ(doc.ToJson(), "{\"k\":2}");
}

TEST(Document, DestroyingAnUncommittedTransactionRollsBack) {
  Document doc;
  BuildBase(doc);
  const Snapshot before = Snap(doc);
  {
    Transaction tx(doc, kC);
    EditEverything(doc, tx);
  }
  ExpectSame(before, doc);
  Transaction tx(doc, kA);  // the document is free again
  ASSERT_TRUE(tx.Put(kRoot, "z", int64_t{0}).ok());
  MustCommit(tx);
}

TEST(Document, RollbackAfterConflictsRestoresThem) {
  Document a, b;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(b, kB);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
    MustCommit(tx);
  }
  Merge(a, b);
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{3}).ok());
    ASSERT_TRUE(tx.Delete(kRoot, "k").ok());
  }
  std::vector<Value> all = a.GetAll(kRoot, "k");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(std::get<ScalarValue>(all[1].v) == ScalarValue(int64_t{2}));
}

// ---------------------------------------------------------------------------
// Commit.

TEST(Document, CommitSetsSeqStartOpAndDeps) {
  Document doc;
  std::vector<ChangeHash> prev_heads;
  uint32_t prev_max = 0;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    Transaction tx(doc, kA);
    for (uint64_t i = 0; i < seq; ++i)
      ASSERT_TRUE(tx.Put(kRoot, "k" + std::to_string(i), static_cast<int64_t>(seq)).ok());
    ChangeHash h = MustCommit(tx);
    const Change c = *ReadChange(doc.changes().back());
    EXPECT_EQ(c.seq, seq);
    EXPECT_EQ(c.start_op, prev_max + 1);
    EXPECT_EQ(c.deps, prev_heads);
    EXPECT_EQ(doc.heads(), std::vector<ChangeHash>{h});
    EXPECT_EQ(doc.max_op(), prev_max + seq);
    prev_heads = doc.heads();
    prev_max = doc.max_op();
  }
  // After a concurrent change arrives, the next commit depends on both heads
  // and starts above every op in the document.
  Document other;
  {
    Transaction tx(other, kB);
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(tx.Put(kRoot, "o" + std::to_string(i), true).ok());
    MustCommit(tx);
  }
  Merge(doc, other);
  EXPECT_EQ(doc.heads().size(), 2u);
  EXPECT_EQ(doc.max_op(), 20u);
  const std::vector<ChangeHash> heads = doc.heads();
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "last", true).ok());
  MustCommit(tx);
  const Change c = *ReadChange(doc.changes().back());
  EXPECT_EQ(c.seq, 4u);
  EXPECT_EQ(c.start_op, 21u);
  EXPECT_EQ(c.deps, heads);
  EXPECT_EQ(doc.heads().size(), 1u);
}

TEST(Document, CommittedChangeIsCanonicalAndHashedOverItsBytes) {
  Document doc;
  BuildBase(doc);
  Transaction tx(doc, kB);
  EditEverything(doc, tx);
  ChangeHash h = MustCommit(tx, CommitOptions{.message = "a message", .time = 1234567890});
  const StoredChange& sc = doc.changes().back();
  EXPECT_EQ(sc.hash, h);
  Sha256Digest d = Sha256Of(ByteView(sc.bytes).subspan(8));
  EXPECT_TRUE(std::equal(d.begin(), d.end(), h.begin()));
  EXPECT_EQ(sc.change.message, "a message");
  EXPECT_EQ(sc.change.time, 1234567890);
  EXPECT_EQ(sc.change.actor, kB);
  EXPECT_TRUE(std::is_sorted(sc.change.other_actors.begin(), sc.change.other_actors.end()));
  // Decoding the bytes gives back the change, and encoding that the bytes.
  auto chunks = ReadChunks(sc.bytes);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 1u);
  auto back = DecodeChange((*chunks)[0].bytes, (*chunks)[0].hash, (*chunks)[0].body_offset);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeChange(back->change).bytes, sc.bytes);
  ASSERT_TRUE(doc.GetChange(h).has_value());
  EXPECT_EQ(doc.GetChange(h)->bytes, sc.bytes);
}

TEST(Document, AuthorGoesIntoTheExtraBytesOfTheFirstChange) {
  Document doc;
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
    MustCommit(tx, CommitOptions{.time = 0, .author = Bytes{0xaa, 0xbb, 0xcc, 0xdd}});
  }
  const Bytes expected = {0x01, 0x04, 0xaa, 0xbb, 0xcc, 0xdd};
  {
    const StoredChange& sc = doc.changes().back();
    EXPECT_EQ(sc.change.extra, expected);
    ASSERT_GE(sc.bytes.size(), expected.size());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), sc.bytes.end() - expected.size()));
  }
  // As in the reference, an actor names its author once, in its first
  // change (seq 1); later changes carry no extra bytes.
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
    MustCommit(tx, CommitOptions{.time = 0, .author = Bytes{0xaa, 0xbb, 0xcc, 0xdd}});
  }
  EXPECT_EQ(doc.changes().back().change.seq, 2u);
  EXPECT_TRUE(doc.changes().back().change.extra.empty());
  // Other documents take the author along, byte for byte.
  Document other;
  Merge(other, doc);
  EXPECT_EQ(other.changes()[0].change.extra, expected);
  EXPECT_EQ(other.heads(), doc.heads());
}

TEST(Document, LongAuthorLengthIsAUleb) {
  Document doc;
  Transaction tx(doc, kB);
  ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
  MustCommit(tx, CommitOptions{.time = 0, .author = Bytes(200, 0x42)});
  const Bytes& extra = doc.changes().back().change.extra;
  ASSERT_EQ(extra.size(), 3u + 200u);
  EXPECT_EQ(extra[0], 0x01);
  EXPECT_EQ(extra[1], 0xc8);  // 200 = c8 01
  EXPECT_EQ(extra[2], 0x01);
  EXPECT_EQ(Bytes(extra.begin() + 3, extra.end()), Bytes(200, 0x42));
}

TEST(Document, NoAuthorMeansNoExtraBytes) {
  Document doc;
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
  MustCommit(tx);
  EXPECT_TRUE(doc.changes().back().change.extra.empty());
}

// ---------------------------------------------------------------------------
// ApplyChanges.

TEST(Document, ApplyChangesIsIdempotent) {
  Document a;
  BuildBase(a);
  StoredChange c = a.changes()[0];
  Document b;
  ASSERT_TRUE(b.ApplyChanges({c, c}).ok());
  const Snapshot once = Snap(b);
  EXPECT_EQ(once.changes, 1u);
  ASSERT_TRUE(b.ApplyChanges({c}).ok());
  ASSERT_TRUE(b.ApplyChanges({c, c, c}).ok());
  ExpectSame(once, b);
  EXPECT_EQ(b.ToJson(), a.ToJson());
  EXPECT_EQ(b.heads(), a.heads());
}

TEST(Document, ApplyChangesQueuesChangesWhoseDepsAreMissing) {
  Document a;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "x", int64_t{1}).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "y", int64_t{2}).ok());
    MustCommit(tx);
  }
  const StoredChange first = a.changes()[0];
  const StoredChange second = a.changes()[1];
  Document b;
  ASSERT_TRUE(b.ApplyChanges({second}).ok());
  EXPECT_EQ(b.queued(), 1u);
  EXPECT_EQ(b.MissingDeps(), std::vector<ChangeHash>{first.hash});
  EXPECT_TRUE(b.heads().empty());
  EXPECT_TRUE(b.changes().empty());
  EXPECT_EQ(b.ToJson(), "{}");
  EXPECT_FALSE(b.GetChange(second.hash).has_value());
  // Queuing the same change again changes nothing.
  ASSERT_TRUE(b.ApplyChanges({second}).ok());
  EXPECT_EQ(b.queued(), 1u);

  ASSERT_TRUE(b.ApplyChanges({first}).ok());
  EXPECT_EQ(b.queued(), 0u);
  EXPECT_TRUE(b.MissingDeps().empty());
  EXPECT_EQ(b.ToJson(), a.ToJson());
  EXPECT_EQ(b.heads(), a.heads());
  ASSERT_EQ(b.changes().size(), 2u);
  EXPECT_EQ(b.changes()[0].hash, first.hash);  // applied in causal order
}

TEST(Document, ApplyChangesInReverseOrderInOneBatch) {
  Document a;
  for (int i = 0; i < 10; ++i) {
    Transaction tx(a, i % 2 ? kA : kB);
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{i}).ok());
    MustCommit(tx);
  }
  std::vector<StoredChange> changes = AllChanges(a);
  std::reverse(changes.begin(), changes.end());
  Document b;
  ASSERT_TRUE(b.ApplyChanges(changes).ok());
  EXPECT_EQ(b.queued(), 0u);
  EXPECT_EQ(b.ToJson(), a.ToJson());
  EXPECT_EQ(b.heads(), a.heads());
}

TEST(Document, ApplyChangesIsAtomic) {
  // Source of good changes: two from actor A (the second depends on the
  // first) and one independent one from actor B.
  Document src_a, src_b;
  {
    Transaction tx(src_a, kA);
    auto l = tx.PutObject(kRoot, "l", ObjType::kList);
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE(tx.Insert(*l, 0, int64_t{1}).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(src_a, kA);
    ASSERT_TRUE(tx.Insert(ObjectAt(src_a, kRoot, "l"), 1, int64_t{2}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "n", int64_t{5}).ok());
    MustCommit(tx);
  }
  {
    Transaction tx(src_b, kB);
    ASSERT_TRUE(tx.Put(kRoot, "b", S("bee")).ok());
    ASSERT_TRUE(tx.Put(kRoot, "n", int64_t{6}).ok());
    MustCommit(tx);
  }
  const StoredChange a1 = src_a.changes()[0], a2 = src_a.changes()[1], b1 = src_b.changes()[0];
  // A change with an op on an object that does not exist.
  const StoredChange bad = HandMade(kC, 1, 1, {}, {PutOp(ObjId{5, 0}, "x", int64_t{1})});

  // The target has content of its own and a queued change (a2 waits for a1).
  Document doc;
  {
    Transaction tx(doc, kC);
    ASSERT_TRUE(tx.Put(kRoot, "own", true).ok());
    MustCommit(tx);
  }
  ASSERT_TRUE(doc.ApplyChanges({a2}).ok());
  ASSERT_EQ(doc.queued(), 1u);
  const Snapshot before = Snap(doc);

  for (const std::vector<StoredChange>& batch : std::vector<std::vector<StoredChange>>{
           {b1, bad}, {bad, b1}, {a1, b1, bad}, {a1, bad}, {b1, a1, bad, a2}}) {
    Status s = doc.ApplyChanges(batch);
    ASSERT_FALSE(s.ok()) << "a batch with a bad change applied";
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    ExpectSame(before, doc);
    EXPECT_FALSE(doc.GetChange(a1.hash).has_value());
    EXPECT_FALSE(doc.GetChange(b1.hash).has_value());
  }
  // And the document is sound: the good changes apply, releasing the queue.
  ASSERT_TRUE(doc.ApplyChanges({b1, a1}).ok());
  EXPECT_EQ(doc.queued(), 0u);
  EXPECT_EQ(doc.changes().size(), 4u);
  // "n": A's put has counter 4, B's counter 2: A's wins.
  EXPECT_EQ(doc.ToJson(), "{\"b\":\"bee\",\"l\":[1,2],\"n\":5,\"own\":true}");
  Transaction tx(doc, kC);
  ASSERT_TRUE(tx.Put(kRoot, "after", true).ok());
  MustCommit(tx);
  EXPECT_EQ(doc.changes().back().change.seq, 2u);
  EXPECT_EQ(doc.changes().back().change.start_op, doc.max_op());
}

TEST(Document, ApplyChangesRejectsOpsOnMissingElements) {
  Document src;
  {
    Transaction tx(src, kA);
    ASSERT_TRUE(tx.PutObject(kRoot, "l", ObjType::kList).ok());
    MustCommit(tx);
  }
  const StoredChange base = src.changes()[0];
  const ObjId list{1, 0};  // in a change, actor index 0 is the author
  auto bad_ops = std::vector<std::vector<ChangeOp>>{
      // insert after an element that does not exist
      {ChangeOp{list, Key::Elem({9, 0}), true, Action::kSet, int64_t{1}, {}}},
      // set of an element that does not exist
      {ChangeOp{list, Key::Elem({9, 0}), false, Action::kSet, int64_t{1}, {{9, 0}}}},
      // a map key on a list
      {PutOp(list, "k", int64_t{1})},
      // an element key on a map
      {ChangeOp{kRoot, Key::Elem({1, 0}), true, Action::kSet, int64_t{1}, {}}},
  };
  for (size_t i = 0; i < bad_ops.size(); ++i) {
    SCOPED_TRACE(i);
    Document doc;
    ASSERT_TRUE(doc.ApplyChanges({base}).ok());
    const Snapshot before = Snap(doc);
    StoredChange bad = HandMade(kA, 2, 2, {base.hash}, bad_ops[i]);
    Status s = doc.ApplyChanges({bad});
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    ExpectSame(before, doc);
  }
}

TEST(Document, ApplyChangesRejectsASeqOutOfOrder) {
  Document doc;
  // Seq 2 with no seq 1.
  StoredChange gap = HandMade(kA, 2, 1, {}, {PutOp(kRoot, "k", int64_t{1})});
  Status s = doc.ApplyChanges({gap});
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_TRUE(doc.heads().empty());
  EXPECT_EQ(doc.queued(), 0u);
  EXPECT_EQ(doc.ToJson(), "{}");

  // Two different changes that both claim seq 1 of the same actor.
  StoredChange one = HandMade(kA, 1, 1, {}, {PutOp(kRoot, "k", int64_t{1})});
  StoredChange other_one = HandMade(kA, 1, 2, {}, {PutOp(kRoot, "j", int64_t{1})});
  ASSERT_TRUE(doc.ApplyChanges({one}).ok());
  const Snapshot before = Snap(doc);
  s = doc.ApplyChanges({other_one});
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  ExpectSame(before, doc);

  // Seq 0.
  s = doc.ApplyChanges({HandMade(kB, 0, 5, {}, {PutOp(kRoot, "z", int64_t{1})})});
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  ExpectSame(before, doc);
}

// A queued change that fails once its deps arrive is dropped, so that it
// does not refuse the changes that complete them, now or on any later try.
TEST(Document, AQueuedChangeThatFailsIsDroppedAndItsDepsApply) {
  Document src;
  {
    Transaction tx(src, kA);
    ASSERT_TRUE(tx.Put(kRoot, "a", int64_t{1}).ok());
    MustCommit(tx);
  }
  const StoredChange a1 = src.changes()[0];
  // After a1: a change whose first op is good and second names an object
  // that does not exist; one that waits for it; a good one.
  const StoredChange bad =
      HandMade(kC, 1, 2, {a1.hash},
               {PutOp(kRoot, "y", int64_t{7}), PutOp(ObjId{9, 0}, "x", int64_t{1})});
  const StoredChange after_bad = HandMade(kC, 2, 4, {bad.hash}, {PutOp(kRoot, "z", int64_t{3})});
  const StoredChange good = HandMade(kB, 1, 2, {a1.hash}, {PutOp(kRoot, "b", int64_t{2})});
  Document doc;
  std::vector<Status> dropped;
  doc.OnDropped([&](const Status& why) { dropped.push_back(why); });
  ASSERT_TRUE(doc.ApplyChanges({bad, after_bad, good}).ok());
  ASSERT_EQ(doc.queued(), 3u);

  // A call whose own change fails undoes the drop with the rest: nothing is
  // reported, and the bad change still waits.
  const StoredChange own_bad =
      HandMade(kB, 2, 3, {good.hash}, {PutOp(ObjId{9, 0}, "x", int64_t{1})});
  const Snapshot queued = Snap(doc);
  EXPECT_EQ(doc.ApplyChanges({a1, own_bad}).code(), Code::kCorruption);
  ExpectSame(queued, doc);
  EXPECT_EQ(doc.queued(), 3u);
  EXPECT_TRUE(dropped.empty());

  Status s = doc.ApplyChanges({a1});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(doc.changes().size(), 2u);
  EXPECT_FALSE(doc.HasChange(bad.hash));
  EXPECT_EQ(doc.queued(), 1u) << "the change after the bad one still waits for it";
  EXPECT_EQ(doc.MissingDeps(), std::vector<ChangeHash>{bad.hash});
  EXPECT_EQ(doc.ToJson(), "{\"a\":1,\"b\":2}") << "the bad change's first op undone";
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].code(), Code::kCorruption);
  EXPECT_NE(dropped[0].message().find(HashToHex(bad.hash)), std::string::npos)
      << dropped[0].ToString();
  // Sent again, it fails as any malformed change of a batch does.
  const Snapshot before = Snap(doc);
  EXPECT_EQ(doc.ApplyChanges({bad}).code(), Code::kCorruption);
  ExpectSame(before, doc);
  EXPECT_EQ(dropped.size(), 1u);
}

TEST(Document, ApplyChangesWhileATransactionIsOpenFails) {
  Document src;
  BuildBase(src);
  Document doc;
  Transaction tx(doc, kB);
  ASSERT_TRUE(tx.Put(kRoot, "mine", true).ok());
  Status s = doc.ApplyChanges(AllChanges(src));
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(doc.changes().empty());
  EXPECT_EQ(doc.queued(), 0u);
  MustCommit(tx);
  EXPECT_EQ(doc.ToJson(), "{\"mine\":true}");
}

TEST(Document, ChangesAppliedElsewhereGiveTheSameDocument) {
  constexpr int kDocs = 3;
  const ActorId actors[kDocs] = {kA, kB, kC};
  for (uint32_t seed : {7u, 8u, 9u}) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    Document docs[kDocs];
    {
      Transaction tx(docs[0], actors[0]);
      ASSERT_TRUE(tx.PutObject(kRoot, "list", ObjType::kList).ok());
      ASSERT_TRUE(tx.PutObject(kRoot, "text", ObjType::kText).ok());
      ASSERT_TRUE(tx.Put(kRoot, "ctr", Counter{0}).ok());
      MustCommit(tx);
    }
    for (int d = 1; d < kDocs; ++d) Merge(docs[d], docs[0]);

    for (int round = 0; round < 60; ++round) {
      int d = rng() % kDocs;
      Document& doc = docs[d];
      {
        Transaction tx(doc, actors[d]);
        ObjId list = ObjectAt(doc, kRoot, "list");
        ObjId text = ObjectAt(doc, kRoot, "text");
        int edits = 1 + rng() % 5;
        for (int e = 0; e < edits; ++e) {
          std::string key = "k" + std::to_string(rng() % 4);
          size_t len = doc.Length(list);
          switch (rng() % 7) {
            case 0:
              ASSERT_TRUE(tx.Put(kRoot, key, int64_t(rng() % 100)).ok());
              break;
            case 1:
              ASSERT_TRUE(tx.Delete(kRoot, key).ok());
              break;
            case 2:
              ASSERT_TRUE(tx.Insert(list, rng() % (len + 1), int64_t(rng() % 100)).ok());
              break;
            case 3:
              if (len) {
                ASSERT_TRUE(tx.Delete(list, rng() % len).ok());
              }
              break;
            case 4:
              if (len) {
                ASSERT_TRUE(tx.Set(list, rng() % len, S("s")).ok());
              }
              break;
            case 5: {
              size_t tl = doc.Length(text);
              size_t at = rng() % (tl + 1);
              size_t del = std::min<size_t>(rng() % 3, tl - at);
              ASSERT_TRUE(tx.SpliceText(text, at, del, rng() % 2 ? "ab" : "😀").ok());
              break;
            }
            case 6:
              ASSERT_TRUE(tx.Increment(kRoot, "ctr", 1 + rng() % 5).ok());
              break;
          }
        }
        ASSERT_TRUE(tx.Commit(CommitOptions{.time = round}).ok());
      }
      if (rng() % 3 == 0) {
        int from = rng() % kDocs, to = rng() % kDocs;
        if (from != to) Merge(docs[to], docs[from]);
      }
    }
    for (int i = 0; i < kDocs; ++i)
      for (int j = 0; j < kDocs; ++j)
        if (i != j) Merge(docs[i], docs[j]);
    for (int d = 1; d < kDocs; ++d) {
      EXPECT_EQ(docs[d].ToJson(), docs[0].ToJson());
      EXPECT_EQ(docs[d].heads(), docs[0].heads());
      EXPECT_EQ(docs[d].changes().size(), docs[0].changes().size());
    }
    // A fresh document given every change in reverse gets there too.
    std::vector<StoredChange> all = AllChanges(docs[0]);
    std::reverse(all.begin(), all.end());
    Document fresh;
    ASSERT_TRUE(fresh.ApplyChanges(all).ok());
    EXPECT_EQ(fresh.ToJson(), docs[0].ToJson());
    EXPECT_EQ(fresh.heads(), docs[0].heads());
    // And through bytes: LoadIncremental of the concatenated chunks.
    Bytes file;
    for (const StoredChange& sc : docs[1].changes()) Append(file, sc.bytes);
    Document loaded;
    ASSERT_TRUE(loaded.LoadIncremental(file).ok());
    EXPECT_EQ(loaded.ToJson(), docs[0].ToJson());
    EXPECT_EQ(loaded.heads(), docs[0].heads());
  }
}

// ---------------------------------------------------------------------------
// Files from the reference (fixtures/valid): change chunks, compressed or
// out of order, and document chunks. Expected JSON, heads and change counts
// from JSON.stringify(doc), A.getHeads and A.getAllChanges after A.load with
// @automerge/automerge 3.5.0.

TEST(Document, LoadsValidFixtures) {
  struct Case {
    const char* file;
    const char* json;  // nullptr: not comparable (the exemplar has bytes and u64)
    const char* heads;
    size_t changes;
  } cases[] = {
      {"counter_value_is_ok.automerge", "{\"a\":2000}",
       "d473daa6f553b7786d5ff0e300b2d64b7fb2f043e2e177f26408a589705e1547", 1},
      {"exemplar.automerge", nullptr,
       "3df6f946d47c57c7fa84fccc3f72c2301c94d6c7d3a79bb6267c315b3d2d364c", 1},
      {"list_concurrent_inserts.automerge", "{\"list\":[\"from_b\",\"from_a\"]}",
       "c7d8d1825d7062a28b8157199c46882f876c583abea895b7b75cb779a787a303", 2},
      {"list_insert_after_deleted.automerge", "{\"list\":[\"a\",\"x\",\"c\"]}",
       "d0dee650185d7c681be03aef28c96b6810d85ab17e469c8da34300c966eaa76e", 1},
      {"list_sequential.automerge", "{\"list\":[\"a\",\"b\",\"c\"]}",
       "b60ca778727754df8ce03c61589b1aa1294e72f67d125586bf8993b270e88a74", 1},
      {"list_with_delete.automerge", "{\"list\":[\"a\",\"c\"]}",
       "e612e87bba44a87a0bb721877cc69344ae7ba81648a8f531790abf3baeb8a7ee", 1},
      {"map_conflict.automerge", "{\"x\":\"from_b\"}",
       "04f3bdbe22b3e1491e54c3a485f95c7bc0ae78421503ab0ec446ce9f16258a18,"
       "bd9944359ec8d4bdd55dcf0f0d35c4a00725291e28f7075df46765c0586d2798",
       2},
      {"map_delete.automerge", "{}",
       "56805a5e3ee43f77c0a0cc2ea4e874c7b1033cf27640f1db3b20280ef8454642", 1},
      {"text_sequential.automerge", "{\"text\":\"Hello, World!\"}",
       "28261657ecf200e9330bd662f89527d85980421db00fbff6acabb2a64c8fa5ea", 1},
      {"two_change_chunks.automerge", "{\"a\":{\"a\":\"b\"}}",
       "a7e727d50d6fdc1419e018cdce333683f48b609bf30f5b4b3a613ba35d6b1dc9", 2},
      {"two_change_chunks_compressed.automerge", "{\"a\":{\"a\":\"b\"}}",
       "a7e727d50d6fdc1419e018cdce333683f48b609bf30f5b4b3a613ba35d6b1dc9", 2},
      {"two_change_chunks_out_of_order.automerge", "{\"a\":{\"a\":\"b\"}}",
       "a7e727d50d6fdc1419e018cdce333683f48b609bf30f5b4b3a613ba35d6b1dc9", 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    Bytes bytes = ReadFile(std::filesystem::path(ETHERPLY_FIXTURES) / "valid" / c.file);
    ASSERT_FALSE(bytes.empty());
    Document doc;
    Status s = doc.LoadIncremental(bytes);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (c.json) {
      EXPECT_EQ(doc.ToJson(), c.json);
    }
    std::string heads;
    for (const ChangeHash& h : doc.heads()) heads += (heads.empty() ? "" : ",") + HashToHex(h);
    EXPECT_EQ(heads, c.heads);
    EXPECT_EQ(doc.changes().size(), c.changes);
    EXPECT_EQ(doc.queued(), 0u);
  }
}

TEST(Document, LoadIncrementalOfGarbageChangesNothing) {
  Document doc;
  BuildBase(doc);
  const Snapshot before = Snap(doc);
  Bytes file = doc.changes()[0].bytes;
  file.push_back(0x85);  // a chunk cut short after a good one
  EXPECT_FALSE(doc.LoadIncremental(file).ok());
  ExpectSame(before, doc);
  EXPECT_FALSE(doc.LoadIncremental(Bytes{1, 2, 3}).ok());
  ExpectSame(before, doc);
}

}  // namespace
}  // namespace etherply::automerge
