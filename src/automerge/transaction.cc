#include "automerge/transaction.h"

#include <algorithm>
#include <cassert>
#include <ctime>

#include "automerge/columns.h"

namespace etherply::automerge {

struct Transaction::Target {
  Document::Object* obj;
};

Transaction::Transaction(Document& doc, const ActorId& actor) : doc_(&doc) {
  assert(!doc.in_transaction_);
  doc.in_transaction_ = true;
  undo_mark_ = doc.undo_.size();
  actor_ = doc.InternActor(actor);
  start_op_ = doc.max_op_ + 1;
}

Transaction::~Transaction() {
  if (open_) Rollback();
}

void Transaction::Rollback() {
  if (!open_) return;
  doc_->UndoTo(undo_mark_);
  doc_->in_transaction_ = false;
  ops_.clear();
  open_ = false;
}

Result<Transaction::Target> Transaction::Resolve(const ObjId& obj, bool want_sequence) const {
  auto it = doc_->objects_.find(obj);
  if (it == doc_->objects_.end()) return Status::InvalidArgument("no such object");
  if (IsSequence(it->second.type) != want_sequence)
    return Status::InvalidArgument(want_sequence ? "object is not a list or text"
                                                 : "object is not a map");
  return Target{&it->second};
}

std::vector<OpId> Transaction::LiveIds(const Slot* slot) const {
  std::vector<OpId> ids;
  if (slot)
    for (const Op& op : slot->live()) ids.push_back(op.id);
  return ids;  // live is kept in Lamport order, as pred must be
}

Result<OpId> Transaction::Record(ChangeOp op) {
  if (!open_) return Status::InvalidArgument("transaction is closed");
  if (start_op_ + ops_.size() > kMaxCounter) return Status::InvalidArgument("op counter overflow");
  OpId id{static_cast<uint32_t>(start_op_ + ops_.size()), actor_};
  if (Status s = doc_->ApplyOp(op, id); !s.ok()) return Status::InvalidArgument(s.message());
  ops_.push_back(std::move(op));
  return id;
}

// --- maps --------------------------------------------------------------------

const Slot* Transaction::MapSlot(const Target& t, std::string_view key) {
  auto& keys = t.obj->map().keys;
  auto it = keys.find(key);
  return it == keys.end() ? nullptr : &it->second;
}

namespace {

// A counter's value includes its increments.
ScalarValue Shown(const Op& op) {
  if (op.value.is_counter()) return Counter{op.value.counter() + op.inc_total()};
  return op.value.Get();
}

// How a put of `value` over the ops at a slot is recorded (PutMode): as
// the reference does it, if the value already shows alone, nothing; if it
// shows with conflicts, a delete of the losing ops; otherwise, and always
// with kAlways, a set over every visible op.
struct PutPlan {
  bool skip = false;
  Action action = Action::kSet;
  std::vector<OpId> pred;
};

PutPlan PlanPut(const Slot* slot, const ScalarValue& value, PutMode mode) {
  PutPlan plan;
  if (!slot || slot->live().empty()) return plan;
  std::span<const Op> live = slot->live();
  const Op& winner = live.back();
  if (mode == PutMode::kAsReference && winner.action == Action::kSet && Shown(winner) == value) {
    if (live.size() == 1) return PutPlan{true};
    plan.action = Action::kDelete;
    for (size_t i = 0; i + 1 < live.size(); ++i) plan.pred.push_back(live[i].id);
    return plan;
  }
  for (const Op& op : live) plan.pred.push_back(op.id);
  return plan;
}

}  // namespace

Status Transaction::Put(const ObjId& obj, std::string_view key, ScalarValue value, PutMode mode) {
  auto t = Resolve(obj, false);
  if (!t.ok()) return t.status();
  PutPlan plan = PlanPut(MapSlot(*t, key), value, mode);
  if (plan.skip) return Status::Ok();
  if (plan.action == Action::kDelete) value = std::monostate{};
  return Record(ChangeOp{obj, Key::Map(std::string(key)), false, plan.action, std::move(value),
                         std::move(plan.pred)})
      .status();
}

namespace {
Action MakeAction(ObjType type) {
  switch (type) {
    case ObjType::kMap: return Action::kMakeMap;
    case ObjType::kTable: return Action::kMakeTable;
    case ObjType::kList: return Action::kMakeList;
    case ObjType::kText: return Action::kMakeText;
  }
  return Action::kMakeMap;
}
}  // namespace

Result<ObjId> Transaction::PutObject(const ObjId& obj, std::string_view key, ObjType type) {
  auto t = Resolve(obj, false);
  if (!t.ok()) return t.status();
  return Record(ChangeOp{obj, Key::Map(std::string(key)), false, MakeAction(type), {},
                         LiveIds(MapSlot(*t, key))});
}

Status Transaction::Delete(const ObjId& obj, std::string_view key) {
  auto t = Resolve(obj, false);
  if (!t.ok()) return t.status();
  const Slot* slot = MapSlot(*t, key);
  if (!slot || slot->live().empty()) return Status::Ok();
  return Record(ChangeOp{obj, Key::Map(std::string(key)), false, Action::kDelete, {},
                         LiveIds(slot)})
      .status();
}

namespace {
// The reference increments a key if any value visible there is a counter.
Status CheckCounter(const Slot* slot) {
  if (slot)
    for (const Op& op : slot->live())
      if (op.action == Action::kSet && op.value.is_counter())
        return Status::Ok();
  return Status::InvalidArgument("increment operations must be against a counter value");
}
}  // namespace

Status Transaction::Increment(const ObjId& obj, std::string_view key, int64_t by) {
  auto t = Resolve(obj, false);
  if (!t.ok()) return t.status();
  const Slot* slot = MapSlot(*t, key);
  if (Status s = CheckCounter(slot); !s.ok()) return s;
  return Record(ChangeOp{obj, Key::Map(std::string(key)), false, Action::kIncrement, by,
                         LiveIds(slot)})
      .status();
}

// --- lists and text -----------------------------------------------------------

Result<Sequence::Pos> Transaction::Element(const ObjId& obj, size_t index) const {
  auto t = Resolve(obj, true);
  if (!t.ok()) return t.status();
  const Sequence& seq = std::get<1>(t->obj->data);
  if (index >= seq.visible()) return Status::InvalidArgument("index out of range");
  return seq.NthVisible(index);
}

Result<OpId> Transaction::InsertKey(const ObjId& obj, size_t index) const {
  auto t = Resolve(obj, true);
  if (!t.ok()) return t.status();
  const Sequence& seq = std::get<1>(t->obj->data);
  if (index > seq.visible()) return Status::InvalidArgument("index out of range");
  if (index == 0) return OpId{};
  return seq.At(seq.NthVisible(index - 1)).id;
}

Status Transaction::Insert(const ObjId& obj, size_t index, ScalarValue value) {
  auto key = InsertKey(obj, index);
  if (!key.ok()) return key.status();
  return Record(ChangeOp{obj, Key::Elem(*key), true, Action::kSet, std::move(value), {}}).status();
}

Result<ObjId> Transaction::InsertObject(const ObjId& obj, size_t index, ObjType type) {
  auto key = InsertKey(obj, index);
  if (!key.ok()) return key.status();
  return Record(ChangeOp{obj, Key::Elem(*key), true, MakeAction(type), {}, {}});
}

Status Transaction::Set(const ObjId& obj, size_t index, ScalarValue value) {
  auto pos = Element(obj, index);
  if (!pos.ok()) return pos.status();
  const automerge::Element& el = doc_->objects_.at(obj).seq().At(*pos);
  PutPlan plan = PlanPut(&el.slot, value, PutMode::kAsReference);
  if (plan.skip) return Status::Ok();
  if (plan.action == Action::kDelete) value = std::monostate{};
  return Record(ChangeOp{obj, Key::Elem(el.id), false, plan.action, std::move(value),
                         std::move(plan.pred)})
      .status();
}

Status Transaction::Delete(const ObjId& obj, size_t index) {
  auto pos = Element(obj, index);
  if (!pos.ok()) return pos.status();
  const automerge::Element& el = doc_->objects_.at(obj).seq().At(*pos);
  return Record(ChangeOp{obj, Key::Elem(el.id), false, Action::kDelete, {}, LiveIds(&el.slot)})
      .status();
}

Status Transaction::Increment(const ObjId& obj, size_t index, int64_t by) {
  auto pos = Element(obj, index);
  if (!pos.ok()) return pos.status();
  const automerge::Element& el = doc_->objects_.at(obj).seq().At(*pos);
  if (Status s = CheckCounter(&el.slot); !s.ok()) return s;
  return Record(ChangeOp{obj, Key::Elem(el.id), false, Action::kIncrement, by, LiveIds(&el.slot)})
      .status();
}

Status Transaction::Splice(const ObjId& obj, size_t index, size_t del,
                           const std::vector<ScalarValue>& values) {
  auto t = Resolve(obj, true);
  if (!t.ok()) return t.status();
  const Sequence& seq = std::get<1>(t->obj->data);
  if (index > seq.visible() || del > seq.visible() - index)
    return Status::InvalidArgument("splice range out of bounds");
  auto key = InsertKey(obj, index);
  if (!key.ok()) return key.status();
  OpId after = *key;
  for (const ScalarValue& v : values) {
    auto id = Record(ChangeOp{obj, Key::Elem(after), true, Action::kSet, v, {}});
    if (!id.ok()) return id.status();
    after = *id;
  }
  for (size_t i = 0; i < del; ++i)
    if (Status s = Delete(obj, index + values.size()); !s.ok()) return s;
  return Status::Ok();
}

Status Transaction::SpliceText(const ObjId& obj, size_t index, size_t del, std::string_view text) {
  if (!IsValidUtf8(text)) return Status::InvalidArgument("text is not valid UTF-8");
  std::vector<ScalarValue> chars;
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;
    uint8_t c = text[i];
    if (c >= 0xf0) {
      len = 4;
    } else if (c >= 0xe0) {
      len = 3;
    } else if (c >= 0xc0) {
      len = 2;
    }
    chars.emplace_back(std::string(text.substr(i, len)));
    i += len;
  }
  return Splice(obj, index, del, chars);
}

