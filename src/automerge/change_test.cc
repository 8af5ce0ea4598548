// Change chunks (FORMAT.md §3-§5). EncodeChange must give the reference's
// bytes exactly (a change's hash is its identity), and DecodeChange reads
// untrusted bytes: each way a change can be malformed has a test of its own
// below, built by a small independent writer of change bodies, and every
// prefix and every single-bit flip of valid changes is decoded to check that
// the decoder fails cleanly and never crashes (run these under the sanitizer
// build too). The files in fixtures/invalid are replayed through a Document
// on every run: each is a past crash or a known-bad input, kept forever.
#include "automerge/change.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "automerge/chunk.h"
#include "automerge/columns.h"
#include "automerge/document.h"
#include "automerge/transaction.h"
#include "base/coding.h"
#include "base/hex.h"
#include "base/testutil.h"

namespace etherply::automerge {
namespace {

using Code = Status::Code;

using testutil::B;

// The worked example of FORMAT.md §3.3, from the reference.
const Bytes kExampleChange =
    B("856f4a83ccb2a194015400100123456789abcdef0123456789abcdef01010000000a01040204110413061507"
      "3402420456045703700200010300000103010002020000017d0002017f03666f6f000301037f0403017f0003"
      "166261720400");
const Bytes kExampleHash = B("ccb2a19403412d8b75754313c8533a0dbccf781ed85e30b8cfbec6762370f04a");
const Bytes kExampleActor = B("0123456789abcdef0123456789abcdef");

constexpr uint64_t k2To32 = uint64_t{1} << 32;

// ---------------------------------------------------------------------------
// An independent writer of change bodies, field by field and column by
// column, so that each test can break exactly one thing.

struct Header {
  std::vector<Bytes> deps;
  Bytes actor = B("aaaaaaaa");
  uint64_t seq = 1;
  uint64_t start_op = 1;
  int64_t time = 0;
  Bytes message;  // raw, so that it can be invalid UTF-8
  std::vector<Bytes> others;
};

// One op as its column values; nullopt is a null.
struct Row {
  std::optional<uint64_t> obj_actor, obj_ctr;
  std::optional<uint64_t> key_actor;
  std::optional<int64_t> key_ctr;
  std::optional<std::string> key_str;
  bool insert = false;
  uint64_t action = 1;
  ScalarValue value;
  std::vector<std::pair<uint64_t, int64_t>> pred;  // (actor, counter)
  bool expand = false;
  std::optional<std::string> mark_name;
};

Row MapRow(std::string key, ScalarValue v) {
  Row r;
  r.key_str = std::move(key);
  r.value = std::move(v);
  return r;
}

struct Column {
  uint32_t spec;
  Bytes data;
};

std::vector<Column> ColumnsOf(const std::vector<Row>& rows) {
  UlebEncoder obj_actor, obj_ctr, key_actor, action, pred_group, pred_actor;
  DeltaEncoder key_ctr, pred_ctr;
  StringEncoder key_str, mark_name;
  BooleanEncoder insert, expand;
  ValueEncoder value;
  for (const Row& r : rows) {
    obj_actor.Append(r.obj_actor);
    obj_ctr.Append(r.obj_ctr);
    key_actor.Append(r.key_actor);
    if (r.key_ctr) {
      key_ctr.Append(*r.key_ctr);
    } else {
      key_ctr.AppendNull();
    }
    key_str.Append(r.key_str);
    insert.Append(r.insert);
    action.Append(r.action);
    value.Append(r.value);
    pred_group.Append(uint64_t{r.pred.size()});
    for (auto [a, c] : r.pred) {
      pred_actor.Append(a);
      pred_ctr.Append(c);
    }
    expand.Append(r.expand);
    mark_name.Append(r.mark_name);
  }
  std::vector<Column> all = {
      {1, obj_actor.Finish()},     {2, obj_ctr.Finish()},      {17, key_actor.Finish()},
      {19, key_ctr.Finish()},      {21, key_str.Finish()},     {52, insert.Finish()},
      {66, action.Finish()},       {86, value.FinishMeta()},   {87, value.FinishRaw()},
      {112, pred_group.Finish()},  {113, pred_actor.Finish()}, {115, pred_ctr.Finish()},
      {148, expand.FinishMaybe()}, {165, mark_name.Finish()},
  };
  std::vector<Column> out;
  for (Column& c : all)
    if (!c.data.empty()) out.push_back(std::move(c));
  return out;
}

void AppendPrefixed(Bytes& out, ByteView b) {
  AppendUleb(out, b.size());
  Append(out, b);
}

Bytes HeaderBytes(const Header& h) {
  Bytes out;
  AppendUleb(out, h.deps.size());
  for (const Bytes& d : h.deps) Append(out, d);
  AppendPrefixed(out, h.actor);
  AppendUleb(out, h.seq);
  AppendUleb(out, h.start_op);
  AppendSleb(out, h.time);
  AppendPrefixed(out, h.message);
  AppendUleb(out, h.others.size());
  for (const Bytes& a : h.others) AppendPrefixed(out, a);
  return out;
}

// Column metadata in the given order (which tests may break), then the data.
Bytes BodyOf(const Header& h, const std::vector<Column>& cols, ByteView extra = {}) {
  Bytes out = HeaderBytes(h);
  AppendUleb(out, cols.size());
  for (const Column& c : cols) {
    AppendUleb(out, c.spec);
    AppendUleb(out, c.data.size());
  }
  for (const Column& c : cols) Append(out, c.data);
  Append(out, extra);
  return out;
}

Bytes BodyOf(const Header& h, const std::vector<Row>& rows, ByteView extra = {}) {
  return BodyOf(h, ColumnsOf(rows), extra);
}

// Replaces (or adds, keeping the order) the column with this spec.
void SetColumn(std::vector<Column>& cols, uint32_t spec, Bytes data) {
  for (Column& c : cols) {
    if (c.spec == spec) {
      c.data = std::move(data);
      return;
    }
  }
  auto at = std::find_if(cols.begin(), cols.end(), [&](const Column& c) { return c.spec > spec; });
  cols.insert(at, Column{spec, std::move(data)});
}

Result<StoredChange> DecodeBody(ByteView body) {
  Chunk c = WriteChunk(ChunkType::kChange, body);
  return DecodeChange(c.bytes, c.hash, c.body_offset);
}

Result<StoredChange> DecodeChunk(const Bytes& chunk) {
  Reader r(chunk);
  auto c = ReadChunk(r);
  if (!c.ok()) return c.status();
  return DecodeChange(c->bytes, c->hash, c->body_offset);
}

// Decoding must fail with kCorruption.
void ExpectCorrupt(ByteView body, std::string_view why) {
  auto sc = DecodeBody(body);
  ASSERT_FALSE(sc.ok()) << "decoded a change with " << why;
  EXPECT_EQ(sc.status().code(), Code::kCorruption) << why << ": " << sc.status().ToString();
}

void ExpectCorrupt(const std::vector<Row>& rows, std::string_view why, Header h = {}) {
  ExpectCorrupt(BodyOf(h, rows), why);
}

std::vector<Row> ExampleRows() {
  std::vector<Row> rows(4);
  rows[0].key_str = "foo";
  rows[0].action = 4;  // makeText
  const char* chars[] = {"b", "a", "r"};
  for (int i = 1; i <= 3; ++i) {
    rows[i].obj_actor = 0;
    rows[i].obj_ctr = 1;
    if (i > 1) rows[i].key_actor = 0;
    rows[i].key_ctr = i == 1 ? 0 : i;
    rows[i].insert = true;
    rows[i].value = std::string(chars[i - 1]);
  }
  return rows;
}

Header ExampleHeader() {
  Header h;
  h.actor = kExampleActor;
  return h;
}

Bytes ExampleBody() { return Bytes(kExampleChange.begin() + 10, kExampleChange.end()); }

// The §3.3 example as a Change.
Change ExampleChange() {
  Change c;
  c.actor = kExampleActor;
  c.seq = 1;
  c.start_op = 1;
  c.time = 0;
  ChangeOp make{kRoot, Key::Map("foo"), false, Action::kMakeText, {}, {}};
  c.ops.push_back(make);
  OpId text{1, 0};
  OpId after{};
  const char* chars[] = {"b", "a", "r"};
  for (int i = 0; i < 3; ++i) {
    c.ops.push_back(
        ChangeOp{text, Key::Elem(after), true, Action::kSet, std::string(chars[i]), {}});
    after = OpId{static_cast<uint32_t>(i + 2), 0};
  }
  return c;
}

// A change that uses every field: three actors, preds, list and map keys,
// every value type, marks, deletes, increments, a message and deps.
Change RichChange() {
  Change c;
  c.deps = {ChangeHash{}, ChangeHash{}};
  c.deps[0].fill(0x11);
  c.deps[1].fill(0xee);
  c.actor = B("aaaa");
  c.other_actors = {B("11"), B("2222")};  // sorted by bytes
  c.seq = 7;
  c.start_op = 10;
  c.time = -1234567;
  c.message = "héllo 😀";
  auto op = [](OpId obj, Key key, bool insert, Action a, ScalarValue v, std::vector<OpId> pred) {
    return ChangeOp{obj, std::move(key), insert, a, std::move(v), std::move(pred)};
  };
  c.ops = {
      op(kRoot, Key::Map("map"), false, Action::kMakeMap, {}, {{5, 1}}),
      op({10, 0}, Key::Map("x"), false, Action::kSet, Uint{UINT64_MAX}, {}),
      op({10, 0}, Key::Map("y"), false, Action::kSet, int64_t{-4}, {}),
      op(kRoot, Key::Map("list"), false, Action::kMakeList, {}, {}),
      op({13, 0}, Key::Elem({}), true, Action::kSet, 3.14159267, {}),
      op({13, 0}, Key::Elem({14, 0}), true, Action::kSet, Bytes{0x85, 0x6f}, {}),
      op({13, 0}, Key::Elem({14, 0}), false, Action::kSet, Timestamp{-905182979877}, {{14, 0}}),
      op(kRoot, Key::Map("c"), false, Action::kSet, Counter{5}, {}),
      op(kRoot, Key::Map("c"), false, Action::kIncrement, int64_t{3}, {{17, 0}}),
      op({3, 2}, Key::Map("z"), false, Action::kDelete, {}, {{4, 1}, {4, 2}}),
      op({7, 2}, Key::Elem({8, 1}), true, Action::kMark, true, {}),
      op({7, 2}, Key::Elem({20, 0}), true, Action::kMark, {}, {}),
      op(kRoot, Key::Map("s"), false, Action::kSet, std::string("h\xc3\xa9llo\xf0\x9f\x98\x80"),
         {}),
      op(kRoot, Key::Map("t"), false, Action::kSet, true, {}),
      op(kRoot, Key::Map("f"), false, Action::kSet, false, {}),
      op(kRoot, Key::Map("n"), false, Action::kSet, {}, {}),
      op(kRoot, Key::Map("u"), false, Action::kSet, UnknownValue{12, {1, 2, 3}}, {}),
      op(kRoot, Key::Map("table"), false, Action::kMakeTable, {}, {{3, 1}}),
      op({7, 2}, Key::Elem({9, 2}), false, Action::kIncrement, Uint{2}, {{9, 2}}),
  };
  c.ops[10].mark_name = "bold";
  c.ops[10].expand = true;
  c.extra = B("01 02 abcd");
  return c;
}

void ExpectSameChange(const Change& a, const Change& b) {
  EXPECT_EQ(a.deps, b.deps);
  EXPECT_EQ(a.actor, b.actor);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.start_op, b.start_op);
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.other_actors, b.other_actors);
  EXPECT_EQ(a.extra, b.extra);
  ASSERT_EQ(a.ops.size(), b.ops.size());
  for (size_t i = 0; i < a.ops.size(); ++i) {
    const ChangeOp& x = a.ops[i];
    const ChangeOp& y = b.ops[i];
    EXPECT_EQ(x.obj, y.obj) << "op " << i;
    EXPECT_EQ(x.key, y.key) << "op " << i;
    EXPECT_EQ(x.insert, y.insert) << "op " << i;
    EXPECT_EQ(x.action, y.action) << "op " << i;
    EXPECT_TRUE(x.value == y.value) << "op " << i;
    EXPECT_EQ(x.pred, y.pred) << "op " << i;
    EXPECT_EQ(x.expand, y.expand) << "op " << i;
    EXPECT_EQ(x.mark_name, y.mark_name) << "op " << i;
  }
}

