#include "automerge/change.h"

#include <algorithm>
#include <map>

#include "automerge/chunk.h"
#include "automerge/columns.h"
#include "automerge/document_chunk.h"
#include "base/coding.h"

namespace etherply::automerge {

namespace {

// Column specs of change chunks (FORMAT.md §5): (id << 4) | type.
enum ColumnSpec : uint32_t {
  kObjActor = 1,
  kObjCounter = 2,
  kKeyActor = 17,
  kKeyCounter = 19,
  kKeyString = 21,
  kInsert = 52,
  kAction = 66,
  kValueMeta = 86,
  kValueRaw = 87,
  kPredGroup = 112,
  kPredActor = 113,
  kPredCounter = 115,
  kExpand = 148,
  kMarkName = 165,
};
constexpr uint32_t kDeflateBit = 8;

void AppendLengthPrefixed(Bytes& out, ByteView b) {
  AppendUleb(out, b.size());
  Append(out, b);
}

}  // namespace

void NormalizeActors(Change& change, const std::vector<ActorId>& table, uint32_t author_index) {
  std::vector<uint32_t> used;
  auto note = [&](const OpId& id) {
    if (id.counter != 0 && id.actor != author_index) used.push_back(id.actor);
  };
  for (const ChangeOp& op : change.ops) {
    note(op.obj);
    if (!op.key.is_map()) note(op.key.elem);
    for (const OpId& p : op.pred) note(p);
  }
  // Each actor once (an op's IDs name the same few actors again and again),
  // then by bytes.
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());
  std::sort(used.begin(), used.end(), [&](uint32_t a, uint32_t b) { return table[a] < table[b]; });

  // (index in table, index in the change's actor table), by the first.
  // The actor vectors are assigned in place: a caller that reuses `change`
  // keeps their buffers.
  std::vector<std::pair<uint32_t, uint32_t>> remap;
  change.actor = table[author_index];
  change.other_actors.resize(used.size());
  for (size_t i = 0; i < used.size(); ++i) {
    remap.emplace_back(used[i], static_cast<uint32_t>(i + 1));
    change.other_actors[i] = table[used[i]];
  }
  std::sort(remap.begin(), remap.end());
  auto fix = [&](OpId& id) {
    if (id.counter == 0) return;
    if (id.actor == author_index) {
      id.actor = 0;
      return;
    }
    id.actor = std::lower_bound(remap.begin(), remap.end(), std::make_pair(id.actor, 0u))->second;
  };
  for (ChangeOp& op : change.ops) {
    fix(op.obj);
    if (!op.key.is_map()) fix(op.key.elem);
    for (OpId& p : op.pred) fix(p);
  }
}

struct ChangeEncoder::Columns {
  UlebEncoder obj_actor, obj_counter, key_actor, action, pred_group, pred_actor;
  DeltaEncoder key_counter, pred_counter;
  StringEncoder key_string, mark_name;
  BooleanEncoder insert, expand;
  ValueEncoder value;

  void Reset() {
    for (UlebEncoder* e : {&obj_actor, &obj_counter, &key_actor, &action, &pred_group, &pred_actor})
      e->Reset();
    key_counter.Reset();
    pred_counter.Reset();
    key_string.Reset();
    mark_name.Reset();
    insert.Reset();
    expand.Reset();
    value.Reset();
  }
};

ChangeEncoder::ChangeEncoder() : cols_(std::make_unique<Columns>()) {}
ChangeEncoder::~ChangeEncoder() = default;