// --- commit ----------------------------------------------------------------------

Result<std::optional<ChangeHash>> Transaction::Commit(const CommitOptions& options) {
  if (!open_) return Status::InvalidArgument("transaction is closed");
  if (ops_.empty()) {
    Rollback();
    return std::optional<ChangeHash>();
  }
  Document& d = *doc_;
  Change c;
  c.deps = d.heads_;
  c.seq = d.by_actor_[actor_].size() + 1;
  // As the reference does, an actor's change always names the actor's
  // previous change as a dep, even when the heads already descend from it.
  if (c.seq > 1) {
    const ChangeHash& last = d.changes_.hash(d.by_actor_[actor_].back());
    if (std::find(c.deps.begin(), c.deps.end(), last) == c.deps.end()) c.deps.push_back(last);
  }
  c.start_op = start_op_;
  c.time = options.time ? *options.time : static_cast<int64_t>(std::time(nullptr));
  c.message = options.message;
  c.ops = std::move(ops_);
  if (options.author && c.seq == 1) {
    c.extra.push_back(0x01);
    AppendUleb(c.extra, options.author->size());
    Append(c.extra, *options.author);
  }
  NormalizeActors(c, d.actors_, actor_);
  StoredChange sc = EncodeChange(std::move(c));
  ChangeHash hash = sc.hash;
  d.AddToGraph(sc, actor_);
  d.undo_.resize(undo_mark_);
  d.in_transaction_ = false;
  open_ = false;
  return std::optional<ChangeHash>(hash);
}

}  // namespace etherply::automerge