// A change as a Transaction writes it, applicable to an empty document.
StoredChange AuthoredChange() {
  Document doc;
  {
    Transaction tx(doc, B("cafe"));
    EXPECT_TRUE(tx.Put(kRoot, "n", int64_t{1}).ok());
    auto map = tx.PutObject(kRoot, "m", ObjType::kMap);
    EXPECT_TRUE(map.ok());
    EXPECT_TRUE(tx.Put(*map, "k", std::string("v")).ok());
    auto list = tx.PutObject(kRoot, "l", ObjType::kList);
    EXPECT_TRUE(list.ok());
    EXPECT_TRUE(tx.Insert(*list, 0, 1.5).ok());
    EXPECT_TRUE(tx.Insert(*list, 1, Counter{2}).ok());
    EXPECT_TRUE(tx.Increment(*list, 1, 5).ok());
    EXPECT_TRUE(tx.Set(*list, 0, Bytes{1, 2}).ok());
    EXPECT_TRUE(tx.Insert(*list, 0, Timestamp{1000}).ok());
    EXPECT_TRUE(tx.Delete(*list, 0).ok());
    auto text = tx.PutObject(kRoot, "t", ObjType::kText);
    EXPECT_TRUE(text.ok());
    EXPECT_TRUE(tx.SpliceText(*text, 0, 0, "hi😀").ok());
    EXPECT_TRUE(tx.Put(kRoot, "n", int64_t{2}).ok());
    EXPECT_TRUE(tx.Delete(kRoot, "n").ok());
    auto r = tx.Commit(CommitOptions{.message = "msg", .time = 0});
    EXPECT_TRUE(r.ok() && r->has_value());
  }
  EXPECT_EQ(doc.changes().size(), 1u);
  return doc.changes()[0];
}