StoredChange ChangeEncoder::Encode(Change change) {
  std::sort(change.deps.begin(), change.deps.end());
  change.num_ops = change.ops.size();

  Columns& k = *cols_;
  k.Reset();
  for (const ChangeOp& op : change.ops) {
    if (op.obj.is_root()) {
      k.obj_actor.AppendNull();
      k.obj_counter.AppendNull();
    } else {
      k.obj_actor.Append(op.obj.actor);
      k.obj_counter.Append(op.obj.counter);
    }
    if (op.key.is_map()) {
      k.key_actor.AppendNull();
      k.key_counter.AppendNull();
      k.key_string.Append(*op.key.prop);
    } else {
      if (op.key.elem.counter == 0) {
        k.key_actor.AppendNull();
      } else {
        k.key_actor.Append(op.key.elem.actor);
      }
      k.key_counter.Append(op.key.elem.counter);
      k.key_string.AppendNull();
    }
    k.insert.Append(op.insert);
    k.action.Append(static_cast<uint64_t>(op.action));
    k.value.Append(op.value);
    k.pred_group.Append(op.pred.size());
    for (const OpId& p : op.pred) {
      k.pred_actor.Append(p.actor);
      k.pred_counter.Append(p.counter);
    }
    k.expand.Append(op.expand);
    k.mark_name.Append(op.mark_name);
  }

  const std::pair<uint32_t, ByteView> columns[] = {
      {kObjActor, k.obj_actor.FinishInPlace()},   {kObjCounter, k.obj_counter.FinishInPlace()},
      {kKeyActor, k.key_actor.FinishInPlace()},   {kKeyCounter, k.key_counter.FinishInPlace()},
      {kKeyString, k.key_string.FinishInPlace()}, {kInsert, k.insert.FinishInPlace()},
      {kAction, k.action.FinishInPlace()},        {kValueMeta, k.value.FinishMetaInPlace()},
      {kValueRaw, k.value.FinishRawInPlace()},    {kPredGroup, k.pred_group.FinishInPlace()},
      {kPredActor, k.pred_actor.FinishInPlace()}, {kPredCounter, k.pred_counter.FinishInPlace()},
      {kExpand, k.expand.FinishMaybeInPlace()},   {kMarkName, k.mark_name.FinishInPlace()},
  };

  // The body's size first, so that the chunk is written in one buffer.
  size_t ncols = 0;
  size_t body = UlebSize(change.deps.size()) + 32 * change.deps.size() +
                UlebSize(change.actor.size()) + change.actor.size() + UlebSize(change.seq) +
                UlebSize(change.start_op) + SlebSize(change.time) +
                UlebSize(change.message.size()) + change.message.size() +
                UlebSize(change.other_actors.size()) + change.extra.size();
  for (const ActorId& a : change.other_actors) body += UlebSize(a.size()) + a.size();
  for (const auto& [spec, data] : columns) {
    if (data.empty()) continue;
    ++ncols;
    body += UlebSize(spec) + UlebSize(data.size()) + data.size();
  }
  body += UlebSize(ncols);

  Bytes out = BeginChunk(ChunkType::kChange, body);
  AppendUleb(out, change.deps.size());
  for (const ChangeHash& d : change.deps) out.insert(out.end(), d.begin(), d.end());
  AppendLengthPrefixed(out, change.actor);
  AppendUleb(out, change.seq);
  AppendUleb(out, change.start_op);
  AppendSleb(out, change.time);
  AppendLengthPrefixed(out, AsBytes(change.message));
  AppendUleb(out, change.other_actors.size());
  for (const ActorId& a : change.other_actors) AppendLengthPrefixed(out, a);
  AppendUleb(out, ncols);
  for (const auto& [spec, data] : columns) {
    if (data.empty()) continue;
    AppendUleb(out, spec);
    AppendUleb(out, data.size());
  }
  for (const auto& [spec, data] : columns) Append(out, data);
  Append(out, change.extra);

  ChangeHash hash = EndChunk(out);
  return StoredChange{std::move(change), std::move(out), hash};
}

StoredChange EncodeChange(Change change) { return ChangeEncoder().Encode(std::move(change)); }

namespace {

class ChangeDecoder {
 public:
  ChangeDecoder(ByteView body) : r_(body) {}

  Result<Change> Decode();

 private:
  Status Header(Change& c);
  Status Columns();
  Status Ops(Change& c);
  Result<OpId> ReadOpId(std::optional<uint64_t> actor, std::optional<uint64_t> counter,
                        size_t nactors, const char* what);

