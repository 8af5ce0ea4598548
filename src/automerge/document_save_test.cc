// Saving documents (Document::Save, DocumentChunkWriter). The reference is
// the judge of the bytes (tests/interop/save_test.mjs); here a saved document
// must load back to the same document (JSON, heads, the changes with their
// exact bytes, in the same order) and save again to the same bytes, for every
// kind of op the op set keeps, and the loader must reject what we wrote once
// it is damaged.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <unordered_set>
#include <string>
#include <vector>

#include "automerge/change.h"
#include "automerge/chunk.h"
#include "automerge/document.h"
#include "automerge/document_chunk.h"
#include "automerge/transaction.h"
#include "base/coding.h"

namespace etherply::automerge {
namespace {

const ActorId kA(16, 0x01);
const ActorId kB(16, 0xfe);
const ActorId kC(3, 0x77);  // actors need not be 16 bytes
const CommitOptions kAtZero{.time = 0};

void Commit(Transaction& tx, const CommitOptions& options = kAtZero) {
  auto r = tx.Commit(options);
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status().ToString();
}

std::vector<StoredChange> AllChanges(const Document& d) { return {d.changes().begin(), d.changes().end()}; }

void Merge(Document& to, const Document& from) {
  Status s = to.ApplyChanges(AllChanges(from));
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// Saves `doc`, loads the bytes into a fresh document and checks that it is
// the same document and saves to the same bytes. Returns the bytes.
Bytes ExpectRoundTrip(const Document& doc) {
  Bytes saved = doc.Save();
  Document loaded;
  Status s = loaded.LoadIncremental(saved);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(loaded.ToJson(), doc.ToJson());
  EXPECT_EQ(loaded.heads(), doc.heads());
  EXPECT_EQ(loaded.queued(), doc.queued());
  EXPECT_EQ(loaded.max_op(), doc.max_op());
  EXPECT_EQ(loaded.changes().size(), doc.changes().size());
  for (size_t i = 0; i < std::min(loaded.changes().size(), doc.changes().size()); ++i) {
    EXPECT_EQ(loaded.changes()[i].hash, doc.changes()[i].hash) << "change " << i;
    EXPECT_EQ(loaded.changes()[i].bytes, doc.changes()[i].bytes) << "change " << i;
  }
  EXPECT_EQ(loaded.Save(), saved) << "a loaded document saves differently";
  return saved;
}

// The specs (deflate bit included) of a saved document's change and op
// columns.
std::vector<uint32_t> ColumnSpecs(const Bytes& saved) {
  Reader file(saved);
  auto chunk = ReadChunk(file);
  EXPECT_TRUE(chunk.ok());
  Reader r(chunk->body());
  uint64_t nactors = *r.Uleb();
  for (uint64_t i = 0; i < nactors; ++i) (void)r.LengthPrefixed();
  (void)r.Take(32 * *r.Uleb());
  std::vector<uint32_t> specs;
  for (int part = 0; part < 2; ++part) {
    uint64_t n = *r.Uleb();
    for (uint64_t i = 0; i < n; ++i) {
      specs.push_back(*r.Uleb32());
      (void)r.Uleb();
    }
  }
  return specs;
}

TEST(DocumentSave, EmptyDocumentIsTheReferencesFourteenBytes) {
  Document doc;
  Bytes expected = {0x85, 0x6f, 0x4a, 0x83, 0xb8, 0x1a, 0x95, 0x44, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(doc.Save(), expected);
  ExpectRoundTrip(doc);
}

TEST(DocumentSave, MapsNestedObjectsAndEveryScalarType) {
  Document doc;
  Transaction tx(doc, kA);
  ASSERT_TRUE(tx.Put(kRoot, "null", std::monostate{}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "bool", true).ok());
  ASSERT_TRUE(tx.Put(kRoot, "uint", Uint{UINT64_MAX}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "int", int64_t{-5}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "f64", 0.25).ok());
  ASSERT_TRUE(tx.Put(kRoot, "str", std::string("é\xF0\x9F\x98\x80")).ok());
  ASSERT_TRUE(tx.Put(kRoot, "bytes", Bytes{0, 1, 255}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "ts", Timestamp{-1}).ok());
  auto map = tx.PutObject(kRoot, "map", ObjType::kMap);
  ASSERT_TRUE(map.ok());
  auto list = tx.PutObject(*map, "list", ObjType::kList);
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(tx.Insert(*list, 0, int64_t{1}).ok());
  auto inner = tx.InsertObject(*list, 1, ObjType::kMap);
  ASSERT_TRUE(inner.ok());
  ASSERT_TRUE(tx.Put(*inner, "z", std::string("deep")).ok());
  // Keys in UTF-8 byte order, not UTF-16 order.
  ASSERT_TRUE(tx.Put(kRoot, "\xEF\xBD\xA1", int64_t{1}).ok());
  ASSERT_TRUE(tx.Put(kRoot, "\xF0\x9F\x98\x80", int64_t{2}).ok());
  Commit(tx, CommitOptions{.message = "first", .time = 1234567, .author = Bytes{0xaa, 0xbb}});
  ExpectRoundTrip(doc);
}

TEST(DocumentSave, DeletedElementsAndObjectsStayAsTombstones) {
  Document doc;
  {
    Transaction tx(doc, kA);
    auto list = tx.PutObject(kRoot, "list", ObjType::kList);
    ASSERT_TRUE(list.ok());
    ASSERT_TRUE(tx.Splice(*list, 0, 0, {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}}).ok());
    auto gone = tx.PutObject(kRoot, "gone", ObjType::kMap);
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE(tx.Put(*gone, "k", int64_t{1}).ok());
    Commit(tx);
  }
  {
    Transaction tx(doc, kA);
    auto list = doc.Get(kRoot, "list");
    ObjId l = std::get<ObjId>(list->v);
    ASSERT_TRUE(tx.Delete(l, 1).ok());
    ASSERT_TRUE(tx.Delete(l, 0).ok());
    ASSERT_TRUE(tx.Set(l, 1, int64_t{40}).ok());  // an overwrite: the old value hidden
    ASSERT_TRUE(tx.Delete(kRoot, "gone").ok());
    Commit(tx);
  }
  EXPECT_EQ(doc.ToJson(), R"({"list":[3,40]})");
  ExpectRoundTrip(doc);
}

TEST(DocumentSave, ConflictsAndConcurrentInsertsFromThreeActors) {
  Document a, b, c;
  for (auto [doc, actor] : {std::pair{&a, kA}, {&b, kB}, {&c, kC}}) {
    Transaction tx(*doc, actor);
    ASSERT_TRUE(tx.Put(kRoot, "x", std::string(1, static_cast<char>('a' + actor[0] % 7))).ok());
    Commit(tx);
  }
  Merge(a, b);
  Merge(a, c);
  EXPECT_EQ(a.GetAll(kRoot, "x").size(), 3u);
  {
    Transaction tx(a, kA);
    auto text = tx.PutObject(kRoot, "t", ObjType::kText);
    ASSERT_TRUE(text.ok());
    ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "hello").ok());
    Commit(tx);
  }
  Merge(b, a);
  for (auto [doc, actor] : {std::pair{&a, kA}, {&b, kB}}) {
    ObjId t = std::get<ObjId>(doc->Get(kRoot, "t")->v);  // actor indices are per document
    Transaction tx(*doc, actor);
    ASSERT_TRUE(tx.SpliceText(t, 2, 1, actor == kA ? "AA" : "BB").ok());
    Commit(tx);
  }
  Merge(a, b);
  ExpectRoundTrip(a);
}

TEST(DocumentSave, CountersKeepTheirIncrements) {
  Document a, b;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "c", Counter{10}).ok());
    auto list = tx.PutObject(kRoot, "l", ObjType::kList);
    ASSERT_TRUE(list.ok());
    ASSERT_TRUE(tx.Insert(*list, 0, Counter{0}).ok());
    Commit(tx);
  }
  Merge(b, a);
  ObjId l = std::get<ObjId>(a.Get(kRoot, "l")->v);
  for (auto [doc, actor, by] : {std::tuple{&a, kA, int64_t{5}}, {&b, kB, int64_t{-3}}}) {
    Transaction tx(*doc, actor);
    ASSERT_TRUE(tx.Increment(kRoot, "c", by).ok());
    ASSERT_TRUE(tx.Increment(l, 0, by).ok());
    Commit(tx);
  }
  Merge(a, b);
  EXPECT_EQ(a.ToJson(), R"({"c":12,"l":[2]})");
  ExpectRoundTrip(a);
}