Bytes ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---------------------------------------------------------------------------
// Encoding: the reference's bytes.

TEST(Change, EncodesTheWorkedExampleExactly) {
  StoredChange sc = EncodeChange(ExampleChange());
  EXPECT_EQ(sc.bytes, kExampleChange);
  EXPECT_EQ(Bytes(sc.hash.begin(), sc.hash.end()), kExampleHash);
  EXPECT_EQ(sc.change.max_op(), 4u);
}

TEST(Change, TestWriterAgreesWithTheWorkedExample) {
  // Guards the independent writer used by the failure tests below.
  EXPECT_EQ(BodyOf(ExampleHeader(), ExampleRows()), ExampleBody());
}

TEST(Change, EncodeSortsDeps) {
  Change c = ExampleChange();
  ChangeHash lo{}, hi{};
  lo.fill(0x01);
  hi.fill(0xf0);
  c.deps = {hi, lo};
  StoredChange sc = EncodeChange(c);
  EXPECT_EQ(sc.change.deps, (std::vector<ChangeHash>{lo, hi}));
  auto back = DecodeChunk(sc.bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->change.deps, (std::vector<ChangeHash>{lo, hi}));
}

TEST(Change, ChangeWithNoOpsHasNoColumns) {
  Change c;
  c.actor = B("ab");
  c.seq = 2;
  c.start_op = 5;
  StoredChange sc = EncodeChange(c);
  // deps, actor, seq, startOp, time, message, others, zero columns.
  EXPECT_EQ(Bytes(sc.bytes.begin() + 10, sc.bytes.end()), B("00 01ab 02 05 00 00 00 00"));
  auto back = DecodeChunk(sc.bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->change.ops.empty());
  EXPECT_EQ(back->change.start_op, 5u);
}

// ---------------------------------------------------------------------------
// Decoding valid changes.

TEST(Change, DecodesTheWorkedExample) {
  auto sc = DecodeChunk(kExampleChange);
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  ExpectSameChange(sc->change, ExampleChange());
  EXPECT_EQ(sc->bytes, kExampleChange);
  EXPECT_EQ(Bytes(sc->hash.begin(), sc->hash.end()), kExampleHash);
}

TEST(Change, DecodeThenEncodeRoundTripsTheWorkedExample) {
  auto sc = DecodeChunk(kExampleChange);
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  StoredChange again = EncodeChange(sc->change);
  EXPECT_EQ(again.bytes, kExampleChange);
  EXPECT_EQ(again.hash, sc->hash);
}

TEST(Change, RoundTripsEveryField) {
  Change original = RichChange();
  StoredChange sc = EncodeChange(original);
  auto back = DecodeChunk(sc.bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameChange(back->change, original);
  EXPECT_EQ(back->hash, sc.hash);
  StoredChange again = EncodeChange(back->change);
  EXPECT_EQ(again.bytes, sc.bytes);
}

TEST(Change, AnEncoderUsedAgainEncodesEachChangeAsAFreshOne) {
  // Its column buffers are kept from one change to the next; nothing else is.
  Change small = ExampleChange();
  small.time = 99;
  ChangeEncoder encoder;
  for (const Change& c : {RichChange(), small, RichChange(), Change{}, small}) {
    Change input = c;
    if (input.actor.empty()) {  // the empty change: give it a header
      input.actor = kExampleActor;
      input.seq = 1;
      input.start_op = 1;
    }
    StoredChange reused = encoder.Encode(input);
    StoredChange fresh = EncodeChange(input);
    EXPECT_EQ(reused.bytes, fresh.bytes);
    EXPECT_EQ(reused.hash, fresh.hash);
    auto back = DecodeChunk(reused.bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->hash, reused.hash);
  }
}

TEST(Change, RoundTripsAnAuthoredChange) {
  StoredChange sc = AuthoredChange();
  auto back = DecodeChunk(sc.bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  // A document keeps its changes' headers; the ops live in its op set and,
  // exactly, in the bytes.
  EXPECT_EQ(back->change.ops.size(), sc.change.num_ops);
  EXPECT_EQ(back->change.max_op(), sc.change.max_op());
  auto again = ReadChange(sc);
  ASSERT_TRUE(again.ok());
  ExpectSameChange(back->change, *again);
  EXPECT_EQ(EncodeChange(back->change).bytes, sc.bytes);
}

TEST(Change, ActorsOfAnyLength) {
  for (size_t n : {0, 1, 16, 33, 200}) {
    Change c = ExampleChange();
    c.actor = Bytes(n, 0x5a);
    StoredChange sc = EncodeChange(c);
    auto back = DecodeChunk(sc.bytes);
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().ToString();
    EXPECT_EQ(back->change.actor, c.actor);
    EXPECT_EQ(EncodeChange(back->change).bytes, sc.bytes);
  }
}

TEST(Change, ExtraBytesAreKeptVerbatimAndReencodeIdentically) {
  Bytes extra = B("01 04 aabbccdd ff 00 7f");
  Bytes body = BodyOf(ExampleHeader(), ExampleRows(), extra);
  Chunk chunk = WriteChunk(ChunkType::kChange, body);
  auto sc = DecodeChange(chunk.bytes, chunk.hash, chunk.body_offset);
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->change.extra, extra);
  EXPECT_EQ(sc->bytes, chunk.bytes);
  StoredChange again = EncodeChange(sc->change);
  EXPECT_EQ(again.bytes, chunk.bytes);
  EXPECT_EQ(again.hash, chunk.hash);
}

TEST(Change, ExtraBytesAfterAChangeWithNoOps) {
  Bytes body = BodyOf(Header{}, std::vector<Column>{}, B("0102"));
  auto sc = DecodeBody(body);
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->change.extra, B("0102"));
}

