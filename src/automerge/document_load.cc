// Loading a document chunk into an empty Document. The changes go into the
// change graph as they are rebuilt (their hashes checked against the stored
// heads); the op set is then built from the document's own ops, which come
// in document order (document_chunk.h), as the reference's load does:
// elements are appended in the order they already have and every op arrives
// with its successors, so no change is replayed and no insert searched for.
// What replaying would refuse is refused here too, and a document whose
// elements are not in the order replaying gives (RGA) is corrupt.
#include <unordered_map>
#include <unordered_set>

#include "automerge/document.h"
#include "automerge/document_chunk.h"

namespace etherply::automerge {

// Builds the op set from a document's ops. They come grouped: an object's
// ops together; in a map, each key's ops; in a list or text, each element's
// insert op followed by the ops that update it. A group is stored when the
// next one begins, once the increments among its ops are known.
class Document::OpSetBuilder {
 public:
  explicit OpSetBuilder(Document& doc) : doc_(doc) {}

  // The chunk's actors (sorted): the OpIds of the ops index them.
  Status Actors(std::span<const ActorId> actors) {
    for (const ActorId& a : actors) table_.push_back(doc_.InternActor(a));
    return Status::Ok();
  }
  Status Add(const DocumentOp& op);
  // After the last op.
  Status Finish();

 private:
  // An op of the group being read. IDs are the document's.
  struct GroupOp {
    OpId id;
    Action action;
    PackedValue value;
    int64_t amount;  // an increment's
    uint32_t succ_begin, succ_count;
  };
  // A list's element whose subtree is being read, and its child read last
  // (the next child must have a smaller ID). IDs are the chunk's.
  struct Parent {
    OpId id;
    OpId last_child;  // counter 0: none yet
  };
  enum class Group { kNone, kKey, kElement };

  OpId Global(const OpId& id) const {
    return id.counter == 0 ? id : OpId{id.counter, table_[id.actor]};
  }
  Status StartObject(const OpId& obj);
  // Checks that an element inserted after `origin` comes where RGA puts it:
  // right after its origin's subtree's earlier elements, before its elder
  // siblings' (smaller IDs) and after its younger ones'.
  Status CheckOrder(const OpId& id, const OpId& origin);
  // Stores the group read so far.
  Status Flush();