// Marks cannot be made through a Transaction: the change is built by hand,
// as the reference writes `A.mark(d, ["t"], {start: 0, end: 2}, "bold", true)`.
TEST(DocumentSave, MarksKeepNameValueAndExpand) {
  Change c;
  c.actor = kA;
  c.seq = 1;
  c.start_op = 1;
  auto insert = [](OpId after, Action action, ScalarValue v) {
    ChangeOp op{OpId{1, 0}, Key::Elem(after), true, action, std::move(v)};
    return op;
  };
  c.ops.push_back(ChangeOp{kRoot, Key::Map("t"), false, Action::kMakeText, {}});
  c.ops.push_back(insert({}, Action::kSet, std::string("a")));
  c.ops.push_back(insert({2, 0}, Action::kSet, std::string("b")));
  ChangeOp begin = insert({}, Action::kMark, true);
  begin.mark_name = "bold";
  begin.expand = true;
  c.ops.push_back(begin);
  ChangeOp end = insert({3, 0}, Action::kMark, std::monostate{});
  end.expand = true;
  c.ops.push_back(end);
  Document doc;
  ASSERT_TRUE(doc.ApplyChanges({EncodeChange(std::move(c))}).ok());
  EXPECT_EQ(doc.ToJson(), R"({"t":"ab"})");
  Bytes saved = ExpectRoundTrip(doc);
  std::vector<uint32_t> specs = ColumnSpecs(saved);
  EXPECT_NE(std::find(specs.begin(), specs.end(), 148u), specs.end()) << "no expand column";
  EXPECT_NE(std::find(specs.begin(), specs.end(), 165u), specs.end()) << "no mark name column";
}