TEST(Change, UnknownColumnsAreAcceptedAndKept) {
  std::vector<Column> cols = ColumnsOf(ExampleRows());
  SetColumn(cols, 48, B("0102"));    // id 3, type 0: unknown
  SetColumn(cols, 176, B("7f03"));   // id 11, type 0: unknown
  SetColumn(cols, 0x1000, B("00"));  // a far future column
  Bytes body = BodyOf(ExampleHeader(), cols);
  Chunk chunk = WriteChunk(ChunkType::kChange, body);
  auto sc = DecodeChange(chunk.bytes, chunk.hash, chunk.body_offset);
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  ExpectSameChange(sc->change, ExampleChange());
  // The change keeps the bytes it came with, unknown columns included.
  EXPECT_EQ(sc->bytes, chunk.bytes);
  EXPECT_EQ(sc->hash, chunk.hash);
}

TEST(Change, AbsentColumnsReadAsNulls) {
  // Every op on the root with a map key: no obj or key-element columns.
  std::vector<Row> rows = {MapRow("a", int64_t{1}), MapRow("b", std::string("x"))};
  auto sc = DecodeBody(BodyOf(Header{}, rows));
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  ASSERT_EQ(sc->change.ops.size(), 2u);
  EXPECT_TRUE(sc->change.ops[0].obj.is_root());
  EXPECT_EQ(sc->change.ops[1].key, Key::Map("b"));
}

TEST(Change, DecodeChangeChunksReadsConcatenatedChanges) {
  StoredChange a = EncodeChange(ExampleChange());
  StoredChange b = AuthoredChange();
  Bytes file = a.bytes;
  Append(file, b.bytes);
  auto all = DecodeChangeChunks(file);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].hash, a.hash);
  EXPECT_EQ((*all)[1].hash, b.hash);
}

TEST(Change, DecodeChangeChunksReadsDocumentChunksToo) {
  Bytes file = B("856f4a83 b81a9544 00 04 00000000");  // the empty document
  Append(file, kExampleChange);
  auto all = DecodeChangeChunks(file);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].bytes, kExampleChange);
}

TEST(Change, DecodeChangeChunksOfNothingIsNothing) {
  auto all = DecodeChangeChunks(ByteView());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_TRUE(all->empty());
}

// ---------------------------------------------------------------------------
// NormalizeActors (§3.1).