  Document& doc_;
  std::vector<uint32_t> table_;  // chunk actor index -> document actor index
  OpId obj_id_;                  // the object being read (the chunk's ID)
  Object* obj_ = nullptr;
  std::unordered_set<OpId, OpIdHash> lists_read_;
  std::vector<Parent> path_;  // from HEAD to the last element read
  Group group_ = Group::kNone;
  std::string key_;            // Group::kKey
  Element elem_;               // Group::kElement: its ID, origin and mark flag
  OpId elem_chunk_id_;         // Group::kElement: its ID in the chunk
  std::vector<GroupOp> ops_;
  std::vector<OpId> succ_;     // of ops_, the document's IDs
  std::unordered_map<OpId, int64_t, OpIdHash> increments_;  // Flush's, for large groups
};

Status Document::OpSetBuilder::StartObject(const OpId& obj) {
  if (Status s = Flush(); !s.ok()) return s;
  auto it = doc_.objects_.find(Global(obj));
  if (it == doc_.objects_.end()) return Status::Corruption("op on an object that does not exist");
  obj_id_ = obj;
  obj_ = &it->second;
  if (IsSequence(obj_->type)) {
    if (!lists_read_.insert(obj).second)
      return Status::Corruption("a list's ops are not together in the document");
    path_.assign(1, Parent{OpId{}, OpId{}});
  }
  return Status::Ok();
}

Status Document::OpSetBuilder::CheckOrder(const OpId& id, const OpId& origin) {
  while (!path_.empty() && path_.back().id != origin) path_.pop_back();
  if (path_.empty()) return Status::Corruption("a list element comes before the element it follows");
  OpId& sibling = path_.back().last_child;
  // Document actor indices are in byte order: Lamport order is (counter, index).
  if (sibling.counter != 0 &&
      !(id.counter < sibling.counter || (id.counter == sibling.counter && id.actor < sibling.actor)))
    return Status::Corruption("list elements inserted at one place are out of order");
  sibling = id;
  path_.push_back(Parent{id, OpId{}});
  return Status::Ok();
}

Status Document::OpSetBuilder::Add(const DocumentOp& op) {
  if (!obj_ || op.obj != obj_id_)
    if (Status s = StartObject(op.obj); !s.ok()) return s;
  const bool list = IsSequence(obj_->type);
  if (op.prop) {
    if (list) return Status::Corruption("map key used on a list or text");
    if (op.action == Action::kMark) return Status::Corruption("mark on a map");
    if (group_ != Group::kKey || key_ != *op.prop) {
      if (Status s = Flush(); !s.ok()) return s;
      group_ = Group::kKey;
      key_.assign(*op.prop);
    }
  } else {
    if (!list) return Status::Corruption("list element used on a map");
    if (op.insert) {
      if (op.action == Action::kIncrement) return Status::Corruption("insert of a delete or an increment");
      if (Status s = Flush(); !s.ok()) return s;
      if (Status s = CheckOrder(op.id, op.elem); !s.ok()) return s;
      group_ = Group::kElement;
      elem_chunk_id_ = op.id;
      const OpId origin = Global(op.elem);
      elem_ = Element{.id = Global(op.id), .origin_counter = origin.counter,
                      .origin_actor = origin.actor, .mark = op.action == Action::kMark};
      if (op.action == Action::kMark) doc_.marks_[elem_.id] = {op.mark_name, op.expand};
    } else {
      // The ops updating an element follow its insert op.
      if (group_ != Group::kElement || op.elem != elem_chunk_id_)
        return Status::Corruption("op on a list element that does not exist (or out of order)");
      if (elem_.mark) return Status::Corruption("op on a mark");
    }
  }

  const OpId id = Global(op.id);
  PackedValue value(op.value);
  const int64_t amount = op.action == Action::kIncrement ? value.IncrementAmount() : 0;
  ops_.push_back(GroupOp{id, op.action, std::move(value), amount,
                         static_cast<uint32_t>(succ_.size()), static_cast<uint32_t>(op.succ.size())});
  for (const OpId& s : op.succ) succ_.push_back(Global(s));

  if (std::optional<ObjType> created = CreatedObjType(op.action)) {
    if (doc_.objects_.count(id)) return Status::Corruption("duplicate object ID");
    if (obj_->depth >= kMaxDepth) return TooDeep();
    Key key = op.insert ? Key::Elem(id) : op.prop ? Key::Map(std::string(*op.prop)) : Key::Elem(Global(op.elem));
    doc_.objects_.emplace(id,
                          Object::New(*created, obj_->depth + 1, Global(op.obj), std::move(key)));
  }
  return Status::Ok();
}

Status Document::OpSetBuilder::Flush() {
  if (group_ == Group::kNone) return Status::Ok();
  // An increment among the group's ops, by ID: a successor that is one adds
  // to a counter rather than hides it (AddsTo, as ApplyToSlot applies it).
  const bool large = ops_.size() > 8;
  if (large) {
    increments_.clear();
    for (const GroupOp& g : ops_)
      if (g.action == Action::kIncrement) increments_.emplace(g.id, g.amount);
  }
  auto increment = [&](const OpId& s) -> const int64_t* {
    if (large) {
      auto it = increments_.find(s);
      return it == increments_.end() ? nullptr : &it->second;
    }
    for (const GroupOp& g : ops_)
      if (g.id == s && g.action == Action::kIncrement) return &g.amount;
    return nullptr;
  };
  // A mark is never updated or deleted: replaying refuses an op on it, and
  // in a document such a delete shows only as a successor of the mark.
  if (group_ == Group::kElement && elem_.mark && ops_.front().succ_count > 0)
    return Status::Corruption("op on a mark");
  Slot slot;
  for (GroupOp& g : ops_) {
    Op stored(g.id, g.action, std::move(g.value));
    const bool counter = AddsTo(stored, Action::kIncrement);
    for (uint32_t i = g.succ_begin; i < g.succ_begin + g.succ_count; ++i) {
      stored.AddSucc(succ_[i]);
      const int64_t* amount = counter ? increment(succ_[i]) : nullptr;
      if (amount) {
        stored.AddToIncTotal(*amount);
      } else {
        ++stored.blockers;
      }
    }
    if (g.action == Action::kIncrement || stored.blockers > 0) {
      slot.AddHidden(std::move(stored));
    } else {
      slot.InsertLive(std::move(stored), doc_.order());
    }
  }
  if (group_ == Group::kKey) {
    auto [it, added] = obj_->map().keys.try_emplace(key_);
    if (!added) return Status::Corruption("a map key's ops are not together in the document");
    it->second = std::move(slot);
  } else {
    elem_.slot = std::move(slot);
    obj_->seq().Append(std::move(elem_));
  }
  group_ = Group::kNone;
  ops_.clear();
  succ_.clear();
  return Status::Ok();
}

Status Document::OpSetBuilder::Finish() {
  if (Status s = Flush(); !s.ok()) return s;
  for (auto& [id, o] : doc_.objects_)
    if (IsSequence(o.type)) o.seq().IndexAppended();
  return Status::Ok();
}

Status Document::LoadDocumentChunk(const Chunk& chunk) {
  OpSetBuilder builder(*this);
  DocumentOps ops{[&](std::span<const ActorId> actors) { return builder.Actors(actors); },
                  [&](const DocumentOp& op) { return builder.Add(op); }};
  Status s = ForEachDocumentChange(
      chunk,
      [&](StoredChange& sc) {
        if (changes_.Contains(sc.hash)) return Status::Ok();  // a row given twice
        for (const ChangeOp& op : sc.change.ops)
          if (op.insert && !op.pred.empty())
            return Status::Corruption("change " + HashToHex(sc.hash) + ": insert with preds");
        uint32_t actor = InternActor(sc.change.actor);
        if (Status s = CheckSeq(sc, actor); !s.ok()) return s;
        AddToGraph(sc, actor);
        return Status::Ok();
      },
      &ops);
  if (s.ok()) s = builder.Finish();
  undo_.clear();
  return s;
}

}  // namespace etherply::automerge
