#include "automerge/document_chunk.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "automerge/columns.h"
#include "automerge/packed_value.h"
#include "base/deflate.h"
#include "base/huge_pages.h"

namespace etherply::automerge {

namespace {

constexpr uint32_t kDeflateBit = 8;

// Column metadata of a document: spec (deflate bit cleared) -> bytes.
struct Columns {
  std::map<uint32_t, Bytes> data;

  ByteView operator[](uint32_t spec) const {
    auto it = data.find(spec);
    return it == data.end() ? ByteView() : ByteView(it->second);
  }
};

Result<std::vector<std::pair<uint32_t, uint64_t>>> ReadColumnMeta(Reader& r) {
  auto n = r.Uleb();
  if (!n.ok()) return n.status().WithContext("column metadata");
  if (*n > r.remaining()) return Status::Corruption("column metadata: more columns than bytes");
  std::vector<std::pair<uint32_t, uint64_t>> meta;
  for (uint64_t i = 0; i < *n; ++i) {
    auto spec = r.Uleb32();
    auto len = r.Uleb();
    if (!spec.ok() || !len.ok()) return Status::Corruption("column metadata is truncated");
    if (!meta.empty() && (*spec & ~kDeflateBit) <= (meta.back().first & ~kDeflateBit))
      return Status::Corruption("columns are not in normalized order");
    meta.emplace_back(*spec, *len);
  }
  return meta;
}

Result<Columns> ReadColumnData(Reader& r, const std::vector<std::pair<uint32_t, uint64_t>>& meta) {
  Columns cols;
  for (auto [spec, len] : meta) {
    auto bytes = r.Take(len);
    if (!bytes.ok()) return Status::Corruption("column data runs past the end of the document");
    if (spec & kDeflateBit) {
      auto inflated = Inflate(*bytes, kMaxInflatedSize);
      if (!inflated.ok()) return inflated.status().WithContext("deflated column");
      cols.data[spec & ~kDeflateBit] = std::move(*inflated);
    } else {
      cols.data[spec] = Bytes(bytes->begin(), bytes->end());
    }
  }
  return cols;
}

// One row of the change columns, kept small (a document can have millions):
// its deps, message and extra bytes live in the shared arrays of ChangeRows.
struct ChangeRow {
  uint32_t actor;
  uint32_t deps_begin;  // in ChangeRows::deps
  uint32_t deps_count;
  bool has_message;
  uint64_t message_begin;  // in ChangeRows::bytes
  uint32_t message_size;
  uint32_t extra_size;  // follows the message in ChangeRows::bytes
  uint64_t seq;
  uint64_t max_op;
  int64_t time;
};

struct ChangeRows {
  std::vector<ChangeRow, HugePageAllocator<ChangeRow>> rows;  // large: huge pages
  std::vector<uint32_t> deps;  // row indices
  std::string bytes;           // messages and extra bytes

  std::optional<std::string_view> message(const ChangeRow& r) const {
    if (!r.has_message) return std::nullopt;
    return std::string_view(bytes).substr(r.message_begin, r.message_size);
  }
  ByteView extra(const ChangeRow& r) const {
    return AsBytes(std::string_view(bytes).substr(r.message_begin + r.message_size, r.extra_size));
  }
  std::span<const uint32_t> deps_of(const ChangeRow& r) const {
    return std::span<const uint32_t>(deps).subspan(r.deps_begin, r.deps_count);
  }
};

// An op of the document waiting for its change to be rebuilt, in 56 bytes
// (a ChangeOp is about 180 and heap blocks): a document holds a million.
// Map keys, preds and mark names live in the shared tables of PendingOps.
struct PendingOp {
  static constexpr uint32_t kNoProp = UINT32_MAX;
  OpId id;    // document actor indices, as every OpId here
  OpId obj;
  OpId elem;  // the list key, when prop is kNoProp
  uint32_t prop = kNoProp;
  uint32_t pred_begin = 0;
  uint32_t pred_count = 0;
  Action action = Action::kSet;
  bool insert = false;
  bool expand = false;
  bool filled = false;  // the document gave this op
  PackedValue value;
};
static_assert(sizeof(PendingOp) == 56);

// The ops of a document's changes, in change order: change r's op with
// counter k at position begin[r] + k - start[r]. They are stored in blocks
// of one huge page (base/huge_pages.h; a small document's one block is only
// as large as it needs), allocated when first written and freed once their
// changes are rebuilt.
class PendingOps {
 public:
  std::vector<OpId> preds;
  std::vector<std::string> props;