TEST(Change, NormalizeActorsSortsOtherActorsByBytesAndRemaps) {
  std::vector<ActorId> table = {B("ff"), B("33"), B("aa"), B("11"), B("99")};
  const uint32_t author = 2;
  Change c;
  c.seq = 1;
  c.start_op = 20;
  c.ops = {
      ChangeOp{{5, 0}, Key::Elem({6, 3}), true, Action::kSet, int64_t{1}, {}},
      ChangeOp{kRoot, Key::Map("k"), false, Action::kSet, int64_t{2}, {{7, 1}, {7, 2}, {8, 0}}},
      ChangeOp{{5, 0}, Key::Elem({}), true, Action::kSet, int64_t{3}, {}},
      ChangeOp{{9, 2}, Key::Elem({20, 2}), false, Action::kDelete, {}, {{20, 2}}},
  };
  NormalizeActors(c, table, author);
  EXPECT_EQ(c.actor, B("aa"));
  // "99" appears nowhere, so it is left out; the rest sorted by bytes.
  EXPECT_EQ(c.other_actors, (std::vector<ActorId>{B("11"), B("33"), B("ff")}));
  // Old index -> new: 2 (author) -> 0, 3 ("11") -> 1, 1 ("33") -> 2, 0 ("ff") -> 3.
  EXPECT_EQ(c.ops[0].obj, (OpId{5, 3}));
  EXPECT_EQ(c.ops[0].key, Key::Elem({6, 1}));
  EXPECT_TRUE(c.ops[1].obj.is_root());
  EXPECT_EQ(c.ops[1].pred, (std::vector<OpId>{{7, 2}, {7, 0}, {8, 3}}));
  EXPECT_EQ(c.ops[2].key, Key::Elem({}));  // HEAD stays HEAD
  EXPECT_EQ(c.ops[3].obj, (OpId{9, 0}));
  EXPECT_EQ(c.ops[3].key, Key::Elem({20, 0}));
  for (const ChangeOp& op : c.ops)
    for (const OpId& p : op.pred) EXPECT_EQ(c.ActorAt(p.actor).size(), 1u);

  // The result is a canonical change: it decodes to itself.
  StoredChange sc = EncodeChange(c);
  auto back = DecodeChunk(sc.bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameChange(back->change, sc.change);
}

TEST(Change, NormalizeActorsWithOnlyTheAuthor) {
  std::vector<ActorId> table = {B("01"), B("02")};
  Change c;
  c.start_op = 1;
  c.ops = {ChangeOp{kRoot, Key::Map("k"), false, Action::kMakeList, {}, {}},
           ChangeOp{{1, 1}, Key::Elem({}), true, Action::kSet, int64_t{1}, {}}};
  NormalizeActors(c, table, 1);
  EXPECT_EQ(c.actor, B("02"));
  EXPECT_TRUE(c.other_actors.empty());
  EXPECT_EQ(c.ops[1].obj, (OpId{1, 0}));
}

TEST(Change, NormalizeActorsReplacesAStaleTable) {
  std::vector<ActorId> table = {B("bb"), B("aa")};
  Change c;
  c.start_op = 3;
  c.other_actors = {B("ee")};  // stale: replaced
  c.ops = {ChangeOp{kRoot, Key::Map("k"), false, Action::kSet, int64_t{1}, {{2, 1}}}};
  NormalizeActors(c, table, 0);
  EXPECT_EQ(c.actor, B("bb"));
  EXPECT_EQ(c.other_actors, (std::vector<ActorId>{B("aa")}));
  EXPECT_EQ(c.ops[0].pred, (std::vector<OpId>{{2, 1}}));
}

// ---------------------------------------------------------------------------
// Malformed headers.

TEST(Change, StartOpZeroFails) {
  Header h;
  h.start_op = 0;
  ExpectCorrupt({MapRow("a", int64_t{1})}, "startOp 0", h);
}

TEST(Change, StartOpZeroFailsEvenWithoutOps) {
  Header h;
  h.start_op = 0;
  ExpectCorrupt(BodyOf(h, std::vector<Column>{}), "startOp 0 and no ops");
}

TEST(Change, StartOpAbove32BitsFails) {
  for (uint64_t start : {k2To32, k2To32 + 1, uint64_t{1} << 42, UINT64_MAX}) {
    Header h;
    h.start_op = start;
    ExpectCorrupt({MapRow("a", int64_t{1})}, "startOp " + std::to_string(start), h);
  }
}

TEST(Change, OpCountersPast32BitsFail) {
  Header h;
  h.start_op = k2To32 - 1;  // fits; the second op's counter does not
  ASSERT_TRUE(DecodeBody(BodyOf(h, {MapRow("a", int64_t{1})})).ok());
  ExpectCorrupt({MapRow("a", int64_t{1}), MapRow("b", int64_t{2})}, "op counter 2^32", h);
}

TEST(Change, MoreDepsThanBytesFails) {
  Bytes body = B("05");  // five deps
  Append(body, Bytes(64, 0x11));
  ExpectCorrupt(body, "5 deps in 64 bytes");
  ExpectCorrupt(B("ffffffffffffffff7f"), "2^63 deps");
}

// The body is complete (its length is in the chunk header), so a field that
// runs past its end is malformed: kCorruption, not kIncomplete, which would
// tell a caller to wait for more bytes.
TEST(Change, FieldRunningPastTheEndOfTheBodyIsCorruption) {
  ExpectCorrupt(B("00 10 0102"), "a 16-byte actor in 2 bytes");
  ExpectCorrupt(B("00 01aa 01 01 00 05 6869"), "a 5-byte message in 2 bytes");
  ExpectCorrupt(B("00 01aa 01 01 00 00 01 04 bbbb"), "a 4-byte other actor in 2 bytes");
  ExpectCorrupt(B("00 01aa 01"), "no startOp");
}

TEST(Change, MoreOtherActorsThanBytesFails) {
  Header h;
  Bytes body = HeaderBytes(h);
  body.back() = 0x7f;  // 127 other actors follow; only the column count does
  body.push_back(0);
  ExpectCorrupt(body, "127 other actors");
}

TEST(Change, InvalidUtf8InMessageFails) {
  for (Bytes msg : {B("ff"), B("c3"), B("c0af"), B("eda080"), B("f4908080"), B("68c328")}) {
    Header h;
    h.message = msg;
    ExpectCorrupt({MapRow("a", int64_t{1})}, "message " + ToHex(msg), h);
  }
}

TEST(Change, TruncatedHeaderFieldsFail) {
  Bytes header = HeaderBytes(ExampleHeader());
  for (size_t n = 0; n < header.size(); ++n) {
    auto sc = DecodeBody(ByteView(header).first(n));
    EXPECT_FALSE(sc.ok()) << "header cut to " << n << " bytes";
  }
}

// ---------------------------------------------------------------------------
// Malformed ops: actor indices and counters.

TEST(Change, ObjActorIndexOutOfRangeFails) {
  Row r = MapRow("a", int64_t{1});
  r.obj_actor = 1;
  r.obj_ctr = 1;
  ExpectCorrupt({r}, "obj actor 1 with no other actors");
  Header h;
  h.others = {B("bb")};
  ASSERT_TRUE(DecodeBody(BodyOf(h, {r})).ok()) << "index 1 is fine with one other actor";
  r.obj_actor = 2;
  ExpectCorrupt({r}, "obj actor 2 with one other actor", h);
  r.obj_actor = UINT64_MAX;
  ExpectCorrupt({r}, "obj actor 2^64-1", h);
}

TEST(Change, KeyActorIndexOutOfRangeFails) {
  Row r;
  r.obj_actor = 0;
  r.obj_ctr = 1;
  r.key_actor = 1;
  r.key_ctr = 1;
  r.insert = true;
  r.value = int64_t{1};
  ExpectCorrupt({r}, "key actor 1 with no other actors");
  Header h;
  h.others = {B("bb")};
  ASSERT_TRUE(DecodeBody(BodyOf(h, {r})).ok()) << "index 1 is fine with one other actor";
  r.key_actor = 5;
  ExpectCorrupt({r}, "key actor 5 with one other actor", h);
}

TEST(Change, PredActorIndexOutOfRangeFails) {
  Row r = MapRow("a", int64_t{1});
  r.pred = {{1, 1}};
  ExpectCorrupt({r}, "pred actor 1 with no other actors");
  Header h;
  h.others = {B("bb")};
  ASSERT_TRUE(DecodeBody(BodyOf(h, {r})).ok()) << "index 1 is fine with one other actor";
  r.pred = {{0, 1}, {2, 1}};
  ExpectCorrupt({r}, "second pred actor 2 with one other actor", h);
}

// FORMAT.md §3.1. The reference panics ("called `Option::unwrap()` on a
// `None` value") on a change with an other actor that no op names; a
// document holding one whose table breaks the other rules loads, but what
// it saves does not load again (its heads mismatch), in the reference as here.
TEST(Change, OtherActorNamedByNoOpFails) {
  Header h;
  h.others = {B("bb")};
  ExpectCorrupt(BodyOf(h, std::vector<Row>{}), "an other actor and no ops");
  ExpectCorrupt({MapRow("a", int64_t{1})}, "an other actor that the op does not name", h);
  Row named = MapRow("a", int64_t{1});
  named.pred = {{1, 1}};
  h.others = {B("bb"), B("cc")};
  ExpectCorrupt({named}, "the second of two other actors named by no op", h);
}

TEST(Change, OtherActorsOutOfOrderOrRepeatedFail) {
  Row r = MapRow("a", int64_t{1});
  r.pred = {{1, 1}, {2, 1}};
  Header h;
  h.others = {B("bb"), B("cc")};
  ASSERT_TRUE(DecodeBody(BodyOf(h, {r})).ok()) << "two other actors, sorted, both named";
  h.others = {B("cc"), B("bb")};
  ExpectCorrupt({r}, "other actors out of order", h);
  h.others = {B("bb"), B("bb")};
  ExpectCorrupt({r}, "an other actor twice", h);
}

TEST(Change, AuthorAmongOtherActorsFails) {
  Row r = MapRow("a", int64_t{1});
  r.pred = {{1, 1}};
  Header h;
  h.others = {h.actor};
  ExpectCorrupt({r}, "the author as an other actor", h);
}

TEST(Change, ObjCounterAbove32BitsFails) {
  Row r = MapRow("a", int64_t{1});
  r.obj_actor = 0;
  r.obj_ctr = k2To32 - 1;
  ASSERT_TRUE(DecodeBody(BodyOf(Header{}, {r})).ok()) << "2^32-1 is the largest counter";
  for (uint64_t ctr : {k2To32, k2To32 + 1, uint64_t{1} << 42, UINT64_MAX}) {
    r.obj_ctr = ctr;
    ExpectCorrupt({r}, "obj counter " + std::to_string(ctr));
  }
}

TEST(Change, PredCounterAbove32BitsFails) {
  Row r = MapRow("a", int64_t{1});
  r.pred = {{0, static_cast<int64_t>(k2To32 - 1)}};
  ASSERT_TRUE(DecodeBody(BodyOf(Header{}, {r})).ok()) << "2^32-1 is the largest counter";
  for (uint64_t ctr : {k2To32, k2To32 + 1, uint64_t{1} << 42}) {
    r.pred = {{0, static_cast<int64_t>(ctr)}};
    ExpectCorrupt({r}, "pred counter " + std::to_string(ctr));
  }
}

TEST(Change, NegativePredCounterFails) {
  Row r = MapRow("a", int64_t{1});
  r.pred = {{0, 5}, {0, 2}, {0, -3}};  // deltas 5, -3, -5: the last is negative
  ExpectCorrupt({r}, "pred counter -3");
}

TEST(Change, KeyCounterAbove32BitsFails) {
  Row r;
  r.obj_actor = 0;
  r.obj_ctr = 1;
  r.key_actor = 0;
  r.key_ctr = static_cast<int64_t>(k2To32);
  r.insert = true;
  ExpectCorrupt({r}, "key counter 2^32");
  r.key_ctr = -1;
  ExpectCorrupt({r}, "key counter -1");
}

TEST(Change, ObjIdWithHalfOfItsColumnsFails) {
  Row r = MapRow("a", int64_t{1});
  r.obj_actor = 0;
  ExpectCorrupt({r}, "obj actor without a counter");
  r.obj_actor.reset();
  r.obj_ctr = 3;
  ExpectCorrupt({r}, "obj counter without an actor");
}

TEST(Change, ElementKeyWithoutAnActorFails) {
  Row r;
  r.obj_actor = 0;
  r.obj_ctr = 1;
  r.key_ctr = 4;  // not HEAD, and no key actor
  r.insert = true;
  ExpectCorrupt({r}, "key counter 4 with a null actor");
}

TEST(Change, KeyThatIsBothAStringAndAnElementFails) {
  Row r = MapRow("a", int64_t{1});
  r.key_actor = 0;
  r.key_ctr = 1;
  ExpectCorrupt({r}, "key string and key element");
}

TEST(Change, PredCountWithoutPredIdsFails) {
  std::vector<Column> cols = ColumnsOf({MapRow("a", int64_t{1})});
  UlebEncoder group;
  group.Append(uint64_t{2});
  SetColumn(cols, 112, group.Finish());  // two preds, but no pred columns
  ExpectCorrupt(BodyOf(Header{}, cols), "pred count 2 with no pred ids");
}

// ---------------------------------------------------------------------------
// Malformed ops: actions, keys and values.

TEST(Change, UnknownAction8Fails) {
  Row r = MapRow("a", int64_t{1});
  r.action = 8;
  ExpectCorrupt({r}, "action 8");
}

TEST(Change, UnknownAction48Fails) {
  Row r = MapRow("a", int64_t{1});
  r.action = 48;  // fixture fuzz-action-is-48
  ExpectCorrupt({r}, "action 48");
  r.action = UINT64_MAX;
  ExpectCorrupt({r}, "action 2^64-1");
}

// A run-length bomb: the action column's one run declares more ops than a
// change may hold (a fuzzer's find: a run of billions hung the decoder).
TEST(Change, MoreOpsThanAChangeMayHoldFail) {
  std::vector<Column> cols = ColumnsOf({MapRow("a", int64_t{1})});
  Bytes run;
  AppendSleb(run, static_cast<int64_t>(kMaxChangeOps + 1));
  AppendUleb(run, 1);  // set
  SetColumn(cols, 66, run);
  auto sc = DecodeBody(BodyOf(Header{}, cols));
  ASSERT_FALSE(sc.ok());
  EXPECT_EQ(sc.status().code(), Code::kCorruption);
  EXPECT_NE(sc.status().message().find("more ops than a change may hold"), std::string::npos)
      << sc.status().ToString();
  run.clear();
  AppendSleb(run, INT64_MAX);
  AppendUleb(run, 1);
  SetColumn(cols, 66, run);
  ExpectCorrupt(BodyOf(Header{}, cols), "a run of 2^63-1 actions");
}

TEST(Change, NullActionFails) {
  std::vector<Column> cols = ColumnsOf({MapRow("a", int64_t{1})});
  SetColumn(cols, 66, B("00 01"));  // one null action
  ExpectCorrupt(BodyOf(Header{}, cols), "a null action");
}

TEST(Change, IncrementWithAStringValueFails) {
  Row r = MapRow("c", std::string("1"));
  r.action = 5;
  r.pred = {{0, 7}};
  ExpectCorrupt({r}, "increment by a string");
}

TEST(Change, IncrementWithANonIntegerValueFails) {
  for (ScalarValue v :
       {ScalarValue{}, ScalarValue{1.0}, ScalarValue{true}, ScalarValue{Bytes{1}}}) {
    Row r = MapRow("c", v);
    r.action = 5;
    r.pred = {{0, 7}};
    ExpectCorrupt({r}, std::string("increment by a ") + ValueTypeName(v));
  }
  for (ScalarValue v : {ScalarValue{int64_t{-2}}, ScalarValue{Uint{3}}}) {
    Row r = MapRow("c", v);
    r.action = 5;
    r.pred = {{0, 7}};
    EXPECT_TRUE(DecodeBody(BodyOf(Header{}, {r})).ok()) << "increment by " << ValueTypeName(v);
  }
}

TEST(Change, InsertWithAMapKeyFails) {
  Row r = MapRow("a", int64_t{1});
  r.insert = true;
  ExpectCorrupt({r}, "insert at a map key");
}

TEST(Change, UpdateOfHeadFails) {
  Row r;
  r.obj_actor = 0;
  r.obj_ctr = 1;
  r.key_ctr = 0;  // HEAD
  r.value = int64_t{1};
  r.insert = true;
  ASSERT_TRUE(DecodeBody(BodyOf(Header{}, {r})).ok()) << "inserting at HEAD is fine";
  r.insert = false;
  ExpectCorrupt({r}, "a set of HEAD");
  r.action = 3;
  r.pred = {{0, 1}};
  ExpectCorrupt({r}, "a delete of HEAD");
}

TEST(Change, InvalidUtf8InKeyFails) {
  for (std::string key : {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf"}) {
    ExpectCorrupt({MapRow(key, int64_t{1})}, "key " + ToHex(AsBytes(key)));
  }
}

TEST(Change, InvalidUtf8InMarkNameFails) {
  Row r;
  r.obj_actor = 0;
  r.obj_ctr = 1;
  r.key_ctr = 0;
  r.insert = true;
  r.action = 7;
  r.mark_name = "\xfe";
  ExpectCorrupt({r}, "mark name fe");
}

TEST(Change, InvalidUtf8InAStringValueFails) {
  ExpectCorrupt({MapRow("a", std::string("\xff"))}, "string value ff");
}

// A single op whose value columns are given by hand.
Bytes WithValueColumns(Bytes meta, Bytes raw) {
  std::vector<Column> cols = ColumnsOf({MapRow("a", int64_t{1})});
  SetColumn(cols, 86, std::move(meta));
  SetColumn(cols, 87, std::move(raw));
  if (cols.back().data.empty()) cols.pop_back();
  std::erase_if(cols, [](const Column& c) { return c.data.empty(); });
  return BodyOf(Header{}, cols);
}

TEST(Change, ValueColumnsWrittenByHandDecode) {
  // Guards the helper: int 5 is meta (1 << 4 | 4) = 0x14 and raw 05.
  auto sc = DecodeBody(WithValueColumns(B("7f 14"), B("05")));
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_TRUE(sc->change.ops[0].value == ScalarValue(int64_t{5}));
}

TEST(Change, ValueMetaLengthLongerThanTheRawBytesFails) {
  ExpectCorrupt(WithValueColumns(B("7f 24"), B("05")), "int of length 2 with 1 raw byte");
  ExpectCorrupt(WithValueColumns(B("7f 26"), B("")), "string of length 2 and no raw column");
}

TEST(Change, ValueMetaLengthShorterThanTheRawBytesFails) {
  ExpectCorrupt(WithValueColumns(B("7f 14"), B("05 00")), "int of length 1 with 2 raw bytes");
  ExpectCorrupt(WithValueColumns(B("7f 00"), B("05")), "null with 1 raw byte");
}

TEST(Change, ValueMetaLengthDisagreeingWithTheLebFails) {
  // counter_value_has_incorrect_meta: the LEB ends before the meta length.
  ExpectCorrupt(WithValueColumns(B("7f 28"), B("05 00")), "counter 05 in 2 bytes");
  // The LEB runs past the meta length.
  ExpectCorrupt(WithValueColumns(B("7f 13"), B("80")), "uint 80 in 1 byte");
  // counter_value_is_overlong.
  ExpectCorrupt(WithValueColumns(B("7f 28"), B("80 00")), "overlong counter");
}

TEST(Change, ValueOfTheWrongFixedSizeFails) {
  ExpectCorrupt(WithValueColumns(B("7f 45"), B("00000000")), "f64 in 4 bytes");
  ExpectCorrupt(WithValueColumns(B("7f 12"), B("01")), "true with 1 byte");
  ExpectCorrupt(WithValueColumns(B("7f 11"), B("00")), "false with 1 byte");
}

TEST(Change, UnknownValueTypesAreKept) {
  auto sc = DecodeBody(WithValueColumns(B("7f 3c"), B("010203")));  // type 12, length 3
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_TRUE(sc->change.ops[0].value == ScalarValue(UnknownValue{12, B("010203")}));
  EXPECT_EQ(EncodeChange(sc->change).bytes, sc->bytes);
}

// ---------------------------------------------------------------------------
// Malformed column metadata.

TEST(Change, DeflateBitOnAColumnFails) {
  std::vector<Column> good = ColumnsOf(ExampleRows());
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<Column> cols = good;
    cols[i].spec |= 8;
    ExpectCorrupt(BodyOf(ExampleHeader(), cols),
                  "deflate bit on spec " + std::to_string(good[i].spec));
  }
}

TEST(Change, ColumnsOutOfOrderFail) {
  std::vector<Column> good = ColumnsOf(ExampleRows());
  for (size_t i = 0; i + 1 < good.size(); ++i) {
    std::vector<Column> cols = good;
    std::swap(cols[i], cols[i + 1]);
    ExpectCorrupt(BodyOf(ExampleHeader(), cols), "spec " + std::to_string(cols[i].spec) +
                                                     " before " + std::to_string(cols[i + 1].spec));
  }
}

TEST(Change, DuplicatedColumnsFail) {
  std::vector<Column> good = ColumnsOf(ExampleRows());
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<Column> cols = good;
    cols.insert(cols.begin() + i, cols[i]);
    ExpectCorrupt(BodyOf(ExampleHeader(), cols), "spec " + std::to_string(good[i].spec) + " twice");
  }
  // An empty duplicate is still a duplicate.
  std::vector<Column> cols = good;
  cols.insert(cols.begin() + 1, Column{cols[0].spec, {}});
  ExpectCorrupt(BodyOf(ExampleHeader(), cols), "an empty duplicate");
}