TEST(DocumentSave, LongColumnsAreDeflatedShortOnesAreNot) {
  Document doc;
  {
    Transaction tx(doc, kA);
    auto text = tx.PutObject(kRoot, "t", ObjType::kText);
    ASSERT_TRUE(text.ok());
    ASSERT_TRUE(tx.SpliceText(*text, 0, 0, "short").ok());
    Commit(tx);
  }
  for (uint32_t spec : ColumnSpecs(doc.Save())) EXPECT_EQ(spec & 8, 0u) << spec;

  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += static_cast<char>('a' + (i * 7) % 26);
  {
    Transaction tx(doc, kA);
    ObjId t = std::get<ObjId>(doc.Get(kRoot, "t")->v);
    ASSERT_TRUE(tx.SpliceText(t, 0, 0, long_text).ok());
    Commit(tx);
  }
  Bytes saved = ExpectRoundTrip(doc);
  std::vector<uint32_t> specs = ColumnSpecs(saved);
  EXPECT_NE(std::find(specs.begin(), specs.end(), 87u | 8), specs.end())
      << "the 405-byte value column is not deflated";
}

TEST(DocumentSave, ChangeOrderSurvivesLoading) {
  // Applied a, b (on a), c (concurrent): a queue-order load would give a, c, b.
  Document a, c;
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "a", int64_t{1}).ok());
    Commit(tx);
  }
  {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "b", int64_t{2}).ok());
    Commit(tx);
  }
  {
    Transaction tx(c, kC);
    ASSERT_TRUE(tx.Put(kRoot, "c", int64_t{3}).ok());
    Commit(tx);
  }
  Merge(a, c);
  ExpectRoundTrip(a);
}

TEST(DocumentSave, ManyChangesAndActorsRoundTrip) {
  Document docs[3];
  const ActorId actors[3] = {kA, kB, kC};
  for (int round = 0; round < 40; ++round) {
    int who = round % 3;
    {
      Transaction tx(docs[who], actors[who]);
      ASSERT_TRUE(tx.Put(kRoot, "k" + std::to_string(round % 5), int64_t{round}).ok());
      if (!docs[who].Get(kRoot, "list")) {
        ASSERT_TRUE(tx.PutObject(kRoot, "list", ObjType::kList).ok());
      } else {
        ObjId l = std::get<ObjId>(docs[who].Get(kRoot, "list")->v);
        ASSERT_TRUE(tx.Insert(l, 0, int64_t{round}).ok());
      }
      Commit(tx, CommitOptions{.message = round % 4 ? "" : "m", .time = round * 1000});
    }
    if (round % 4 == 3) Merge(docs[(who + 1) % 3], docs[who]);
  }
  Merge(docs[0], docs[1]);
  Merge(docs[0], docs[2]);
  ExpectRoundTrip(docs[0]);
}

