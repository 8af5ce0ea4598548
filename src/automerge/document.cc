#include "automerge/document.h"

#include <algorithm>
#include <deque>
#include <unordered_set>

#include "automerge/chunk.h"
#include "automerge/document_chunk.h"
#include "automerge/json.h"
#include "base/hex.h"

namespace etherply::automerge {

Document::Document() {
  objects_.emplace(kRoot, Object::New(ObjType::kMap, 0, kRoot, Key::Map("")));
}

Document::~Document() = default;

// --- actors -------------------------------------------------------------------

std::optional<uint32_t> Document::FindActor(const ActorId& a) const {
  auto it = actor_index_.find(AsChars(a));
  if (it == actor_index_.end()) return std::nullopt;
  return it->second;
}

uint32_t Document::InternActor(const ActorId& a) {
  if (auto i = FindActor(a)) return *i;
  uint32_t idx = static_cast<uint32_t>(actors_.size());
  actors_.push_back(a);
  actor_index_.emplace(std::string(AsChars(a)), idx);
  by_actor_.emplace_back();
  // Linear, not a sort per actor: a document of 100,000 actors loads.
  auto at = std::lower_bound(by_rank_.begin(), by_rank_.end(), a,
                             [&](uint32_t x, const ActorId& y) { return actors_[x] < y; });
  size_t from = at - by_rank_.begin();
  by_rank_.insert(at, idx);
  rank_.push_back(0);
  Rerank(from);
  undo_.push_back(Undo{Undo::Kind::kActorAdded});
  return idx;
}

void Document::Rerank(size_t from) {
  for (size_t r = from; r < by_rank_.size(); ++r) rank_[by_rank_[r]] = static_cast<uint32_t>(r);
}

// --- applying ops ----------------------------------------------------------------

Status Document::TooDeep() {
  return Status::Corruption("an object nested more than " + std::to_string(kMaxDepth) +
                            " objects deep (the most this implementation holds)");
}

Status Document::ApplyToSlot(Slot& slot, const ChangeOp& op, OpId id, const ObjId& obj,
                             const std::string* prop, OpId elem) {
  PackedValue value(op.value);
  int64_t amount = op.action == Action::kIncrement ? value.IncrementAmount() : 0;
  for (const OpId& p : op.pred) {
    Op* target = slot.Find(p, order());
    if (!target) continue;  // a pred that is not here: nothing to hide
    target->AddSucc(id);
    bool counts = AddsTo(*target, op.action);
    if (counts) {
      target->AddToIncTotal(amount);
    } else if (target->blockers++ == 0 && slot.IsLive(target)) {
      slot.Hide(target);
    }
    undo_.push_back(Undo{Undo::Kind::kSuccAdded, obj, prop ? *prop : std::string(), elem, p, id,
                         op.action, counts ? amount : 0, counts});
  }
  if (op.action == Action::kDelete) return Status::Ok();
  Op stored(id, op.action, std::move(value));
  if (op.action == Action::kIncrement) {
    slot.AddHidden(std::move(stored));
  } else {
    slot.InsertLive(std::move(stored), order());
  }
  undo_.push_back(
      Undo{Undo::Kind::kOpStored, obj, prop ? *prop : std::string(), elem, id, {}, op.action, 0});
  return Status::Ok();
}

Status Document::ApplyOp(const ChangeOp& op, OpId id) {
  auto it = objects_.find(op.obj);
  if (it == objects_.end()) return Status::Corruption("op on an object that does not exist");
  std::optional<ObjType> created = CreatedObjType(op.action);
  Object& o = it->second;
  if (created) {
    if (objects_.count(id)) return Status::Corruption("duplicate object ID");
    if (o.depth >= kMaxDepth) return TooDeep();
  }

  if (op.key.is_map()) {
    if (IsSequence(o.type)) return Status::Corruption("map key used on a list or text");
    if (op.action == Action::kMark) return Status::Corruption("mark on a map");
    auto [kit, inserted] = o.map().keys.try_emplace(*op.key.prop);
    Status s = ApplyToSlot(kit->second, op, id, op.obj, &kit->first, {});
    if (kit->second.empty()) o.map().keys.erase(kit);
    if (!s.ok()) return s;
  } else {
    if (!IsSequence(o.type)) return Status::Corruption("list element used on a map");
    Sequence& seq = o.seq();
    if (op.insert) {
      if (op.action == Action::kDelete || op.action == Action::kIncrement)
        return Status::Corruption("insert of a delete or an increment");
      if (!op.pred.empty()) return Status::Corruption("insert with preds");
      Element e{.id = id, .mark = op.action == Action::kMark};
      e.slot.InsertLive(Op(id, op.action, PackedValue(op.value)), order());
      if (Status s = seq.Insert(op.key.elem, std::move(e), order()); !s.ok()) return s;
      undo_.push_back(Undo{Undo::Kind::kElementInserted, op.obj, {}, {}, id});
      if (op.action == Action::kMark) marks_[id] = {op.mark_name, op.expand};
    } else {
      auto p = seq.Find(op.key.elem);
      if (!p) return Status::Corruption("op on a list element that does not exist");
      Element& el = seq.At(*p);
      if (el.mark) return Status::Corruption("op on a mark");
      bool was = el.visible();
      Status s = ApplyToSlot(el.slot, op, id, op.obj, nullptr, op.key.elem);
      seq.Refresh(*p, was);
      if (!s.ok()) return s;
    }
  }
  if (created) {
    objects_.emplace(
        id, Object::New(*created, o.depth + 1, op.obj, op.insert ? Key::Elem(id) : op.key));
    undo_.push_back(Undo{Undo::Kind::kObjectCreated, op.obj, {}, {}, id});
  }
  return Status::Ok();
}

Slot* Document::FindSlot(const ObjId& obj, const std::string& prop, const OpId& elem) {
  auto it = objects_.find(obj);
  if (it == objects_.end()) return nullptr;
  Object& o = it->second;
  if (!IsSequence(o.type)) {
    auto k = o.map().keys.find(prop);
    return k == o.map().keys.end() ? nullptr : &k->second;
  }
  auto p = o.seq().Find(elem);
  return p ? &o.seq().At(*p).slot : nullptr;
}

void Document::UndoTo(size_t mark) {
  while (undo_.size() > mark) {
    Undo u = std::move(undo_.back());
    undo_.pop_back();
    switch (u.kind) {
      case Undo::Kind::kActorAdded: {
        actor_index_.erase(std::string(AsChars(actors_.back())));
        const uint32_t from = rank_.back();
        actors_.pop_back();
        by_actor_.pop_back();
        rank_.pop_back();
        by_rank_.erase(by_rank_.begin() + from);
        Rerank(from);
        break;
      }
      case Undo::Kind::kObjectCreated:
        objects_.erase(u.target);
        break;
      case Undo::Kind::kElementInserted:
        objects_.at(u.obj).seq().Remove(u.target);
        marks_.erase(u.target);
        break;
      case Undo::Kind::kOpStored:
      case Undo::Kind::kSuccAdded: {
        Object& o = objects_.at(u.obj);
        std::optional<Sequence::Pos> pos;
        Slot* slot;
        bool was = false;
        if (IsSequence(o.type)) {
          pos = o.seq().Find(u.elem);
          slot = &o.seq().At(*pos).slot;
          was = o.seq().At(*pos).visible();
        } else {
          slot = &o.map().keys.try_emplace(u.prop).first->second;
        }
        Op* t = slot->Find(u.target, order());
        if (u.kind == Undo::Kind::kOpStored) {
          slot->Erase(t);
        } else {
          t->RemoveSucc(u.succ);
          if (u.counted) {
            t->AddToIncTotal(-u.amount);
          } else if (--t->blockers == 0 && t->action != Action::kIncrement) {
            slot->Unhide(t, order());
          }
        }
        if (pos) {
          o.seq().Refresh(*pos, was);
        } else if (slot->empty()) {
          o.map().keys.erase(u.prop);
        }
        break;
      }
    }
  }
}

// --- the change graph --------------------------------------------------------------

Status Document::CheckSeq(const StoredChange& sc, uint32_t actor) const {
  uint64_t expected = by_actor_[actor].size() + 1;
  if (sc.change.seq != expected)
    return Status::Corruption("actor " + ToHex(sc.change.actor) + " has seq " +
                              std::to_string(sc.change.seq) + " here, expected " +
                              std::to_string(expected));
  return Status::Ok();
}

void Document::AddToGraph(const StoredChange& sc, uint32_t actor) {
  uint32_t idx = static_cast<uint32_t>(changes_.size());
  for (const ChangeHash& d : sc.change.deps) {
    auto h = std::lower_bound(heads_.begin(), heads_.end(), d);
    if (h != heads_.end() && *h == d) heads_.erase(h);
  }
  heads_.insert(std::lower_bound(heads_.begin(), heads_.end(), sc.hash), sc.hash);
  if (sc.change.num_ops > 0) max_op_ = std::max<uint32_t>(max_op_, sc.change.max_op());
  // The op set holds the ops now; the log keeps the bytes (ReadChange).
  changes_.Append(sc, actor);
  by_actor_[actor].push_back(idx);
}

Status Document::ApplyOne(StoredChange& sc) {
  // Changes taken from another document come without their decoded ops.
  if (sc.change.ops.size() != sc.change.num_ops) {
    auto decoded = ReadChange(sc);
    if (!decoded.ok()) return decoded.status();
    sc.change = std::move(*decoded);
  }
  Change& c = sc.change;
  std::vector<uint32_t>& table = actor_table_;
  table.clear();
  table.push_back(InternActor(c.actor));
  for (const ActorId& a : c.other_actors) table.push_back(InternActor(a));
  if (Status s = CheckSeq(sc, table[0]); !s.ok()) return s;

  auto global = [&](OpId id) { return id.counter == 0 ? id : OpId{id.counter, table[id.actor]}; };
  for (size_t i = 0; i < c.ops.size(); ++i) {
    ChangeOp& op = c.ops[i];  // ours to rewrite: the log keeps the bytes, not the ops
    op.obj = global(op.obj);
    if (!op.key.is_map()) op.key.elem = global(op.key.elem);
    for (OpId& p : op.pred) p = global(p);
    OpId id{static_cast<uint32_t>(c.start_op + i), table[0]};
    if (Status s = ApplyOp(op, id); !s.ok())
      return s.WithContext("change " + HashToHex(sc.hash) + " op " + std::to_string(i));
  }
  AddToGraph(sc, table[0]);
  return Status::Ok();
}

Status Document::ApplyChanges(std::vector<StoredChange> batch) {
  return Apply(std::move(batch), 0);
}

Status Document::Apply(std::vector<StoredChange> batch, size_t ordered) {
  if (in_transaction_) return Status::InvalidArgument("a transaction is open");
  const size_t undo_mark = undo_.size();
  const size_t changes_mark = changes_.size();
  const std::vector<ChangeHash> heads_before = heads_;
  const uint32_t max_op_before = max_op_;

  // Candidates: the queue and the new changes, without ones already known.
  const size_t queued_before = queue_.size();
  std::vector<StoredChange> pending;
  pending.reserve(queue_.size() + batch.size());
  pending.insert(pending.end(), queue_.begin(), queue_.end());
  std::unordered_set<ChangeHash, ChangeHashHash> seen;
  seen.reserve(pending.capacity());
  for (const StoredChange& sc : pending) seen.insert(sc.hash);
  for (StoredChange& sc : batch)
    if (!changes_.Contains(sc.hash) && seen.insert(sc.hash).second)
      pending.push_back(std::move(sc));

  // The first `ordered` candidates in their order (each applied if ready
  // when reached), then Kahn's algorithm over the rest, in the order they
  // came (as the reference's change queue does).
  if (!queue_.empty()) ordered = 0;
  std::vector<size_t> missing(pending.size(), 0);
  std::unordered_map<ChangeHash, std::vector<size_t>, ChangeHashHash> waiters;
  for (size_t i = 0; i < pending.size(); ++i) {
    for (const ChangeHash& d : pending[i].change.deps) {
      if (changes_.Contains(d)) continue;
      ++missing[i];
      waiters[d].push_back(i);
    }
  }
  std::vector<bool> applied(pending.size(), false);
  std::vector<bool> dropped(pending.size(), false);
  std::vector<Status> dropped_why;
  std::deque<size_t> ready;
  Status failure;
  auto apply = [&](size_t i, bool queue_waiters) {
    ChangeHash hash = pending[i].hash;
    const size_t mark = undo_.size();
    Status s = ApplyOne(pending[i]);
    if (!s.ok() && i < queued_before) {
      // Queued by an earlier call, its deps here now, and it cannot apply:
      // malformed, it never will. Undone and dropped (as the reference
      // drops it), so that the changes that complete its deps are not
      // refused for it; its own waiters keep waiting.
      UndoTo(mark);
      dropped[i] = true;
      dropped_why.push_back(s.WithContext("queued change " + HashToHex(hash) + " dropped"));
      return;
    }
    failure = s;
    if (!failure.ok()) return;
    applied[i] = true;
    if (auto w = waiters.find(hash); w != waiters.end())
      for (size_t j : w->second)
        if (--missing[j] == 0 && queue_waiters && j >= ordered) ready.push_back(j);
  };
  for (size_t i = 0; i < std::min(ordered, pending.size()) && failure.ok(); ++i)
    if (missing[i] == 0) apply(i, false);
  for (size_t i = ordered; i < pending.size(); ++i)
    if (missing[i] == 0) ready.push_back(i);
  while (!ready.empty() && failure.ok()) {
    size_t i = ready.front();
    ready.pop_front();
    apply(i, true);
  }

  if (!failure.ok()) {
    for (size_t i = changes_.size(); i > changes_mark; --i)
      by_actor_[changes_.actor(i - 1)].pop_back();
    changes_.Truncate(changes_mark);
    heads_ = heads_before;
    max_op_ = max_op_before;
    UndoTo(undo_mark);
    return failure;
  }
  std::vector<StoredChange> still_waiting;
  for (size_t i = 0; i < pending.size(); ++i)
    if (!applied[i] && !dropped[i]) still_waiting.push_back(std::move(pending[i]));
  queue_ = std::move(still_waiting);
  undo_.clear();
  if (on_dropped_)
    for (const Status& why : dropped_why) on_dropped_(why);
  return Status::Ok();
}

Status Document::LoadIncremental(ByteView bytes) {
  if (in_transaction_) return Status::InvalidArgument("a transaction is open");
  // Loading a document chunk into an empty document keeps its rows' order,
  // as the reference's load does (so that saving again gives the same bytes);
  // the chunks after it are applied as ApplyChanges does.
  Reader r(bytes);
  if (changes_.empty() && queue_.empty()) {
    Reader peek = r;
    auto first = ReadChunk(peek);
    if (first.ok() && first->type == ChunkType::kDocument) {
      Status s = LoadDocumentChunk(*first).WithContext("chunk at byte 0: document chunk");
      if (s.ok()) {
        auto rest = DecodeChangeChunks(peek.rest());
        s = rest.ok() ? Apply(std::move(*rest), 0) : rest.status();
      }
      if (!s.ok()) Reset();  // it was empty before
      return s;
    }
  }
  auto changes = DecodeChangeChunks(r.rest());
  if (!changes.ok()) return changes.status();
  return Apply(std::move(*changes), 0);
}

void Document::Reset() {
  objects_.clear();
  objects_.emplace(kRoot, Object::New(ObjType::kMap, 0, kRoot, Key::Map("")));
  marks_.clear();
  changes_.Truncate(0);
  actors_.clear();
  actor_index_.clear();
  rank_.clear();
  by_rank_.clear();
  by_actor_.clear();
  heads_.clear();
  max_op_ = 0;
  queue_.clear();
  undo_.clear();
}

std::optional<StoredChange> Document::ChangeOfActor(const ActorId& actor, uint64_t seq) const {
  auto a = FindActor(actor);
  if (!a || seq == 0 || seq > by_actor_[*a].size()) return std::nullopt;
  return changes_.Get(by_actor_[*a][seq - 1]);
}

std::optional<size_t> Document::IndexOf(const ChangeHash& hash) const {
  return changes_.Find(hash);
}

std::vector<bool> Document::Ancestors(const std::vector<ChangeHash>& heads) const {
  std::vector<bool> in(changes_.size(), false);
  std::vector<uint32_t> stack;
  for (const ChangeHash& h : heads)
    if (auto row = changes_.Find(h)) stack.push_back(*row);
  while (!stack.empty()) {
    uint32_t i = stack.back();
    stack.pop_back();
    if (in[i]) continue;
    in[i] = true;
    for (uint32_t d : changes_.deps(i)) stack.push_back(d);
  }
  return in;
}

Result<Clock> Document::ClockAt(const std::vector<ChangeHash>& heads) const {
  for (const ChangeHash& h : heads)
    if (!changes_.Contains(h)) return Status::NotFound("unknown head " + HashToHex(h));
  std::vector<bool> in = Ancestors(heads);
  Clock clock;
  clock.max_.assign(actors_.size(), 0);
  for (size_t i = 0; i < changes_.size(); ++i) {
    if (!in[i] || changes_.num_ops(i) == 0) continue;
    uint32_t a = changes_.actor(i);
    clock.max_[a] = std::max<uint32_t>(clock.max_[a], changes_.max_op(i));
  }
  return clock;
}

std::vector<uint32_t> Document::ChangesSince(const std::vector<ChangeHash>& heads) const {
  std::vector<bool> in = Ancestors(heads);
  std::vector<uint32_t> out;
  for (size_t i = 0; i < changes_.size(); ++i)
    if (!in[i]) out.push_back(static_cast<uint32_t>(i));
  return out;
}

std::optional<StoredChange> Document::GetChange(const ChangeHash& hash) const {
  auto row = changes_.Find(hash);
  if (!row) return std::nullopt;
  return changes_.Get(*row);
}

std::vector<ChangeHash> Document::MissingDeps() const {
  std::unordered_set<ChangeHash, ChangeHashHash> queued;
  for (const StoredChange& sc : queue_) queued.insert(sc.hash);
  std::vector<ChangeHash> out;
  for (const StoredChange& sc : queue_)
    for (const ChangeHash& d : sc.change.deps)
      if (!changes_.Contains(d) && !queued.count(d)) out.push_back(d);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<ChangeHash> Document::MissingDepsFrom(const std::vector<ChangeHash>& start) const {
  std::unordered_map<ChangeHash, const StoredChange*, ChangeHashHash> queued;
  for (const StoredChange& sc : queue_) queued.emplace(sc.hash, &sc);
  std::unordered_set<ChangeHash, ChangeHashHash> seen;
  std::vector<ChangeHash> out;
  std::vector<ChangeHash> stack = start;
  while (!stack.empty()) {
    ChangeHash h = stack.back();
    stack.pop_back();
    if (changes_.Contains(h) || !seen.insert(h).second) continue;
    if (auto q = queued.find(h); q != queued.end())
      stack.insert(stack.end(), q->second->change.deps.begin(), q->second->change.deps.end());
    else
      out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// --- reading ---------------------------------------------------------------------

const Document::Object* Document::FindObject(const ObjId& obj) const {
  auto it = objects_.find(obj);
  return it == objects_.end() ? nullptr : &it->second;
}

std::optional<ObjType> Document::TypeOf(const ObjId& obj) const {
  const Object* o = FindObject(obj);
  if (!o) return std::nullopt;
  return o->type;
}

std::optional<Value> Document::ValueOf(const Op& op) const {
  if (auto t = CreatedObjType(op.action)) return Value{op.id, *t, op.id};
  if (op.action != Action::kSet) return std::nullopt;
  if (op.value.is_counter())
    return Value{ScalarValue(Counter{op.value.counter() + op.inc_total()}), std::nullopt, op.id};
  return Value{op.value.Get(), std::nullopt, op.id};
}

const Op* Document::WinnerAt(const Slot& slot, const Clock* at, int64_t* counter_total) const {
  if (!at) {
    const Op* w = slot.Winner();
    if (w && counter_total) *counter_total = w->inc_total();
    return w;
  }
  // At a clock, an op shows if it was made by then and nothing made by then
  // hid it; increments never hide.
  auto is_inc = [&](const OpId& id) {
    for (const Op& o : slot.hidden())
      if (o.id == id) return o.action == Action::kIncrement;
    return false;
  };
  const Op* best = nullptr;
  for (const Op& op : slot.all()) {
    if (op.action == Action::kIncrement || !at->Includes(op.id)) continue;
    bool counter = op.action == Action::kSet && op.value.is_counter();
    bool hidden = false;
    op.ForEachSucc([&](const OpId& s) {
      if (at->Includes(s) && !(counter && is_inc(s))) hidden = true;
    });
    if (!hidden && (!best || order()(best->id, op.id))) best = &op;
  }
  if (best && counter_total) {
    *counter_total = 0;
    for (const Op& o : slot.hidden())
      if (o.action == Action::kIncrement && at->Includes(o.id) && best->HasSucc(o.id))
        *counter_total += o.value.IncrementAmount();
  }
  return best;
}

std::optional<Value> Document::ValueAt(const Slot& slot, const Clock* at) const {
  int64_t total = 0;
  const Op* w = WinnerAt(slot, at, &total);
  if (!w) return std::nullopt;
  auto v = ValueOf(*w);
  if (v && !v->is_object())
    if (auto* c = std::get_if<Counter>(&std::get<ScalarValue>(v->v)))
      v->v = ScalarValue(Counter{c->value - w->inc_total() + total});
  return v;
}

std::optional<Value> Document::Get(const ObjId& obj, std::string_view key) const {
  const Object* o = FindObject(obj);
  if (!o || IsSequence(o->type)) return std::nullopt;
  auto it = o->map().keys.find(key);
  if (it == o->map().keys.end() || !it->second.Winner()) return std::nullopt;
  return ValueOf(*it->second.Winner());
}

std::optional<Value> Document::Get(const ObjId& obj, size_t index) const {
  const Object* o = FindObject(obj);
  if (!o || !IsSequence(o->type) || index >= o->seq().visible()) return std::nullopt;
  return ValueOf(*o->seq().At(o->seq().NthVisible(index)).slot.Winner());
}

std::vector<Value> Document::GetAll(const ObjId& obj, std::string_view key) const {
  std::vector<Value> out;
  const Object* o = FindObject(obj);
  if (!o || IsSequence(o->type)) return out;
  auto it = o->map().keys.find(key);
  if (it == o->map().keys.end()) return out;
  for (const Op& op : it->second.live())
    if (auto v = ValueOf(op)) out.push_back(std::move(*v));
  return out;
}

std::vector<std::string> Document::Keys(const ObjId& obj) const {
  std::vector<std::string> out;
  const Object* o = FindObject(obj);
  if (!o || IsSequence(o->type)) return out;
  for (const auto& [k, slot] : o->map().keys)
    if (!slot.live().empty()) out.push_back(k);
  return out;
}

size_t Document::Length(const ObjId& obj) const {
  const Object* o = FindObject(obj);
  if (!o) return 0;
  if (IsSequence(o->type)) return o->seq().visible();
  return Keys(obj).size();
}

std::string Document::Text(const ObjId& obj) const {
  std::string out;
  const Object* o = FindObject(obj);
  if (!o || !IsSequence(o->type)) return out;
  o->seq().ForEach([&](const Element& e) {
    if (!e.visible()) return;
    const Op& w = *e.slot.Winner();
    if (w.value.is_str() && w.action == Action::kSet) {
      out += w.value.str();
    } else {
      out += "\xEF\xBF\xBC";  // U+FFFC, as the reference shows non-characters
    }
  });
  return out;
}

std::string Document::PathJson(const ObjId& obj) const {
  std::vector<std::string> segments;
  for (ObjId at = obj; !at.is_root();) {
    const Object& o = objects_.at(at);
    const Object& parent = objects_.at(o.parent);
    std::string seg;
    if (o.key.is_map()) {
      AppendJsonString(seg, *o.key.prop);
    } else {
      auto pos = parent.seq().Find(o.key.elem);
      if (pos && parent.seq().At(*pos).visible()) {
        seg = std::to_string(parent.seq().VisibleBefore(*pos));
      } else {
        AppendJsonString(seg, ExportObjId(o.key.elem));
      }
    }
    segments.push_back(std::move(seg));
    at = o.parent;
  }
  std::string out = "[";
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    if (out.size() > 1) out += ',';
    out += *it;
  }
  return out + "]";
}

std::optional<std::string> Document::RootKeyOf(const ObjId& obj) const {
  if (obj.is_root()) return std::nullopt;
  ObjId at = obj;
  while (!objects_.at(at).parent.is_root()) at = objects_.at(at).parent;
  const Key& k = objects_.at(at).key;
  if (!k.is_map()) return std::nullopt;
  return *k.prop;
}

std::optional<ObjId> Document::FindObject(const ActorId& actor, uint32_t counter) const {
  if (counter == 0) return kRoot;
  auto a = FindActor(actor);
  if (!a) return std::nullopt;
  ObjId id{counter, *a};
  if (!FindObject(id)) return std::nullopt;
  return id;
}

std::string Document::ExportObjId(const ObjId& obj) const {
  if (obj.is_root()) return "_root";
  return std::to_string(obj.counter) + "@" + ToHex(actors_[obj.actor]);
}

Result<ObjId> Document::ImportObjId(std::string_view s) const {
  if (s == "_root") return kRoot;
  size_t at = s.find('@');
  if (at == std::string_view::npos || at == 0) return Status::InvalidArgument("bad object ID");
  uint64_t counter = 0;
  for (char c : s.substr(0, at)) {
    if (c < '0' || c > '9' || counter > kMaxCounter)
      return Status::InvalidArgument("bad object ID");
    counter = counter * 10 + (c - '0');
  }
  auto actor = FromHex(s.substr(at + 1));
  if (!actor.ok() || counter == 0 || counter > kMaxCounter)
    return Status::InvalidArgument("bad object ID");
  auto idx = FindActor(*actor);
  if (!idx) return Status::NotFound("no object " + std::string(s));
  ObjId id{static_cast<uint32_t>(counter), *idx};
  if (!FindObject(id)) return Status::NotFound("no object " + std::string(s));
  return id;
}

}  // namespace etherply::automerge
