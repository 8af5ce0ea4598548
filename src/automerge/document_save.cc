// Document::Save: walks the op set in the order of FORMAT.md §6.4 and feeds
// a DocumentChunkWriter (the grammar is in document_chunk.h).
#include <algorithm>

#include "automerge/document.h"
#include "automerge/document_chunk.h"

namespace etherply::automerge {

Bytes Document::Save() const {
  // The saved actor table: actors that authored a change, sorted by bytes.
  // rank_ is byte order over all interned actors, so sorting by rank sorts
  // by bytes; `saved[a]` is actor a's index in the table.
  std::vector<uint32_t> authors;
  for (uint32_t a = 0; a < actors_.size(); ++a)
    if (!by_actor_[a].empty()) authors.push_back(a);
  std::sort(authors.begin(), authors.end(), [&](uint32_t x, uint32_t y) { return rank_[x] < rank_[y]; });
  std::vector<uint32_t> saved(actors_.size(), 0);
  std::vector<ActorId> table;
  for (uint32_t a : authors) {
    saved[a] = static_cast<uint32_t>(table.size());
    table.push_back(actors_[a]);
  }
  auto to_saved = [&](OpId id) { return id.is_root() ? id : OpId{id.counter, saved[id.actor]}; };
  DocumentChunkWriter w(std::move(table));

  // Changes, in the order applied.
  std::vector<uint64_t> deps;
  for (size_t i = 0; i < changes_.size(); ++i) {
    const StoredChange sc = changes_.Get(i);
    const Change& c = sc.change;
    deps.assign(changes_.deps(i).begin(), changes_.deps(i).end());
    std::optional<std::string_view> message;
    if (!c.message.empty() || c.empty_message) message = c.message;
    w.AddChange(DocumentChange{saved[changes_.actor(i)], c.seq, changes_.max_op(i), c.time,
                               message, deps, c.extra});
  }

  // Ops: objects root first, then by ID in Lamport order.
  std::vector<ObjId> objs;
  objs.reserve(objects_.size());
  for (const auto& [id, o] : objects_) objs.push_back(id);
  std::sort(objs.begin(), objs.end(), [&](const ObjId& a, const ObjId& b) {
    if (a.is_root() != b.is_root()) return a.is_root();
    return order()(a, b);
  });
  std::vector<const Op*> ops;
  std::vector<OpId> succ;
  const std::optional<std::string> no_name;
  // The ops of one slot, by ID.
  auto collect = [&](const Slot& slot) {
    ops.clear();
    for (const Op& op : slot.all()) ops.push_back(&op);
    std::sort(ops.begin(), ops.end(), [&](const Op* a, const Op* b) { return order()(a->id, b->id); });
  };
  auto sorted_succ = [&](const Op& op) {
    succ.clear();
    op.ForEachSucc([&](const OpId& s) { succ.push_back(s); });
    std::sort(succ.begin(), succ.end(), order());
    for (OpId& s : succ) s = to_saved(s);
    return std::span<const OpId>(succ);
  };
  for (const ObjId& id : objs) {
    const Object& o = objects_.at(id);
    const ObjId obj = to_saved(id);
    if (!IsSequence(o.type)) {
      for (const auto& [key, slot] : o.map().keys) {
        collect(slot);
        for (const Op* op : ops)
          w.AddOp(DocumentOp{obj, key, {}, to_saved(op->id), false, op->action, op->value.Get(),
                             sorted_succ(*op), false, no_name});
      }
      continue;
    }
    o.seq().ForEach([&](const Element& e) {
      collect(e.slot);
      for (const Op* op : ops) {
        bool insert = op->id == e.id;
        const std::optional<std::string>* name = &no_name;
        bool expand = false;
        if (op->action == Action::kMark) {
          const auto& m = marks_.at(op->id);
          name = &m.first;
          expand = m.second;
        }
        w.AddOp(DocumentOp{obj, std::nullopt, to_saved(insert ? e.origin() : e.id),
                           to_saved(op->id), insert, op->action, op->value.Get(), sorted_succ(*op),
                           expand, *name});
      }
    });
  }

  std::vector<std::pair<ChangeHash, uint64_t>> heads;
  for (const ChangeHash& h : heads_) heads.emplace_back(h, *changes_.Find(h));
  Bytes out = w.Finish(heads);
  for (const StoredChange& sc : queue_) Append(out, sc.bytes);
  return out;
}

}  // namespace etherply::automerge