// One random transaction by `actor` on `doc`: puts, counters and their
// increments, deletes, list inserts, sets and deletes, text splices long
// enough to fill and split blocks, nested objects. The same rng state gives
// the same edits on documents with the same content.
void RandomEdit(Document& doc, const ActorId& actor, std::mt19937& rng) {
  Transaction tx(doc, actor);
  auto object = [&](const char* key) -> std::optional<ObjId> {
    auto v = doc.Get(kRoot, key);
    if (!v || !v->is_object()) return std::nullopt;
    return std::get<ObjId>(v->v);
  };
  for (int n = 1 + rng() % 4; n > 0; --n) {
    std::string key = "k" + std::to_string(rng() % 4);
    switch (rng() % 8) {
      case 0:
        ASSERT_TRUE(tx.Put(kRoot, key, int64_t(rng() % 100)).ok());
        break;
      case 1:
        if (auto v = doc.Get(kRoot, "c"); v && !v->is_object() &&
                                          std::holds_alternative<Counter>(std::get<ScalarValue>(v->v))) {
          ASSERT_TRUE(tx.Increment(kRoot, "c", int64_t(rng() % 7) - 3).ok());
        } else {
          ASSERT_TRUE(tx.Put(kRoot, "c", Counter{int64_t(rng() % 10)}).ok());
        }
        break;
      case 2:
        if (doc.Get(kRoot, key)) {
          ASSERT_TRUE(tx.Delete(kRoot, key).ok());
        }
        break;
      case 3:
      case 4: {
        auto text = object("text");
        if (!text) {
          ASSERT_TRUE(tx.PutObject(kRoot, "text", ObjType::kText).ok());
          break;
        }
        size_t len = doc.Length(*text);
        size_t at = len ? rng() % (len + 1) : 0;
        size_t del = at < len ? rng() % std::min<size_t>(len - at, 20) : 0;
        ASSERT_TRUE(tx.SpliceText(*text, at, del, std::string(rng() % 150, char('a' + rng() % 26))).ok());
        break;
      }
      default: {
        auto list = object("list");
        if (!list) {
          ASSERT_TRUE(tx.PutObject(kRoot, "list", ObjType::kList).ok());
          break;
        }
        size_t len = doc.Length(*list);
        size_t what = rng() % 4;
        if (what == 0 && len) {
          ASSERT_TRUE(tx.Set(*list, rng() % len, int64_t(rng() % 100)).ok());
        } else if (what == 1 && len) {
          ASSERT_TRUE(tx.Delete(*list, rng() % len).ok());
        } else if (what == 2) {
          auto inner = tx.InsertObject(*list, len ? rng() % (len + 1) : 0, ObjType::kMap);
          ASSERT_TRUE(inner.ok());
          ASSERT_TRUE(tx.Put(*inner, "x", int64_t(rng() % 100)).ok());
        } else {
          ASSERT_TRUE(tx.Insert(*list, len ? rng() % (len + 1) : 0, Counter{1}).ok());
        }
      }
    }
  }
  auto r = tx.Commit(kAtZero);  // nothing to commit (a put of the value there) is fine
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

// A loaded document's op set is built from the document's ops, not
// replayed: it must be the same op set. Seen through everything that reads
// it: the JSON now and at earlier points of the history, and what the same
// edits afterwards do (the same change bytes, the same JSON), for random
// documents of three actors with concurrent edits merged.
TEST(DocumentSave, ALoadedDocumentIsTheSameOpSetAsTheReplayedOne) {
  const ActorId actors[3] = {kA, kB, kC};
  for (uint32_t seed = 1; seed <= 25; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    Document docs[3];
    for (int round = 0; round < 60; ++round) {
      int who = rng() % 3;
      RandomEdit(docs[who], actors[who], rng);
      if (rng() % 4 == 0) Merge(docs[rng() % 3], docs[who]);
    }
    Merge(docs[0], docs[1]);
    Merge(docs[0], docs[2]);
    const Document& doc = docs[0];
    Document replayed, loaded;
    Merge(replayed, doc);
    ASSERT_TRUE(loaded.LoadIncremental(doc.Save()).ok());
    ASSERT_EQ(loaded.ToJson(), replayed.ToJson());
    for (size_t i = 0; i < doc.changes().size(); i += 7) {
      auto at = replayed.ClockAt({doc.changes().hash(i)});
      auto at_loaded = loaded.ClockAt({doc.changes().hash(i)});
      ASSERT_TRUE(at.ok() && at_loaded.ok());
      ASSERT_EQ(loaded.ToJson(&*at_loaded), replayed.ToJson(&*at)) << "at change " << i;
    }
    for (int round = 0; round < 20; ++round) {
      std::mt19937 same = rng;
      RandomEdit(replayed, actors[round % 3], rng);
      RandomEdit(loaded, actors[round % 3], same);
      ASSERT_EQ(loaded.heads(), replayed.heads()) << "round " << round;
      ASSERT_EQ(loaded.ToJson(), replayed.ToJson()) << "round " << round;
    }
  }
}

TEST(DocumentSave, QueuedChangesFollowTheDocumentChunk) {
  Document a;
  for (int i = 0; i < 2; ++i) {
    Transaction tx(a, kA);
    ASSERT_TRUE(tx.Put(kRoot, "x", int64_t{i}).ok());
    Commit(tx);
  }
  Document b;
  ASSERT_TRUE(b.ApplyChanges({a.changes()[1]}).ok());  // its dep is missing
  ASSERT_EQ(b.queued(), 1u);
  Bytes saved = b.Save();
  Document loaded;
  ASSERT_TRUE(loaded.LoadIncremental(saved).ok());
  EXPECT_EQ(loaded.queued(), 1u);
  EXPECT_EQ(loaded.MissingDeps(), b.MissingDeps());
  ASSERT_TRUE(loaded.ApplyChanges({a.changes()[0]}).ok());
  EXPECT_EQ(loaded.ToJson(), R"({"x":1})");
}

// A document op, owned (DocumentOp refers to the reader's buffers).
struct OwnedOp {
  OpId obj;
  std::optional<std::string> prop;
  OpId elem, id;
  bool insert;
  Action action;
  ScalarValue value;
  std::vector<OpId> succ;
  bool expand;
  std::optional<std::string> mark_name;

  explicit OwnedOp(const DocumentOp& op)
      : obj(op.obj), elem(op.elem), id(op.id), insert(op.insert), action(op.action),
        value(op.value), succ(op.succ.begin(), op.succ.end()), expand(op.expand),
        mark_name(op.mark_name) {
    if (op.prop) prop = std::string(*op.prop);
  }
  DocumentOp View() const {
    std::optional<std::string_view> p;
    if (prop) p = *prop;
    return DocumentOp{obj, p, elem, id, insert, action, value, succ, expand, mark_name};
  }
};

struct Visited {
  std::vector<ActorId> actors;
  size_t changes_before_ops = 0;
  std::vector<OwnedOp> ops;
};

Visited VisitSaved(const Bytes& saved) {
  Reader r(saved);
  auto chunk = ReadChunk(r);
  EXPECT_TRUE(chunk.ok());
  Visited v;
  size_t changes = 0;
  DocumentOps visitor{[&](std::span<const ActorId> actors) {
                        v.actors.assign(actors.begin(), actors.end());
                        v.changes_before_ops = changes;
                        return Status::Ok();
                      },
                      [&](const DocumentOp& op) {
                        v.ops.emplace_back(op);
                        return Status::Ok();
                      }};
  Status s = ForEachDocumentChange(
      *chunk,
      [&](StoredChange&) {
        ++changes;
        return Status::Ok();
      },
      &visitor);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return v;
}

// The document chunk of `doc`'s changes with these ops, in this order,
// written as given (the writer checks nothing).
Bytes Rewrite(const Document& doc, const std::vector<ActorId>& actors, const std::vector<OwnedOp>& ops) {
  DocumentChunkWriter w(actors);
  const ChangeLog& log = doc.changes();
  std::vector<std::vector<uint64_t>> deps(log.size());
  for (size_t i = 0; i < log.size(); ++i) {
    StoredChange sc = log[i];
    uint32_t actor = static_cast<uint32_t>(std::find(actors.begin(), actors.end(), sc.change.actor) - actors.begin());
    for (uint32_t d : log.deps(i)) deps[i].push_back(d);
    std::optional<std::string_view> message;
    if (!sc.change.message.empty() || sc.change.empty_message) message = sc.change.message;
    w.AddChange(DocumentChange{actor, sc.change.seq, log.max_op(i), sc.change.time, message, deps[i],
                               sc.change.extra});
  }
  for (const OwnedOp& op : ops) w.AddOp(op.View());
  std::vector<std::pair<ChangeHash, uint64_t>> heads;
  for (const ChangeHash& h : doc.heads()) heads.emplace_back(h, *doc.IndexOf(h));
  return w.Finish(heads);
}

// After the changes (their hashes checked), a loader is given the chunk's
// sorted actors and then every op in document order: the root's keys, then
// each object's, a list's elements in order, each after its origin.
TEST(DocumentSave, OpsComeAfterTheChangesInDocumentOrder) {
  Document doc;
  ObjId text, list;
  {
    Transaction tx(doc, kB);
    text = *tx.PutObject(kRoot, "text", ObjType::kText);
    ASSERT_TRUE(tx.SpliceText(text, 0, 0, "hello").ok());
    list = *tx.PutObject(kRoot, "list", ObjType::kList);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(tx.Insert(list, i, int64_t{i}).ok());
    Commit(tx);
  }
  {
    Transaction tx(doc, kA);  // a second actor, first in byte order
    ASSERT_TRUE(tx.SpliceText(text, 1, 2, "EY!").ok());
    ASSERT_TRUE(tx.Set(list, 1, std::string("one")).ok());
    Commit(tx);
  }
  Visited v = VisitSaved(doc.Save());
  EXPECT_EQ(v.actors, (std::vector<ActorId>{kA, kB}));
  EXPECT_EQ(v.changes_before_ops, 2u);
  // 2 objects + 5 + 3 characters + 3 list elements + 1 set; the 2 deletes
  // appear only as successors.
  ASSERT_EQ(v.ops.size(), 14u);
  EXPECT_EQ(v.ops[0].prop, "list");
  EXPECT_EQ(v.ops[1].prop, "text");
  std::unordered_set<OpId, OpIdHash> seen;
  size_t successors = 0;
  for (size_t i = 2; i < v.ops.size(); ++i) {
    const OwnedOp& op = v.ops[i];
    EXPECT_FALSE(op.prop);
    EXPECT_TRUE(op.elem.is_root() || seen.count(op.elem)) << "op " << i << " before its element";
    const OpId& prev = v.ops[i - 1].obj;  // objects in Lamport order
    if (i > 2 && op.obj != prev) {
      EXPECT_TRUE(prev.counter < op.obj.counter ||
                  (prev.counter == op.obj.counter && prev.actor < op.obj.actor));
    }
    seen.insert(op.id);
    successors += op.succ.size();
  }
  EXPECT_EQ(successors, 3u);  // two characters deleted, one list value overwritten
  // Written back as they came, they load as the document.
  Document loaded;
  Status s = loaded.LoadIncremental(Rewrite(doc, v.actors, v.ops));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(loaded.ToJson(), doc.ToJson());
  EXPECT_EQ(loaded.Save(), doc.Save());
}

// The op set is built from the document's order, so an order that replaying
// the changes would not give is corruption, even though every change hashes
// right: the document stays empty.
TEST(DocumentSave, OpsOutOfDocumentOrderAreRejected) {
  Document doc;
  ObjId text, list;
  {
    Transaction tx(doc, kA);
    text = *tx.PutObject(kRoot, "text", ObjType::kText);
    ASSERT_TRUE(tx.SpliceText(text, 0, 0, "ab").ok());
    list = *tx.PutObject(kRoot, "list", ObjType::kList);
    ASSERT_TRUE(tx.Insert(list, 0, int64_t{1}).ok());
    ASSERT_TRUE(tx.Insert(list, 1, int64_t{2}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{1}).ok());
    Commit(tx);
  }
  Document other;
  Merge(other, doc);
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.SpliceText(text, 0, 0, "x").ok());
    ASSERT_TRUE(tx.Set(list, 0, int64_t{10}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "k", int64_t{2}).ok());
    ASSERT_TRUE(tx.Put(kRoot, "c", int64_t{1}).ok());
    Commit(tx);
  }
  {
    Transaction tx(other, kB);  // concurrently, at the same places
    ASSERT_TRUE(tx.SpliceText(text, 0, 0, "y").ok());
    ASSERT_TRUE(tx.Put(kRoot, "c", int64_t{2}).ok());
    Commit(tx);
  }
  Merge(doc, other);
  Visited v = VisitSaved(doc.Save());
  // Where each op is: find by what it is.
  auto index_of = [&](auto pred) {
    for (size_t i = 0; i < v.ops.size(); ++i)
      if (pred(v.ops[i])) return i;
    ADD_FAILURE() << "no such op";
    return size_t{0};
  };
  auto char_op = [&](const char* c) {
    return index_of([&](const OwnedOp& op) {
      return op.insert && std::holds_alternative<std::string>(op.value) && std::get<std::string>(op.value) == c;
    });
  };
  auto moved = [&](size_t from, size_t to) {
    std::vector<OwnedOp> ops = v.ops;
    OwnedOp op = ops[from];
    ops.erase(ops.begin() + from);
    ops.insert(ops.begin() + to, op);
    return ops;
  };
  auto swapped = [&](size_t a, size_t b) {
    std::vector<OwnedOp> ops = v.ops;
    std::swap(ops[a], ops[b]);
    return ops;
  };
  size_t root_k = index_of([](const OwnedOp& op) { return op.prop == "k"; });
  size_t root_c = index_of([](const OwnedOp& op) { return op.prop == "c"; });
  size_t list_set = index_of([](const OwnedOp& op) { return !op.prop && !op.insert; });
  size_t list_last = index_of([&](const OwnedOp& op) {
    return op.insert && std::holds_alternative<int64_t>(op.value) && std::get<int64_t>(op.value) == 2;
  });
  struct Case {
    const char* name;
    std::vector<OwnedOp> ops;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"concurrent inserts in ascending order", swapped(char_op("x"), char_op("y")), "out of order"},
      {"an element before the one it follows", swapped(char_op("a"), char_op("b")),
       "comes before the element it follows"},
      // An op separated from the op it overwrites: the decoder, finding the
      // overwrite missing from the group, takes it for a delete.
      {"an update away from its element", moved(list_set, list_last), "two ops with one ID"},
      {"an overwrite away from its key", moved(root_k + 1, v.ops.size() - 1), "two ops with one ID"},
      {"a key's conflicting ops apart", moved(root_c + 1, v.ops.size() - 1), "not together"},
      {"an object's ops before it exists", moved(char_op("a"), 0), "object that does not exist"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Document d;
    Status s = d.LoadIncremental(Rewrite(doc, v.actors, c.ops));
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find(c.error), std::string::npos) << s.ToString();
    EXPECT_TRUE(d.changes().empty());
    EXPECT_EQ(d.ToJson(), "{}");
  }
  Document d;  // and the document order itself loads
  Status s = d.LoadIncremental(Rewrite(doc, v.actors, v.ops));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(d.ToJson(), doc.ToJson());
}