  // The slot at pos, allocating its block.
  PendingOp& At(uint64_t pos) {
    Block& block = blocks_[pos / kBlock];
    if (block.empty()) block.resize(std::min<uint64_t>(kBlock, positions_ - pos / kBlock * kBlock));
    return block[pos % kBlock];
  }
  const PendingOp& Get(uint64_t pos) const { return blocks_[pos / kBlock][pos % kBlock]; }
  void Resize(uint64_t positions) {
    positions_ = positions;
    blocks_.resize((positions + kBlock - 1) / kBlock);
  }
  // Frees the blocks that hold only positions before pos.
  void FreeBefore(uint64_t pos) {
    for (size_t b = freed_; b < pos / kBlock; ++b) Block().swap(blocks_[b]);
    freed_ = std::max<size_t>(freed_, pos / kBlock);
  }

  uint32_t Prop(const std::string& p) {
    auto [it, added] = prop_index_.try_emplace(p, static_cast<uint32_t>(props.size()));
    if (added) props.push_back(p);
    return it->second;
  }
  void SetMarkName(const OpId& id, std::string name) { mark_names_.emplace(id, std::move(name)); }

  // Sets op to the op as a change holds it (reusing op's buffers).
  void ToChangeOp(const PendingOp& p, ChangeOp& op) const {
    op.obj = p.obj;
    op.key = p.prop == PendingOp::kNoProp ? Key::Elem(p.elem) : Key::Map(props[p.prop]);
    op.insert = p.insert;
    op.action = p.action;
    op.value = p.value.Get();
    op.pred.assign(preds.begin() + p.pred_begin, preds.begin() + p.pred_begin + p.pred_count);
    op.expand = p.expand;
    op.mark_name.reset();
    if (auto it = mark_names_.find(p.id); it != mark_names_.end()) op.mark_name = it->second;
  }