TEST(Change, ColumnLongerThanTheBodyFails) {
  Bytes body = ExampleBody();
  // The last column is pred (spec 112) of length 2: claim 3.
  std::vector<Column> cols = ColumnsOf(ExampleRows());
  ASSERT_EQ(cols.back().spec, 112u);
  Bytes bad = HeaderBytes(ExampleHeader());
  AppendUleb(bad, cols.size());
  for (size_t i = 0; i < cols.size(); ++i) {
    AppendUleb(bad, cols[i].spec);
    AppendUleb(bad, cols[i].data.size() + (i + 1 == cols.size()));
  }
  for (const Column& c : cols) Append(bad, c.data);
  ExpectCorrupt(bad, "a column one byte longer than the body");
}

TEST(Change, HugeColumnLengthsFail) {
  for (uint64_t len : {uint64_t{1} << 31, uint64_t{1} << 40, UINT64_MAX}) {
    Bytes bad = HeaderBytes(Header{});
    AppendUleb(bad, 2);
    AppendUleb(bad, 52);
    AppendUleb(bad, len);
    AppendUleb(bad, 66);
    AppendUleb(bad, UINT64_MAX - len + 2);  // the two lengths overflow to 1 in 64 bits
    bad.push_back(0x01);
    ExpectCorrupt(bad, "column lengths " + std::to_string(len));
  }
}