// A mark is never deleted: replaying refuses the delete ("op on a mark"), and
// so must loading a document, where that delete shows only as the mark's
// successor (found in review: the builder took it for an ordinary delete).
TEST(DocumentSave, ADeletedMarkIsRefusedAsReplayingRefusesIt) {
  auto insert = [](OpId after, Action action, ScalarValue v) {
    return ChangeOp{OpId{1, 0}, Key::Elem(after), true, action, std::move(v)};
  };
  Change c;
  c.actor = kA;
  c.seq = 1;
  c.start_op = 1;
  c.ops.push_back(ChangeOp{kRoot, Key::Map("t"), false, Action::kMakeText, {}});
  c.ops.push_back(insert({}, Action::kSet, std::string("a")));
  c.ops.push_back(insert({2, 0}, Action::kSet, std::string("b")));
  ChangeOp begin = insert({}, Action::kMark, true);
  begin.mark_name = "bold";
  c.ops.push_back(begin);
  c.ops.push_back(insert({3, 0}, Action::kMark, std::monostate{}));
  StoredChange first = EncodeChange(c);
  Change d;
  d.actor = kA;
  d.seq = 2;
  d.start_op = 6;
  d.deps = {first.hash};
  ChangeOp del{OpId{1, 0}, Key::Elem({4, 0}), false, Action::kDelete, {}};
  del.pred = {OpId{4, 0}};
  d.ops.push_back(del);
  StoredChange second = EncodeChange(d);
  const ChangeHash head = second.hash;

  Document replayed;
  Status rs = replayed.ApplyChanges({first, second});
  EXPECT_NE(rs.message().find("op on a mark"), std::string::npos) << rs.ToString();

  DocumentChunkWriter w({kA});
  const std::vector<uint64_t> no_deps, dep_on_first{0};
  w.AddChange(DocumentChange{0, 1, 5, 0, std::nullopt, no_deps, {}});
  w.AddChange(DocumentChange{0, 2, 6, 0, std::nullopt, dep_on_first, {}});
  const std::optional<std::string> no_name, bold = "bold";
  const ScalarValue null_v, a_v = std::string("a"), b_v = std::string("b"), true_v = true;
  const std::vector<OpId> no_succ, deleted{OpId{6, 0}};
  w.AddOp(DocumentOp{kRoot, "t", {}, {1, 0}, false, Action::kMakeText, null_v, no_succ, false, no_name});
  w.AddOp(DocumentOp{{1, 0}, std::nullopt, {}, {4, 0}, true, Action::kMark, true_v, deleted, false, bold});
  w.AddOp(DocumentOp{{1, 0}, std::nullopt, {}, {2, 0}, true, Action::kSet, a_v, no_succ, false, no_name});
  w.AddOp(DocumentOp{{1, 0}, std::nullopt, {2, 0}, {3, 0}, true, Action::kSet, b_v, no_succ, false, no_name});
  w.AddOp(DocumentOp{{1, 0}, std::nullopt, {3, 0}, {5, 0}, true, Action::kMark, null_v, no_succ, false, no_name});
  Document loaded;
  Status ls = loaded.LoadIncremental(w.Finish({{head, 1}}));
  EXPECT_EQ(ls.code(), Status::Code::kCorruption) << ls.ToString();
  EXPECT_NE(ls.message().find("op on a mark"), std::string::npos) << ls.ToString();
  EXPECT_TRUE(loaded.changes().empty());
  EXPECT_EQ(loaded.ToJson(), "{}");
}