 private:
  using Block = std::vector<PendingOp, HugePageAllocator<PendingOp>>;
  static constexpr size_t kBlock = (size_t{2} << 20) / sizeof(PendingOp);
  std::vector<Block> blocks_;
  uint64_t positions_ = 0;
  size_t freed_ = 0;
  std::unordered_map<std::string, uint32_t> prop_index_;
  std::unordered_map<OpId, std::string, OpIdHash> mark_names_;  // of the ops that have one
};

// A decoded document op, before it is given back to its change.
struct DocOp {
  OpId id;
  ChangeOp op;
  std::vector<OpId> succ;
};

Result<ChangeRows> ReadChangeRows(const Columns& c, size_t nactors) {
  UlebDecoder actor(c[1]);
  DeltaDecoder seq(c[3]), max_op(c[19]), time(c[35]), dep_index(c[67]);
  StringDecoder message(c[53]);
  UlebDecoder dep_count(c[64]);
  ValueDecoder extra(c[86], c[87]);
  ChangeRows out;
  auto& rows = out.rows;
  {
    UlebDecoder count(c[1]);  // one allocation of the right size
    size_t n = 0;
    while (!count.done() && count.Next().ok())
      if (++n > kMaxDocumentChanges)
        return Status::Corruption("more changes than a document chunk may hold (" +
                                  std::to_string(kMaxDocumentChanges) + ")");
    rows.reserve(n);
  }
  while (!actor.done()) {
    ChangeRow row{};
    auto a = actor.Next();
    auto s = seq.Next();
    auto m = max_op.Next();
    auto t = time.Next();
    auto msg = message.Next();
    auto nd = dep_count.Next();
    auto x = extra.Next();
    for (const Status& st : {a.status(), s.status(), m.status(), t.status(), msg.status(),
                             nd.status(), x.status()})
      if (!st.ok()) return st.WithContext("change columns");
    if (!a->has_value() || **a >= nactors) return Status::Corruption("change actor out of range");
    if (!s->has_value() || **s < 1) return Status::Corruption("change seq missing");
    if (!m->has_value() || **m < 0 || static_cast<uint64_t>(**m) > kMaxCounter)
      return Status::Corruption("change maxOp out of range");
    row.actor = static_cast<uint32_t>(**a);
    row.seq = static_cast<uint64_t>(**s);
    row.max_op = static_cast<uint64_t>(**m);
    row.time = t->value_or(0);
    row.has_message = msg->has_value();
    row.message_begin = out.bytes.size();
    if (*msg) {
      if ((*msg)->size() > UINT32_MAX) return Status::Corruption("change message too long");
      row.message_size = static_cast<uint32_t>((*msg)->size());
      out.bytes += **msg;
    }
    row.deps_begin = static_cast<uint32_t>(out.deps.size());
    for (uint64_t i = 0; i < nd->value_or(0); ++i) {
      auto d = dep_index.Next();
      if (!d.ok()) return d.status().WithContext("deps column");
      if (!d->has_value() || **d < 0 || static_cast<uint64_t>(**d) >= rows.size())
        return Status::Corruption("a change depends on a row that is not before it");
      if (out.deps.size() >= UINT32_MAX) return Status::Corruption("too many deps in a document");
      out.deps.push_back(static_cast<uint32_t>(**d));
    }
    row.deps_count = static_cast<uint32_t>(out.deps.size() - row.deps_begin);
    if (auto* b = std::get_if<Bytes>(&*x)) {
      if (b->size() > UINT32_MAX) return Status::Corruption("change extra bytes too long");
      row.extra_size = static_cast<uint32_t>(b->size());
      out.bytes += AsChars(*b);
    } else if (!std::holds_alternative<std::monostate>(*x)) {
      return Status::Corruption("change extra bytes are not bytes");
    }
    rows.push_back(std::move(row));
  }
  if (!seq.done() || !max_op.done() || !time.done() || !message.done() || !dep_count.done() ||
      !dep_index.done() || !extra.done())
    return Status::Corruption("change columns disagree on the number of changes");
  return out;
}

// Calls f(id) for the ID of every op and every succ entry in the op columns
// (a succ that is no op of the document is the ID of a delete), decoding
// only those columns.
Status ForEachOpId(const Columns& c, size_t nactors, const std::function<Status(OpId)>& f) {
  UlebDecoder id_actor(c[33]), succ_count(c[128]), succ_actor(c[129]);
  DeltaDecoder id_counter(c[35]), succ_counter(c[131]);
  auto visit = [&](const Result<std::optional<uint64_t>>& a,
                   const Result<std::optional<int64_t>>& ctr) -> Status {
    if (!a.ok() || !ctr.ok() || !*a || !*ctr || **a >= nactors || **ctr <= 0 ||
        static_cast<uint64_t>(**ctr) > kMaxCounter)
      return Status::Corruption("bad op ID in a document op");
    return f(OpId{static_cast<uint32_t>(**ctr), static_cast<uint32_t>(**a)});
  };
  while (!id_actor.done()) {
    auto a = id_actor.Next();
    if (Status s = visit(a, id_counter.Next()); !s.ok()) return s;
    auto n = succ_count.Next();
    if (!n.ok()) return Status::Corruption("succ columns are malformed");
    for (uint64_t i = 0; i < n->value_or(0); ++i) {
      auto sa = succ_actor.Next();
      if (Status s = visit(sa, succ_counter.Next()); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

// Decodes the op columns, giving each op to `visit` as soon as it is read.
Status ReadOps(const Columns& c, size_t nactors, const std::function<Status(DocOp&)>& visit) {
  UlebDecoder obj_actor(c[1]), obj_counter(c[2]), key_actor(c[17]), id_actor(c[33]),
      action(c[66]), succ_count(c[128]), succ_actor(c[129]);
  DeltaDecoder key_counter(c[19]), id_counter(c[35]), succ_counter(c[131]);
  StringDecoder key_string(c[21]), mark_name(c[165]);
  BooleanDecoder insert(c[52]), expand(c[148]);
  ValueDecoder value(c[86], c[87]);
  auto op_id = [&](std::optional<uint64_t> a, std::optional<int64_t> ctr,
                   const char* what) -> Result<OpId> {
    if (!a || !ctr || *a >= nactors || *ctr <= 0 || static_cast<uint64_t>(*ctr) > kMaxCounter)
      return Status::Corruption(std::string("bad ") + what + " in a document op");
    return OpId{static_cast<uint32_t>(*ctr), static_cast<uint32_t>(*a)};
  };
  DocOp d;  // one for every op: its succ vector keeps its buffer
  while (!action.done()) {
    d.op.obj = OpId{};
    d.succ.clear();
    auto oa = obj_actor.Next();
    auto oc = obj_counter.Next();
    auto ka = key_actor.Next();
    auto kc = key_counter.Next();
    auto ks = key_string.Next();
    auto ia = id_actor.Next();
    auto ic = id_counter.Next();
    auto ins = insert.Next();
    auto act = action.Next();
    auto val = value.Next();
    auto ns = succ_count.Next();
    auto exp = expand.Next();
    auto mn = mark_name.Next();
    if (!(oa.ok() && oc.ok() && ka.ok() && kc.ok() && ks.ok() && ia.ok() && ic.ok() && ins.ok() &&
          act.ok() && val.ok() && ns.ok() && exp.ok() && mn.ok())) {
      for (const Status& st : {oa.status(), oc.status(), ka.status(), kc.status(), ks.status(),
                               ia.status(), ic.status(), ins.status(), act.status(), val.status(),
                               ns.status(), exp.status(), mn.status()})
        if (!st.ok()) return st.WithContext("op columns");
    }
    if (oa->has_value() || oc->has_value()) {
      std::optional<int64_t> ctr;
      if (oc->has_value()) ctr = static_cast<int64_t>(std::min<uint64_t>(**oc, INT64_MAX));
      auto id = op_id(*oa, ctr, "object");
      if (!id.ok()) return id.status();
      d.op.obj = *id;
    }
    if (ks->has_value()) {
      if (ka->has_value() || kc->has_value()) return Status::Corruption("op key is both kinds");
      d.op.key = Key::Map(std::move(**ks));
    } else if (kc->has_value() && **kc == 0 && !ka->has_value()) {
      d.op.key = Key::Elem(OpId{});
    } else {
      auto id = op_id(*ka, *kc, "key");
      if (!id.ok()) return id.status();
      d.op.key = Key::Elem(*id);
    }
    auto id = op_id(*ia, *ic, "op ID");
    if (!id.ok()) return id.status();
    d.id = *id;
    d.op.insert = *ins;
    if (!act->has_value() || **act > kMaxAction) return Status::Corruption("unrecognized action");
    d.op.action = static_cast<Action>(**act);
    if (d.op.action == Action::kDelete) return Status::Corruption("a delete op in a document");
    d.op.value = std::move(*val);
    d.op.expand = *exp;
    d.op.mark_name = std::move(*mn);
    for (uint64_t i = 0; i < ns->value_or(0); ++i) {
      auto sa = succ_actor.Next();
      auto sc = succ_counter.Next();
      if (!sa.ok() || !sc.ok()) return Status::Corruption("succ columns are malformed");
      auto sid = op_id(*sa, *sc, "succ");
      if (!sid.ok()) return sid.status();
      d.succ.push_back(*sid);
    }
    if (Status s = visit(d); !s.ok()) return s;
  }
  if (!obj_actor.done() || !obj_counter.done() || !key_actor.done() || !key_counter.done() ||
      !key_string.done() || !id_actor.done() || !id_counter.done() || !insert.done() ||
      !value.done() || !succ_count.done() || !succ_actor.done() || !succ_counter.done() ||
      !expand.done() || !mark_name.done())
    return Status::Corruption("op columns disagree on the number of ops");
  return Status::Ok();
}

}  // namespace

Result<std::vector<StoredChange>> DecodeDocumentChunk(const Chunk& chunk) {
  std::vector<StoredChange> out;
  Status s = ForEachDocumentChange(chunk, [&](StoredChange& sc) {
    out.push_back(std::move(sc));
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Status ForEachDocumentChange(const Chunk& chunk, const std::function<Status(StoredChange&)>& each,
                             const DocumentOps* ops) {
  Reader r(chunk.body());
  auto nactors = r.Uleb();
  if (!nactors.ok() || *nactors > r.remaining()) return Status::Corruption("document actors");
  std::vector<ActorId> actors;
  for (uint64_t i = 0; i < *nactors; ++i) {
    auto a = r.LengthPrefixed();
    if (!a.ok()) return Status::Corruption("document actors are truncated");
    actors.emplace_back(a->begin(), a->end());
  }
  auto nheads = r.Uleb();
  if (!nheads.ok() || *nheads > r.remaining() / 32) return Status::Corruption("document heads");
  std::vector<ChangeHash> heads(*nheads);
  for (auto& h : heads) {
    auto b = r.Take(32);
    std::copy(b->begin(), b->end(), h.begin());
  }
  auto change_meta = ReadColumnMeta(r);
  if (!change_meta.ok()) return change_meta.status().WithContext("change columns");
  auto op_meta = ReadColumnMeta(r);
  if (!op_meta.ok()) return op_meta.status().WithContext("op columns");
  auto change_cols = ReadColumnData(r, *change_meta);
  if (!change_cols.ok()) return change_cols.status();
  auto op_cols = ReadColumnData(r, *op_meta);
  if (!op_cols.ok()) return op_cols.status();
  // Head indexes (absent in very old files) are not needed: heads are recomputed.
  for (uint64_t i = 0; i < *nheads && !r.empty(); ++i)
    if (!r.Uleb().ok()) return Status::Corruption("head indexes are malformed");
  if (!r.empty()) return Status::Corruption("bytes after the document's columns");

  auto change_rows = ReadChangeRows(*change_cols, actors.size());
  if (!change_rows.ok()) return change_rows.status();
  auto* rows = &change_rows->rows;
  *change_cols = Columns();

  // Which change owns an op: per actor, its changes by seq, each owning the
  // counters (previous maxOp, maxOp].
  std::vector<std::vector<size_t>> by_actor(actors.size());
  for (size_t i = 0; i < rows->size(); ++i) by_actor[(*rows)[i].actor].push_back(i);
  for (auto& list : by_actor) {
    std::sort(list.begin(), list.end(),
              [&](size_t a, size_t b) { return (*rows)[a].seq < (*rows)[b].seq; });
    for (size_t k = 1; k < list.size(); ++k)
      if ((*rows)[list[k]].max_op < (*rows)[list[k - 1]].max_op)
        return Status::Corruption("an actor's maxOp decreases with seq");
  }
  // The change that owns an op: the first of its actor's changes whose maxOp
  // is at least the op's counter. Ops in document order mostly belong to the
  // change of the op before them or the next one (text typed in runs), so
  // the position found last for the actor is tried first.
  std::vector<size_t> last_found(actors.size(), 0);
  auto owner = [&](const OpId& id) -> std::optional<size_t> {
    const auto& list = by_actor[id.actor];
    size_t& hint = last_found[id.actor];
    auto owns = [&](size_t k) {
      return k < list.size() && (*rows)[list[k]].max_op >= id.counter &&
             (k == 0 || (*rows)[list[k - 1]].max_op < id.counter);
    };
    if (owns(hint)) return list[hint];
    if (owns(hint + 1)) return list[++hint];
    auto it = std::lower_bound(list.begin(), list.end(), id.counter,
                               [&](size_t row, uint64_t ctr) { return (*rows)[row].max_op < ctr; });
    if (it == list.end()) return std::nullopt;
    hint = static_cast<size_t>(it - list.begin());
    return *it;
  };
  auto lamport = [&](const OpId& a, const OpId& b) {
    // Document actors are sorted by bytes, so index order is byte order.
    return a.counter != b.counter ? a.counter < b.counter : a.actor < b.actor;
  };

  // Where each change's ops go: a change's ops have consecutive counters
  // up to its maxOp, from the least counter among them.
  std::vector<uint64_t> start(rows->size()), begin(rows->size() + 1, 0);
  for (size_t i = 0; i < rows->size(); ++i) start[i] = (*rows)[i].max_op + 1;
  uint64_t ids = 0;
  Status scan = ForEachOpId(*op_cols, actors.size(), [&](OpId id) -> Status {
    auto row = owner(id);
    if (!row) return Status::Corruption("an op fits no change (its counter is above maxOp)");
    start[*row] = std::min<uint64_t>(start[*row], id.counter);
    if (++ids > kMaxDocumentOpIds)
      return Status::Corruption("more op IDs than a document chunk may hold (" +
                                std::to_string(kMaxDocumentOpIds) + ")");
    return Status::Ok();
  });
  if (!scan.ok()) return scan;
  for (size_t i = 0; i < rows->size(); ++i)
    begin[i + 1] = begin[i] + ((*rows)[i].max_op + 1 - start[i]);
  // Each position needs an op or a succ entry of its own.
  if (begin.back() > ids) return Status::Corruption("a change's ops have gaps (missing ops)");
  PendingOps pending;
  pending.Resize(begin.back());
  uint64_t filled = 0;
  auto place = [&](const OpId& id) -> Result<PendingOp*> {
    auto row = owner(id);
    if (!row) return Status::Corruption("an op fits no change (its counter is above maxOp)");
    PendingOp& p = pending.At(begin[*row] + (id.counter - start[*row]));
    if (p.filled) return Status::Corruption("two ops with one ID");
    p.filled = true;
    p.id = id;
    ++filled;
    return &p;
  };

  // Walk the ops in document order, giving each its preds and synthesizing
  // the deletes that documents leave out (§6.5 step 2).
  auto set_preds = [&](PendingOp& p, std::vector<OpId>& pred) -> Status {
    if (pending.preds.size() + pred.size() > UINT32_MAX) return Status::Corruption("too many preds");
    std::sort(pred.begin(), pred.end(), lamport);
    p.pred_begin = static_cast<uint32_t>(pending.preds.size());
    p.pred_count = static_cast<uint32_t>(pred.size());
    pending.preds.insert(pending.preds.end(), pred.begin(), pred.end());
    return Status::Ok();
  };
  std::unordered_map<OpId, std::vector<OpId>, OpIdHash> preds;
  OpId group_obj{};
  std::optional<std::string> group_prop;
  uint32_t group_prop_index = PendingOp::kNoProp;
  OpId group_elem{};
  bool in_group = false;
  auto flush_deletes = [&]() -> Status {
    for (auto& [del_id, pred] : preds) {
      auto p = place(del_id);
      if (!p.ok()) return p.status();
      PendingOp& del = **p;
      del.obj = group_obj;
      del.elem = group_elem;
      del.prop = group_prop_index;
      del.action = Action::kDelete;
      if (Status s = set_preds(del, pred); !s.ok()) return s;
    }
    preds.clear();
    return Status::Ok();
  };
  // Mark begins seen so far: in a document a mark's end (a mark op with no
  // name) must come after its begin, the op before it (the reference
  // refuses the document otherwise).
  std::unordered_set<OpId, OpIdHash> mark_begins;
  // The ops are taken as they are decoded, each kept in its compact form.
  auto visit = [&](DocOp& d) -> Status {
    if (d.op.action == Action::kMark) {
      if (d.op.mark_name) {
        mark_begins.insert(d.id);
      } else if (!mark_begins.count(OpId{d.id.counter - 1, d.id.actor})) {
        return Status::Corruption("invalid mark operation order");
      }
    }
    bool same_group;
    if (d.op.key.is_map()) {
      same_group = in_group && group_obj == d.op.obj && group_prop == d.op.key.prop;
    } else {
      // A list element's group: its insert op and the ops that update it.
      OpId elem = d.op.insert ? d.id : d.op.key.elem;
      same_group = in_group && group_obj == d.op.obj && !group_prop && group_elem == elem;
    }
    if (!same_group) {
      if (Status s = flush_deletes(); !s.ok()) return s;
      in_group = true;
      group_obj = d.op.obj;
      group_prop = d.op.key.prop;
      group_prop_index = group_prop ? pending.Prop(*group_prop) : PendingOp::kNoProp;
      group_elem = d.op.key.is_map() ? OpId{} : (d.op.insert ? d.id : d.op.key.elem);
    }
    auto placed = place(d.id);
    if (!placed.ok()) return placed.status();
    PendingOp& p = **placed;
    p.obj = d.op.obj;
    p.elem = d.op.key.elem;
    p.prop = group_prop_index;
    p.value = PackedValue(d.op.value);
    p.action = d.op.action;
    p.insert = d.op.insert;
    p.expand = d.op.expand;
    if (d.op.mark_name) pending.SetMarkName(d.id, std::move(*d.op.mark_name));
    if (auto it = preds.find(d.id); it != preds.end()) {
      if (Status s = set_preds(p, it->second); !s.ok()) return s;
      preds.erase(it);
    }
    for (const OpId& s : d.succ) preds[s].push_back(d.id);
    return Status::Ok();
  };
  if (Status s = ReadOps(*op_cols, actors.size(), visit); !s.ok()) return s;
  if (!ops) *op_cols = Columns();
  if (Status s = flush_deletes(); !s.ok()) return s;
  if (filled != begin.back()) return Status::Corruption("a change's ops have gaps (missing ops)");

  // Rebuild each change in row order (§6.5 step 3), handing it on at once.
  std::vector<ChangeHash, HugePageAllocator<ChangeHash>> hashes;
  hashes.reserve(rows->size());
  std::vector<bool> not_head(rows->size(), false);
  ChangeEncoder encoder;
  Change c;  // one for every change: its vectors keep their buffers
  for (size_t r = 0; r < rows->size(); ++r) {
    const ChangeRow& row = (*rows)[r];
    c.seq = row.seq;
    c.time = row.time;
    std::optional<std::string_view> message = change_rows->message(row);
    c.message.assign(message.value_or(""));
    c.empty_message = message && message->empty();
    ByteView extra = change_rows->extra(row);
    c.extra.assign(extra.begin(), extra.end());
    c.start_op = start[r];
    c.ops.resize(begin[r + 1] - begin[r]);
    for (uint64_t pos = begin[r]; pos < begin[r + 1]; ++pos)
      pending.ToChangeOp(pending.Get(pos), c.ops[pos - begin[r]]);
    pending.FreeBefore(begin[r + 1]);
    c.deps.clear();
    for (uint32_t dep : change_rows->deps_of(row)) {
      c.deps.push_back(hashes[dep]);
      not_head[dep] = true;
    }
    std::sort(c.deps.begin(), c.deps.end());
    NormalizeActors(c, actors, row.actor);
    StoredChange sc = encoder.Encode(std::move(c));
    hashes.push_back(sc.hash);
    if (Status s = each(sc); !s.ok()) return s;
    c = std::move(sc.change);
  }
  std::vector<ChangeHash> computed;
  for (size_t i = 0; i < hashes.size(); ++i)
    if (!not_head[i]) computed.push_back(hashes[i]);
  std::sort(computed.begin(), computed.end());
  std::vector<ChangeHash> stored = heads;
  std::sort(stored.begin(), stored.end());
  if (computed != stored) return Status::Corruption("mismatching heads: the document's changes do not hash to its heads");
  if (!ops) return Status::Ok();

  // The document itself, decoded a second time: the changes' waiting ops
  // are freed by now, so that what a loader builds can take their memory.
  if (Status s = ops->actors(actors); !s.ok()) return s;
  return ReadOps(*op_cols, actors.size(), [&](DocOp& d) {
    std::optional<std::string_view> prop;
    if (d.op.key.is_map()) prop = *d.op.key.prop;
    return ops->op(DocumentOp{d.op.obj, prop, d.op.key.is_map() ? OpId{} : d.op.key.elem, d.id,
                              d.op.insert, d.op.action, d.op.value, d.succ, d.op.expand,
                              d.op.mark_name});
  });
}


// --- writing ------------------------------------------------------------------------

namespace {
// The reference deflates a column when its encoding is at least this long.
constexpr size_t kDeflateMinSize = 256;

// Appends column metadata for the non-empty columns and returns their data,
// deflating those at or above the threshold.
Bytes WriteColumns(Bytes& meta, std::vector<std::pair<uint32_t, Bytes>> columns) {
  Bytes data;
  size_t n = 0;
  for (auto& [spec, bytes] : columns) {
    if (bytes.empty()) continue;
    ++n;
    if (bytes.size() >= kDeflateMinSize) {
      bytes = Deflate(bytes);
      spec |= kDeflateBit;
    }
  }
  AppendUleb(meta, n);
  for (const auto& [spec, bytes] : columns) {
    if (bytes.empty()) continue;
    AppendUleb(meta, spec);
    AppendUleb(meta, bytes.size());
    Append(data, bytes);
  }
  return data;
}
}  // namespace

struct DocumentChunkWriter::Columns {
  // Change columns.
  UlebEncoder change_actor, deps_count;
  DeltaEncoder seq, max_op, time, deps;
  StringEncoder message;
  ValueEncoder extra;
  // Op columns.
  UlebEncoder obj_actor, obj_counter, key_actor, id_actor, action, succ_count, succ_actor;
  DeltaEncoder key_counter, id_counter, succ_counter;
  StringEncoder key_string, mark_name;
  BooleanEncoder insert, expand;
  ValueEncoder value;
};

DocumentChunkWriter::DocumentChunkWriter(std::vector<ActorId> actors)
    : actors_(std::move(actors)), cols_(std::make_unique<Columns>()) {}

DocumentChunkWriter::~DocumentChunkWriter() = default;

void DocumentChunkWriter::AddChange(const DocumentChange& c) {
  Columns& k = *cols_;
  k.change_actor.Append(c.actor);
  k.seq.Append(static_cast<int64_t>(c.seq));
  k.max_op.Append(static_cast<int64_t>(c.max_op));
  k.time.Append(c.time);
  if (c.message) {
    k.message.Append(std::string(*c.message));
  } else {
    k.message.AppendNull();
  }
  k.deps_count.Append(c.deps.size());
  for (uint64_t d : c.deps) k.deps.Append(static_cast<int64_t>(d));
  k.extra.Append(ScalarValue(Bytes(c.extra.begin(), c.extra.end())));
}

void DocumentChunkWriter::AddOp(const DocumentOp& op) {
  Columns& k = *cols_;
  if (op.obj.is_root()) {
    k.obj_actor.AppendNull();
    k.obj_counter.AppendNull();
  } else {
    k.obj_actor.Append(op.obj.actor);
    k.obj_counter.Append(op.obj.counter);
  }
  if (op.prop) {
    k.key_actor.AppendNull();
    k.key_counter.AppendNull();
    k.key_string.Append(std::string(*op.prop));
  } else {
    if (op.elem.is_root()) {
      k.key_actor.AppendNull();
    } else {
      k.key_actor.Append(op.elem.actor);
    }
    k.key_counter.Append(op.elem.counter);
    k.key_string.AppendNull();
  }
  k.id_actor.Append(op.id.actor);
  k.id_counter.Append(op.id.counter);
  k.insert.Append(op.insert);
  k.action.Append(static_cast<uint64_t>(op.action));
  k.value.Append(op.value);
  k.succ_count.Append(op.succ.size());
  for (const OpId& s : op.succ) {
    k.succ_actor.Append(s.actor);
    k.succ_counter.Append(s.counter);
  }
  k.expand.Append(op.expand);
  k.mark_name.Append(op.mark_name);
}

Bytes DocumentChunkWriter::Finish(const std::vector<std::pair<ChangeHash, uint64_t>>& heads) {
  Columns& k = *cols_;
  Bytes body;
  AppendUleb(body, actors_.size());
  for (const ActorId& a : actors_) {
    AppendUleb(body, a.size());
    Append(body, a);
  }
  AppendUleb(body, heads.size());
  for (const auto& [hash, row] : heads) body.insert(body.end(), hash.begin(), hash.end());
  Bytes change_data = WriteColumns(
      body, {{1, k.change_actor.Finish()},
             {3, k.seq.Finish()},
             {19, k.max_op.Finish()},
             {35, k.time.Finish()},
             {53, k.message.Finish()},
             {64, k.deps_count.Finish()},
             {67, k.deps.Finish()},
             {86, k.extra.FinishMeta()},
             {87, k.extra.FinishRaw()}});
  Bytes op_data = WriteColumns(
      body, {{1, k.obj_actor.Finish()},
             {2, k.obj_counter.Finish()},
             {17, k.key_actor.Finish()},
             {19, k.key_counter.Finish()},
             {21, k.key_string.Finish()},
             {33, k.id_actor.Finish()},
             {35, k.id_counter.Finish()},
             {52, k.insert.Finish()},
             {66, k.action.Finish()},
             {86, k.value.FinishMeta()},
             {87, k.value.FinishRaw()},
             {128, k.succ_count.Finish()},
             {129, k.succ_actor.Finish()},
             {131, k.succ_counter.Finish()},
             {148, k.expand.FinishMaybe()},
             {165, k.mark_name.Finish()}});
  Append(body, change_data);
  Append(body, op_data);
  for (const auto& [hash, row] : heads) AppendUleb(body, row);
  return WriteChunk(ChunkType::kDocument, body).bytes;
}

}  // namespace etherply::automerge