TEST(Change, MoreColumnsThanBytesFails) {
  Bytes bad = HeaderBytes(Header{});
  AppendUleb(bad, uint64_t{1} << 40);
  ExpectCorrupt(bad, "2^40 columns");
}

TEST(Change, ColumnSpecAbove32BitsFails) {
  Bytes bad = HeaderBytes(Header{});
  AppendUleb(bad, 1);
  AppendUleb(bad, k2To32 + 1);
  AppendUleb(bad, 0);
  ExpectCorrupt(bad, "spec 2^32+1");
}

TEST(Change, MoreRowsInAColumnThanInTheActionColumnFails) {
  std::vector<Row> one = ExampleRows();
  one.resize(1);
  std::vector<Row> two = ExampleRows();
  two.resize(2);
  std::vector<Column> good = ColumnsOf(one);
  std::vector<Column> longer = ColumnsOf(two);
  for (const Column& c : longer) {
    if (c.spec == 66) continue;
    std::vector<Column> cols = good;
    SetColumn(cols, c.spec, c.data);
    ExpectCorrupt(BodyOf(ExampleHeader(), cols), "spec " + std::to_string(c.spec) + " has 2 rows");
  }
}

TEST(Change, LeftoverRawValueBytesFail) {
  std::vector<Column> cols = ColumnsOf(ExampleRows());
  for (Column& c : cols)
    if (c.spec == 87) c.data.push_back('!');
  ExpectCorrupt(BodyOf(ExampleHeader(), cols), "a raw value byte no op uses");
}