// What we write is checked like any other input: damage is found.
TEST(DocumentSave, DamagedSavesAreRejected) {
  Document doc;
  {
    Transaction tx(doc, kA);
    ASSERT_TRUE(tx.Put(kRoot, "x", std::string("value")).ok());
    Commit(tx);
  }
  Bytes saved = doc.Save();
  for (size_t cut = 1; cut < saved.size(); ++cut) {
    Document d;
    EXPECT_FALSE(d.LoadIncremental(ByteView(saved).first(cut)).ok()) << "truncated at " << cut;
    EXPECT_TRUE(d.changes().empty());
  }
  for (size_t at = 0; at < saved.size(); ++at) {
    Bytes bad = saved;
    bad[at] ^= 0x01;
    Document d;
    EXPECT_FALSE(d.LoadIncremental(bad).ok()) << "flipped a bit of byte " << at;
  }
}

// Loading applies each change as it is rebuilt and checks the heads only at
// the end: a document whose changes do not hash to its heads must leave the
// loading document as empty as it was, and still usable.
TEST(DocumentSave, WrongHeadsLeaveTheLoadingDocumentEmpty) {
  Document doc;
  for (int i = 0; i < 3; ++i) {
    Transaction tx(doc, i == 1 ? kB : kA);
    ASSERT_TRUE(tx.Put(kRoot, "x" + std::to_string(i), int64_t{i}).ok());
    Commit(tx);
  }
  Bytes saved = doc.Save();
  Reader file(saved);
  auto chunk = ReadChunk(file);
  ASSERT_TRUE(chunk.ok());
  Bytes body(chunk->body().begin(), chunk->body().end());
  Reader r(body);
  uint64_t nactors = *r.Uleb();
  for (uint64_t i = 0; i < nactors; ++i) (void)r.LengthPrefixed();
  ASSERT_EQ(*r.Uleb(), 1u);
  body[r.position()] ^= 0x01;  // the first byte of the one head
  Bytes bad = WriteChunk(ChunkType::kDocument, body).bytes;

  Document loaded;
  Status s = loaded.LoadIncremental(bad);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_TRUE(loaded.changes().empty());
  EXPECT_TRUE(loaded.heads().empty());
  EXPECT_EQ(loaded.max_op(), 0u);
  EXPECT_EQ(loaded.ToJson(), "{}");
  EXPECT_FALSE(loaded.HasChange(doc.heads()[0]));
  ASSERT_TRUE(loaded.LoadIncremental(saved).ok());
  EXPECT_EQ(loaded.ToJson(), doc.ToJson());
  EXPECT_EQ(loaded.heads(), doc.heads());
}