  Reader r_;
  std::map<uint32_t, ByteView> cols_;
};

Status ChangeDecoder::Header(Change& c) {
  auto ndeps = r_.Uleb();
  if (!ndeps.ok()) return ndeps.status().WithContext("deps");
  if (*ndeps > r_.remaining() / 32) return Status::Corruption("deps: more hashes than bytes");
  for (uint64_t i = 0; i < *ndeps; ++i) {
    ChangeHash h;
    auto b = r_.Take(32);
    std::copy(b->begin(), b->end(), h.begin());
    c.deps.push_back(h);
  }
  auto actor = r_.LengthPrefixed();
  if (!actor.ok()) return actor.status().WithContext("actor");
  c.actor.assign(actor->begin(), actor->end());
  auto seq = r_.Uleb();
  if (!seq.ok()) return seq.status().WithContext("seq");
  c.seq = *seq;
  auto start = r_.Uleb();
  if (!start.ok()) return start.status().WithContext("startOp");
  if (*start == 0) return Status::Corruption("startOp is zero");
  if (*start > kMaxCounter) return Status::Corruption("startOp does not fit 32 bits");
  c.start_op = *start;
  auto time = r_.Sleb();
  if (!time.ok()) return time.status().WithContext("time");
  c.time = *time;
  auto msg = r_.LengthPrefixed();
  if (!msg.ok()) return msg.status().WithContext("message");
  c.message.assign(AsChars(*msg));
  if (!IsValidUtf8(c.message)) return Status::Corruption("message is not valid UTF-8");
  auto nothers = r_.Uleb();
  if (!nothers.ok()) return nothers.status().WithContext("other actors");
  if (*nothers > r_.remaining()) return Status::Corruption("other actors: more than bytes");
  for (uint64_t i = 0; i < *nothers; ++i) {
    auto a = r_.LengthPrefixed();
    if (!a.ok()) return a.status().WithContext("other actors");
    c.other_actors.emplace_back(a->begin(), a->end());
  }
  return Status::Ok();
}

Status ChangeDecoder::Columns() {
  auto ncols = r_.Uleb();
  if (!ncols.ok()) return ncols.status().WithContext("column metadata");
  if (*ncols > r_.remaining())
    return Status::Corruption("column metadata: more columns than bytes");
  std::vector<std::pair<uint32_t, uint64_t>> meta;
  uint64_t total = 0;
  for (uint64_t i = 0; i < *ncols; ++i) {
    auto spec = r_.Uleb32();
    if (!spec.ok()) return spec.status().WithContext("column spec");
    auto len = r_.Uleb();
    if (!len.ok()) return len.status().WithContext("column length");
    if (*spec & kDeflateBit) return Status::Corruption("deflated column in a change chunk");
    if (!meta.empty() && *spec <= meta.back().first)
      return Status::Corruption("columns are not in normalized order");
    if (*len > r_.remaining()) return Status::Corruption("column runs past the end of the change");
    total += *len;
    meta.emplace_back(*spec, *len);
  }
  if (total > r_.remaining()) return Status::Corruption("columns run past the end of the change");
  for (auto [spec, len] : meta) cols_[spec] = *r_.Take(len);  // unknown columns are skipped
  return Status::Ok();
}

Result<OpId> ChangeDecoder::ReadOpId(std::optional<uint64_t> actor, std::optional<uint64_t> counter,
                                     size_t nactors, const char* what) {
  if (!actor || !counter)
    return Status::Corruption(std::string(what) + ": missing actor or counter");
  if (*actor >= nactors)
    return Status::Corruption(std::string(what) + ": actor index out of range");
  if (*counter == 0 || *counter > kMaxCounter)
    return Status::Corruption(std::string(what) + ": counter out of range");
  return OpId{static_cast<uint32_t>(*counter), static_cast<uint32_t>(*actor)};
}

Status ChangeDecoder::Ops(Change& c) {
  auto col = [&](uint32_t spec) -> ByteView {
    auto it = cols_.find(spec);
    return it == cols_.end() ? ByteView() : it->second;
  };
  // The action column decides how many ops there are.
  size_t nops = 0;
  {
    UlebDecoder actions(col(kAction));
    while (!actions.done()) {
      auto a = actions.Next();
      if (!a.ok()) return a.status().WithContext("action column");
      if (++nops > kMaxChangeOps)
        return Status::Corruption("more ops than a change may hold (" +
                                  std::to_string(kMaxChangeOps) + ")");
    }
  }
  if (nops > 0 && c.start_op + nops - 1 > kMaxCounter)
    return Status::Corruption("op counters do not fit 32 bits");
  size_t nactors = c.other_actors.size() + 1;

  UlebDecoder obj_actor(col(kObjActor)), obj_counter(col(kObjCounter)), key_actor(col(kKeyActor)),
      action(col(kAction)), pred_group(col(kPredGroup)), pred_actor(col(kPredActor));
  DeltaDecoder key_counter(col(kKeyCounter)), pred_counter(col(kPredCounter));
  StringDecoder key_string(col(kKeyString)), mark_name(col(kMarkName));
  BooleanDecoder insert(col(kInsert)), expand(col(kExpand));
  ValueDecoder value(col(kValueMeta), col(kValueRaw));

  c.ops.reserve(nops);
  for (size_t i = 0; i < nops; ++i) {
    ChangeOp op;
    std::string where = "op " + std::to_string(i) + ": ";
    auto oa = obj_actor.Next();
    auto oc = obj_counter.Next();
    if (!oa.ok()) return oa.status().WithContext(where + "obj actor");
    if (!oc.ok()) return oc.status().WithContext(where + "obj counter");
    if (oa->has_value() || oc->has_value()) {
      auto id = ReadOpId(*oa, *oc, nactors, "object");
      if (!id.ok()) return id.status().WithContext(where);
      op.obj = *id;
    }

    auto ka = key_actor.Next();
    auto kc = key_counter.Next();
    auto ks = key_string.Next();
    if (!ka.ok()) return ka.status().WithContext(where + "key actor");
    if (!kc.ok()) return kc.status().WithContext(where + "key counter");
    if (!ks.ok()) return ks.status().WithContext(where + "key string");
    if (ks->has_value()) {
      if (ka->has_value() || kc->has_value())
        return Status::Corruption(where + "key is both a string and an element");
      op.key = Key::Map(std::move(**ks));
    } else if (kc->has_value() && **kc == 0 && !ka->has_value()) {
      op.key = Key::Elem(OpId{});  // HEAD
    } else {
      auto id = ReadOpId(
          *ka,
          kc->has_value() ? std::optional<uint64_t>(static_cast<uint64_t>(**kc)) : std::nullopt,
          nactors, "key element");
      if (!id.ok()) return id.status().WithContext(where);
      op.key = Key::Elem(*id);
    }

    auto ins = insert.Next();
    if (!ins.ok()) return ins.status().WithContext(where + "insert");
    op.insert = *ins;
    auto act = action.Next();
    if (!act.ok()) return act.status().WithContext(where + "action");
    if (!act->has_value() || **act > kMaxAction)
      return Status::Corruption(where + "unrecognized action");
    op.action = static_cast<Action>(**act);
    auto val = value.Next();
    if (!val.ok()) return val.status().WithContext(where + "value");
    op.value = std::move(*val);

    auto npred = pred_group.Next();
    if (!npred.ok()) return npred.status().WithContext(where + "pred count");
    uint64_t np = npred->value_or(0);
    for (uint64_t k = 0; k < np; ++k) {
      auto pa = pred_actor.Next();
      auto pc = pred_counter.Next();
      if (!pa.ok()) return pa.status().WithContext(where + "pred actor");
      if (!pc.ok()) return pc.status().WithContext(where + "pred counter");
      if (!pc->has_value() || **pc < 0) return Status::Corruption(where + "pred: missing counter");
      auto id = ReadOpId(*pa, static_cast<uint64_t>(**pc), nactors, "pred");
      if (!id.ok()) return id.status().WithContext(where);
      op.pred.push_back(*id);
    }
    auto exp = expand.Next();
    if (!exp.ok()) return exp.status().WithContext(where + "expand");
    op.expand = *exp;
    auto mn = mark_name.Next();
    if (!mn.ok()) return mn.status().WithContext(where + "mark name");
    op.mark_name = std::move(*mn);

    // Shape rules that hold for every valid op.
    if (op.insert && op.key.is_map()) return Status::Corruption(where + "insert with a map key");
    if (!op.insert && !op.key.is_map() && op.key.elem.counter == 0)
      return Status::Corruption(where + "update of the list head");
    if (op.action == Action::kIncrement && !std::holds_alternative<int64_t>(op.value) &&
        !std::holds_alternative<Uint>(op.value))
      return Status::Corruption(where + "increment by a value that is not an integer");
    if (op.action == Action::kMark && !op.insert)
      return Status::Corruption(where + "mark that is not an insert");
    c.ops.push_back(std::move(op));
  }
  bool all_done = obj_actor.done() && obj_counter.done() && key_actor.done() &&
                  key_counter.done() && key_string.done() && insert.done() && action.done() &&
                  value.done() && pred_group.done() && pred_actor.done() && pred_counter.done() &&
                  expand.done() && mark_name.done();
  if (!all_done) return Status::Corruption("a column has more rows than the action column");
  return Status::Ok();
}

// FORMAT.md §3.1: the other actors are exactly the actors but the author
// that the ops name (in obj, key or pred), sorted, each once. The reference
// panics on one that no op names, and cannot load again what it saves of a
// change whose table is otherwise (neither can we: the document chunk keeps
// no actor table per change), so such a change is refused here.
Status CheckActorTable(const Change& c) {
  for (size_t i = 0; i < c.other_actors.size(); ++i) {
    if (c.other_actors[i] == c.actor)
      return Status::Corruption("other actors: the author is among them");
    if (i > 0 && !(c.other_actors[i - 1] < c.other_actors[i]))
      return Status::Corruption("other actors: not sorted, or one repeated");
  }
  std::vector<bool> named(c.other_actors.size() + 1);
  for (const ChangeOp& op : c.ops) {
    if (!op.obj.is_root()) named[op.obj.actor] = true;
    if (!op.key.is_map() && op.key.elem.counter != 0) named[op.key.elem.actor] = true;
    for (const OpId& p : op.pred) named[p.actor] = true;
  }
  for (size_t i = 1; i < named.size(); ++i)
    if (!named[i])
      return Status::Corruption("other actors: actor " + std::to_string(i) + " is named by no op");
  return Status::Ok();
}

Result<Change> ChangeDecoder::Decode() {
  Change c;
  if (Status s = Header(c); !s.ok()) return s;
  if (Status s = Columns(); !s.ok()) return s;
  if (Status s = Ops(c); !s.ok()) return s;
  if (Status s = CheckActorTable(c); !s.ok()) return s;
  c.extra.assign(r_.rest().begin(), r_.rest().end());
  c.num_ops = c.ops.size();
  return c;
}

}  // namespace