TEST(Change, ColumnsWithoutAnActionColumnFail) {
  std::vector<Column> cols = ColumnsOf(ExampleRows());
  std::erase_if(cols, [](const Column& c) { return c.spec == 66; });
  ExpectCorrupt(BodyOf(ExampleHeader(), cols), "ops with no action column");
}

TEST(Change, MalformedColumnDataFails) {
  std::vector<Column> good = ColumnsOf(ExampleRows());
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<Column> cols = good;
    cols[i].data = B("80");  // a uLEB cut short
    ExpectCorrupt(BodyOf(ExampleHeader(), cols), "spec " + std::to_string(good[i].spec) + " = 80");
  }
}

// ---------------------------------------------------------------------------
// Robustness: every prefix and every single-bit flip.

TEST(Change, EveryTruncationFailsCleanly) {
  Change rich = RichChange();
  rich.extra.clear();  // with extra bytes, a cut inside them would be valid
  std::vector<Bytes> chunks = {kExampleChange, EncodeChange(rich).bytes, AuthoredChange().bytes};
  for (const Bytes& chunk : chunks) {
    Reader r(chunk);
    auto c = ReadChunk(r);
    ASSERT_TRUE(c.ok());
    ByteView body = c->body();
    for (size_t n = 0; n < body.size(); ++n) {
      auto sc = DecodeBody(body.first(n));
      EXPECT_FALSE(sc.ok()) << "body cut to " << n << " of " << body.size() << " bytes decoded";
    }
    for (size_t n = 1; n < chunk.size(); ++n) {
      auto all = DecodeChangeChunks(ByteView(chunk).first(n));
      ASSERT_FALSE(all.ok()) << "chunk cut to " << n << " bytes decoded";
      EXPECT_EQ(all.status().code(), Code::kIncomplete) << all.status().ToString();
    }
  }
}

TEST(Change, EverySingleBitFlipDecodesOrFailsCleanly) {
  StoredChange authored = AuthoredChange();
  std::vector<Bytes> chunks = {kExampleChange, EncodeChange(RichChange()).bytes, authored.bytes};
  size_t decoded = 0, failed = 0;
  for (const Bytes& chunk : chunks) {
    const size_t body_offset = chunk.size() < 128 + 10 ? 10 : 11;
    Bytes body(chunk.begin() + body_offset, chunk.end());
    ASSERT_EQ(WriteChunk(ChunkType::kChange, body).bytes, chunk);
    for (size_t i = 0; i < body.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        Bytes flipped = body;
        flipped[i] ^= static_cast<uint8_t>(1 << bit);
        auto sc = DecodeBody(flipped);
        if (!sc.ok()) {
          ++failed;
          continue;
        }
        ++decoded;
        // Whatever decodes can be encoded, and a document either takes it
        // or refuses it and stays empty.
        StoredChange again = EncodeChange(sc->change);
        EXPECT_FALSE(again.bytes.empty());
        Document doc;
        Status s = doc.ApplyChanges({std::move(*sc)});
        if (!s.ok()) {
          EXPECT_TRUE(doc.heads().empty()) << s.ToString();
          EXPECT_TRUE(doc.changes().empty());
          EXPECT_EQ(doc.ToJson(), "{}");
        } else {
          std::string json = doc.ToJson();  // must not crash
          EXPECT_FALSE(json.empty());
        }
      }
    }
  }
  EXPECT_GT(failed, 0u);
  EXPECT_GT(decoded, 0u);
}

// ---------------------------------------------------------------------------
// Past crash inputs and known-bad files (fixtures/invalid), replayed forever.

TEST(Change, InvalidFixturesFailAndLeaveTheDocumentEmpty) {
  std::filesystem::path dir = std::filesystem::path(ETHERPLY_FIXTURES) / "invalid";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 13u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    Bytes bytes = ReadFile(f);
    ASSERT_FALSE(bytes.empty());
    Document doc;
    Status s = doc.LoadIncremental(bytes);
    EXPECT_FALSE(s.ok()) << "loaded";
    EXPECT_TRUE(doc.heads().empty());
    EXPECT_TRUE(doc.changes().empty());
    EXPECT_EQ(doc.queued(), 0u);
    EXPECT_EQ(doc.ToJson(), "{}");
  }
}

TEST(Change, InvalidChangeFixturesFailToDecode) {
  // The ones that are change chunks fail in DecodeChange itself.
  for (const char* name :
       {"64bit_obj_id_change.automerge", "counter_value_has_incorrect_meta.automerge",
        "counter_value_is_overlong.automerge", "fuzz-action-is-48.automerge"}) {
    SCOPED_TRACE(name);
    Bytes bytes = ReadFile(std::filesystem::path(ETHERPLY_FIXTURES) / "invalid" / name);
    ASSERT_FALSE(bytes.empty());
    auto all = DecodeChangeChunks(bytes);
    ASSERT_FALSE(all.ok());
    EXPECT_EQ(all.status().code(), Code::kCorruption) << all.status().ToString();
  }
}

}  // namespace
}  // namespace etherply::automerge