// A document's ops are handed back to their changes by ID: each change owns
// the consecutive counters up to its maxOp. Ops that leave a gap, share an
// ID, or lie beyond every maxOp make the document corrupt, and the loading
// document stays empty.
TEST(DocumentSave, OpsThatDoNotFitTheirChangesAreRejected) {
  struct Case {
    const char* name;
    uint64_t max_op;
    std::vector<uint32_t> counters;  // one root-key put each
    const char* error;
  };
  const std::vector<Case> cases = {
      {"a gap", 3, {1, 3}, "gaps"},
      {"two ops with one ID", 2, {1, 1}, "two ops with one ID"},
      {"an op beyond maxOp", 2, {1, 2, 5}, "fits no change"},
  };
  const ScalarValue value = int64_t{1};
  const std::optional<std::string> no_name;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    DocumentChunkWriter w({kA});
    w.AddChange(DocumentChange{0, 1, c.max_op, 0, std::nullopt, {}, {}});
    for (size_t i = 0; i < c.counters.size(); ++i) {
      std::string key = "k" + std::to_string(i);
      w.AddOp(DocumentOp{kRoot, key, {}, OpId{c.counters[i], 0}, false, Action::kSet, value, {},
                         false, no_name});
    }
    Bytes bad = w.Finish({});
    Document d;
    Status s = d.LoadIncremental(bad);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find(c.error), std::string::npos) << s.ToString();
    EXPECT_TRUE(d.changes().empty());
    EXPECT_EQ(d.ToJson(), "{}");
  }
}