Result<StoredChange> DecodeChange(Bytes chunk_bytes, const ChangeHash& hash, size_t body_offset) {
  ChangeDecoder decoder(ByteView(chunk_bytes).subspan(body_offset));
  auto change = decoder.Decode();
  if (!change.ok()) {
    // The chunk header fixes the body's length: running past it is malformed.
    Status s = change.status();
    if (s.code() == Status::Code::kIncomplete) s = Status::Corruption(s.message());
    return s.WithContext("change " + HashToHex(hash));
  }
  return StoredChange{std::move(*change), std::move(chunk_bytes), hash};
}

Result<Change> ReadChange(const StoredChange& change) {
  Reader r(change.bytes);
  auto chunk = ReadChunk(r);
  if (!chunk.ok()) return chunk.status();
  auto decoded = DecodeChange(std::move(chunk->bytes), chunk->hash, chunk->body_offset);
  if (!decoded.ok()) return decoded.status();
  return std::move(decoded->change);
}

Result<std::vector<StoredChange>> DecodeChangeChunks(ByteView file) {
  auto chunks = ReadChunks(file);
  if (!chunks.ok()) return chunks.status();
  std::vector<StoredChange> out;
  out.reserve(chunks->size());  // a document chunk may add more
  for (Chunk& c : *chunks) {
    if (c.type == ChunkType::kDocument) {
      auto changes = DecodeDocumentChunk(c);
      if (!changes.ok()) return changes.status().WithContext("document chunk");
      for (StoredChange& sc : *changes) out.push_back(std::move(sc));
      continue;
    }
    auto sc = DecodeChange(std::move(c.bytes), c.hash, c.body_offset);
    if (!sc.ok()) return sc.status();
    out.push_back(std::move(*sc));
  }
  return out;
}

}  // namespace etherply::automerge