// Run-length bombs: a few bytes of columns declaring more changes, or more
// op IDs, than a document chunk may hold are refused once the rows pass the
// limit (chunk.h), not decoded row by row to the end.
TEST(DocumentSave, ChunksDeclaringMoreRowsThanTheLimitsAreRejected) {
  // body := actors heads change_meta op_meta change_data op_data (no heads,
  // so no head index), the columns given as (spec, bytes).
  using Cols = std::vector<std::pair<uint32_t, Bytes>>;
  auto chunk = [](const Cols& change_cols, const Cols& op_cols) {
    Bytes body;
    AppendUleb(body, 1);
    AppendUleb(body, kA.size());
    body.insert(body.end(), kA.begin(), kA.end());
    AppendUleb(body, 0);  // heads
    for (const Cols* cols : {&change_cols, &op_cols}) {
      AppendUleb(body, cols->size());
      for (const auto& [spec, data] : *cols) {
        AppendUleb(body, spec);
        AppendUleb(body, data.size());
      }
    }
    for (const Cols* cols : {&change_cols, &op_cols})
      for (const auto& [spec, data] : *cols) body.insert(body.end(), data.begin(), data.end());
    return WriteChunk(ChunkType::kDocument, body).bytes;
  };
  auto run = [](uint64_t n, int64_t value, bool sleb) {
    Bytes b;
    AppendSleb(b, static_cast<int64_t>(n));
    sleb ? AppendSleb(b, value) : AppendUleb(b, static_cast<uint64_t>(value));
    return b;
  };
  auto expect_refused = [](const Bytes& bytes, const std::string& why) {
    Document d;
    Status s = d.LoadIncremental(bytes);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find(why), std::string::npos) << s.ToString();
    EXPECT_TRUE(d.changes().empty());
  };
  // Changes: the actor column alone, one run of actor 0.
  expect_refused(chunk({{1, run(kMaxDocumentChanges + 1, 0, false)}}, {}),
                 "more changes than a document chunk may hold");
  expect_refused(chunk({{1, run(INT64_MAX, 0, false)}}, {}),
                 "more changes than a document chunk may hold");
  // Op IDs: one change (seq 1, maxOp 2^31), then ops whose IDs are one run
  // of actor 0 and one run of counter deltas of 1.
  Cols change = {{1, run(1, 0, false)}, {3, run(1, 1, true)}, {19, run(1, int64_t{1} << 31, true)}};
  expect_refused(chunk(change, {{33, run(kMaxDocumentOpIds + 1, 0, false)},
                                {35, run(kMaxDocumentOpIds + 1, 1, true)}}),
                 "more op IDs than a document chunk may hold");
}

TEST(DocumentSave, WriterOmitsEmptyColumns) {
  DocumentChunkWriter w({kA});
  const ScalarValue value = std::string("v");
  const std::optional<std::string> no_name;
  w.AddChange(DocumentChange{0, 1, 1, 0, std::nullopt, {}, {}});
  w.AddOp(DocumentOp{kRoot, "k", {}, {1, 0}, false, Action::kSet, value, {}, false, no_name});
  Bytes chunk = w.Finish({{ChangeHash{}, 0}});
  std::vector<uint32_t> specs = ColumnSpecs(chunk);
  // Changes: actor, seq, maxOp, time, deps count, extra meta; no message,
  // deps or extra raw. Ops: key string, id, insert, action, value; no obj,
  // key element, succ, expand or mark name.
  EXPECT_EQ(specs, (std::vector<uint32_t>{1, 3, 19, 35, 64, 86, 21, 33, 35, 52, 66, 86, 87, 128}));
}

// The reference keeps a message "" apart from no message in its documents
// (not in change chunks, whose hash is the same either way).
TEST(DocumentSave, AnEmptyMessageIsNotNoMessage) {
  Change c;
  c.actor = kA;
  c.seq = 1;
  c.start_op = 1;
  c.ops.push_back(ChangeOp{kRoot, Key::Map("k"), false, Action::kSet, std::string("v")});
  StoredChange sc = EncodeChange(c);
  auto chunk_with = [&](std::optional<std::string_view> message) {
    DocumentChunkWriter w({kA});
    const std::optional<std::string> no_name;
    w.AddChange(DocumentChange{0, 1, 1, 0, message, {}, {}});
    w.AddOp(DocumentOp{kRoot, "k", {}, {1, 0}, false, Action::kSet, sc.change.ops[0].value, {},
                       false, no_name});
    return w.Finish({{sc.hash, 0}});
  };
  for (auto message : {std::optional<std::string_view>(""), std::optional<std::string_view>()}) {
    Bytes chunk = chunk_with(message);
    Document doc;
    ASSERT_TRUE(doc.LoadIncremental(chunk).ok());
    EXPECT_EQ(doc.changes()[0].hash, sc.hash);
    EXPECT_EQ(doc.Save(), chunk) << (message ? "empty message" : "no message");
  }
  EXPECT_NE(chunk_with(""), chunk_with(std::nullopt));
}

}  // namespace
}  // namespace etherply::automerge
